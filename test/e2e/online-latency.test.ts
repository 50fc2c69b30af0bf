import { test } from 'node:test';
import { latencyLines, runOnlineLatency } from '../../bench/latency';
import { assertMeasured } from './latency-assert';
import { say } from '../../bench/latency-lab';
import { skipUnlessRoot } from './replay-helpers';

/**
 * Issue 3's measurement (bench/latency.ts, `npm run bench -- --only latency`), run briefly: one
 * run without and one with tcpcopy at a fixed rate. The latency figures are printed, never
 * asserted (performance belongs in benchmarks); what is asserted is that the measurement works:
 * every request answered, the wire capture matched the exchanges, tcpcopy's copies arrived.
 */
test(
  'online latency measurement: a run with and one without tcpcopy; all answered, matched on the wire, copied',
  { skip: skipUnlessRoot(), timeout: 180_000 },
  async () => {
    const r = await runOnlineLatency({ prefix: 'tcq2', rounds: 1, rate: 2000, runMs: 2000 }, say);
    for (const l of latencyLines('latency', r)) say(l);
    assertMeasured(r, 2);
  },
);
