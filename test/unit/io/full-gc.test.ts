import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fullCollector } from '../../../src/io/full-gc';

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
