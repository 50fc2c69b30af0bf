/**
 * Replays every saved fuzz case in test/fixtures/fuzz/ (what `npm run fuzz` found): each must
 * now pass its target's check. A case naming no known target fails, so none is silently dropped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FIXTURE_DIR, loadCases, saveCase } from '../../fuzz/saved-cases';
import { findTarget } from '../../fuzz/targets';
import { closeServerTargets } from '../../fuzz/targets-server';

test.after(() => closeServerTargets());

for (const c of loadCases(FIXTURE_DIR)) {
  test(
    `fuzz regression ${c.file.slice(FIXTURE_DIR.length + 1)} (${c.saved.target}, ${c.saved.kind})`,
    { timeout: 60_000 },
    async () => {
      const t = findTarget(c.saved.target);
      assert.ok(t, `${c.file}: unknown fuzz target ${c.saved.target}`);
      await t.check(c.input);
    },
  );
}

test('saved cases read back exactly (bytes, bigints, odd numbers) and one file per input', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tcfuzz-cases-'));
  try {
    const input = { b: Uint8Array.from([0, 1, 255]), n: -(2n ** 63n), x: [NaN, -0, Infinity, 1.5], s: 'é', u: null };
    const f1 = saveCase(dir, { target: 'decode-hostile', error: 'boom', kind: 'failure', seed: 1, path: '0:1', input });
    const f2 = saveCase(dir, { target: 'decode-hostile', error: 'boom', kind: 'failure', seed: 2, path: null, input });
    assert.equal(f1, f2);
    const back = loadCases(dir);
    assert.equal(back.length, 1);
    assert.deepEqual(back[0]?.input, input);
    assert.equal(back[0]?.saved.target, 'decode-hostile');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
