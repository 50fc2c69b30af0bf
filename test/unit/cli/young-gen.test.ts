import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

const MOD = path.join(__dirname, '..', '..', '..', 'src', 'cli', 'young-gen.js');

/** Runs a child that allocates young garbage for a while (with the bound or not) and prints its largest new space, MiB. */
function largestNewSpaceMB(bound: boolean, nodeArgs: string[] = []): number {
  const script = `
    const { boundYoungGeneration, newSpaceBytes } = require(${JSON.stringify(MOD)});
    const stop = ${bound ? 'boundYoungGeneration(4)' : 'null'};
    let keep = [], max = 0, i = 0;
    const deadline = Date.now() + 3000;
    const step = () => {
      for (let k = 0; k < 5000; k++, i++) {
        const o = { a: i, b: [i, i + 1], c: 'x' + (i & 1023) };
        if ((i & 63) === 0) keep.push(o);
        if (keep.length > 50000) keep = [];
      }
      max = Math.max(max, newSpaceBytes());
      if (Date.now() < deadline) setImmediate(step);
      else { if (stop) stop(); console.log(max / 1048576); }
    };
    step();`;
  const r = spawnSync(process.execPath, [...nodeArgs, '-e', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return Number(r.stdout.trim());
}

test('young generation: the watcher stops the new space at its bound, where V8 alone grows it further', () => {
  const free = largestNewSpaceMB(false);
  const bounded = largestNewSpaceMB(true);
  assert.ok(free > 4, `without the bound the new space grows past 4 MiB (got ${free})`);
  assert.ok(bounded <= 4, `with a 4 MiB bound the new space stays within it (got ${bounded})`);
});

test('young generation: an explicit --max-semi-space-size on the command line wins', async () => {
  const { boundYoungGeneration } = await import('../../../src/cli/young-gen');
  assert.equal(boundYoungGeneration(8, ['--max-semi-space-size=16']), null);
  assert.equal(boundYoungGeneration(0, []), null);
  const stop = boundYoungGeneration(1024, []);
  assert.ok(stop !== null);
  stop();
});
