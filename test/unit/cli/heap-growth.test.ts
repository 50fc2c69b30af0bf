import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const MOD = path.join(__dirname, '..', '..', '..', 'src', 'cli', 'heap-growth.js');

/**
 * Runs a child that keeps a ring of 30,000 small objects and replaces them for 3 s (old-generation
 * garbage, a constant live heap, as sessions of a busy replay), with the bound or not; prints
 * the largest old space in use (live and garbage), MiB.
 */
function largestHeapMB(bound: boolean): number {
  const script = `
    const { boundHeapGrowth } = require(${JSON.stringify(MOD)});
    ${bound ? 'if (!boundHeapGrowth(30)) throw new Error("not set");' : ''}
    const v8 = require('node:v8');
    const N = 30000, ring = new Array(N);
    let i = 0, max = 0;
    const deadline = Date.now() + 3000;
    while (Date.now() < deadline) {
      for (let k = 0; k < 2000; k++, i++) ring[i % N] = { a: i, c: new Array(20).fill(0).map((_, j) => ({ j, i })) };
      const old = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'old_space');
      max = Math.max(max, old ? old.space_used_size : 0);
    }
    console.log(max / 1048576);`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return Number(r.stdout.trim());
}

test('heap growth: with the bound the old generation is collected well before V8 alone would', () => {
  const free = largestHeapMB(false);
  const bounded = largestHeapMB(true);
  assert.ok(bounded < free * 0.75, `bounded ${bounded.toFixed(0)} MiB, V8 alone ${free.toFixed(0)} MiB`);
});

test('heap growth: an explicit --heap-growing-percent on the command line wins; 0 leaves V8 alone', async () => {
  const { boundHeapGrowth } = await import('../../../src/cli/heap-growth');
  assert.equal(boundHeapGrowth(50, ['--heap-growing-percent=100']), false);
  assert.equal(boundHeapGrowth(50, ['--heap_growing_percent=100']), false);
  assert.equal(boundHeapGrowth(0, []), false);
});
