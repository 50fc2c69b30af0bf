/**
 * The fuzz suite's bounded share of `npm test`: every fuzz target (test/fuzz/targets.ts) for
 * its `unitRuns` random cases. FUZZ_SEED=N reproduces a run; a failure prints the seed, the
 * shrink path and the smallest failing input (save it with `npm run fuzz`, or by hand as a
 * case in test/fixtures/fuzz/).
 */
import { test } from 'node:test';
import fc from 'fast-check';
import { ALL_TARGETS } from '../../fuzz/targets';
import { propertyOf } from '../../fuzz/target';
import { closeServerTargets } from '../../fuzz/targets-server';

const seedText = process.env['FUZZ_SEED'];
const seed = seedText !== undefined && seedText !== '' ? Number(seedText) : undefined;

test.after(() => closeServerTargets());

for (const t of ALL_TARGETS) {
  test(`fuzz ${t.name}: ${t.says}`, async () => {
    await fc.assert(propertyOf(t), { numRuns: t.unitRuns, ...(seed !== undefined ? { seed } : {}) });
  });
}
