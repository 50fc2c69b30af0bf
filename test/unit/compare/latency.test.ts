import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LatencyHistogram, SAMPLES_MAX, bucketLow, LAT_BUCKETS } from '../../../src/compare/latency';

test('percentiles are the samples themselves, not bucket edges (305 ms answers are 305, not 376)', () => {
  const h = new LatencyHistogram();
  for (let i = 0; i < 100; i++) h.add(300 + i);
  const s = h.summary();
  assert.deepEqual([s.count, s.p50, s.p90, s.p99, s.max], [100, 349, 389, 398, 399]);
  // the chart's buckets still hold every sample
  assert.equal(
    s.buckets.reduce((a, b) => a + b, 0),
    100,
  );
  const i305 = s.buckets.findIndex((n) => n > 0);
  assert.ok(bucketLow(i305) <= 300 && (i305 + 1 >= LAT_BUCKETS || bucketLow(i305 + 1) > 300));
  const one = new LatencyHistogram();
  one.add(0.01);
  assert.equal(one.summary().p50, 0.01, 'below the first bucket edge: still exact');
  assert.equal(new LatencyHistogram().summary().p50, 0);
});

test('beyond SAMPLES_MAX: a uniform reservoir, deterministic, close to the true percentiles', () => {
  const run = (): number[] => {
    const h = new LatencyHistogram();
    for (let i = 0; i < 20 * SAMPLES_MAX; i++) h.add(i % 1000);
    const s = h.summary();
    return [s.count, s.p50, s.p90, s.p99, s.max];
  };
  const a = run();
  assert.deepEqual(run(), a, 'the same samples give the same report');
  assert.equal(a[0], 20 * SAMPLES_MAX);
  assert.ok(Math.abs((a[1] as number) - 500) < 40, `p50 ${a[1]}`);
  assert.ok(Math.abs((a[2] as number) - 900) < 30, `p90 ${a[2]}`);
  assert.ok((a[3] as number) >= 975, `p99 ${a[3]}`);
  assert.equal(a[4], 999);
});
