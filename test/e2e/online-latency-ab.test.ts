import { test } from 'node:test';
import { latencyLines, runSideBySideLatency } from '../../bench/latency';
import { say } from '../../bench/latency-lab';
import { skipUnlessRoot } from './replay-helpers';
import { assertMeasured } from './latency-assert';

/**
 * Issue 3's side-by-side measurement (bench/latency.ts, `npm run bench -- --only latency-ab`),
 * run briefly: two phases, each port copied once while both are loaded. Figures printed, not
 * asserted; asserted: every request on both ports answered, matched on the wire, the copied
 * port's requests arrived at the target.
 */
test(
  'online latency side by side: copied and uncopied port of one nginx measured at the same time',
  { skip: skipUnlessRoot(), timeout: 180_000 },
  async () => {
    const r = await runSideBySideLatency({ prefix: 'tcq3', phases: [80, 81], rate: 1000, runS: 4 }, say);
    for (const l of latencyLines('latency-ab', r)) say(l);
    assertMeasured(r, 4);
  },
);
