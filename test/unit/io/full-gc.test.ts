import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fullCollector, shouldCompact } from '../../../src/io/full-gc';

test('the full collector frees garbage and gives back fragmented pages', () => {
  const collect = fullCollector();
  let all: { x: number; y: number[]; z: string }[] = [];
  for (let i = 0; i < 400_000; i++) all.push({ x: i, y: [i, i + 1], z: `s${i}` });
  collect(); // everything survives: now in the old generation
  const keep = all.filter((_, i) => i % 20 === 0); // 5% stay alive, scattered over every page
  all = [];
  const before = process.memoryUsage();
  collect();
  const after = process.memoryUsage();
  assert.equal(keep.length, 20_000);
  assert.ok(after.heapUsed < before.heapUsed / 2, `used ${before.heapUsed} -> ${after.heapUsed}`);
  // the pages were compacted, not just swept: the reserved heap shrinks too
  assert.ok(after.heapTotal < before.heapTotal * 0.6, `reserved ${before.heapTotal} -> ${after.heapTotal}`);
});

test('compaction only when it frees more than twice what it copies (its spike would be the peak)', () => {
  const MB = 1048576;
  assert.equal(shouldCompact(92 * MB, 5 * MB), true, 'fragmented: 5 live on 92');
  assert.equal(shouldCompact(92 * MB, 60 * MB), false, 'dense: copying 60 MiB to free 32');
  assert.equal(shouldCompact(90 * MB, 30 * MB), false, 'the boundary: frees exactly twice');
});
