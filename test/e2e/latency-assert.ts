/** What the online-latency e2e tests assert about a latency measurement (bench/latency.ts): that it worked, never its figures. */
import assert from 'node:assert/strict';
import type { LatencyResult } from '../../bench/latency';

/** Every planned run measured, every request answered and matched on the wire, every copy arrived, every figure computed. */
export function assertMeasured(r: LatencyResult, runs: number): void {
  assert.equal(r.runs.length, runs, 'every planned run measured');
  for (const run of r.runs) {
    assert.ok(run.requestsSent > 0, `${run.label}: requests sent`);
    assert.equal(run.responsesOk, run.requestsSent, `${run.label}: every request answered`);
    assert.ok(
      run.matched >= run.responsesOk * 0.99,
      `${run.label}: the capture saw ${run.matched} of ${run.responsesOk} exchanges`,
    );
    assert.ok(
      run.wireP50 > 0 && run.wireP99 >= run.wireP50,
      `${run.label}: wire percentiles ${run.wireP50} ${run.wireP99}`,
    );
  }
  assert.ok(r.runs.some((x) => x.copied) && r.runs.some((x) => !x.copied), 'runs with and without copying');
  for (const c of r.copies)
    assert.ok(c.offered > 0 && c.copied / c.offered >= 0.999, `copied ${c.copied}/${c.offered}`);
  for (const [k, p] of Object.entries(r.figures))
    assert.ok(Number.isFinite(p.with) && Number.isFinite(p.without), `figure ${k} computed`);
}
