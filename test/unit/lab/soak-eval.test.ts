import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  attributeLosses,
  flatness,
  lossDeltas,
  lostByReason,
  parseProm,
  soakSchedule,
  soakTable,
  warmupMinutes,
  type SoakEvent,
  type SoakRow,
} from '../../../src/lab/soak-eval';
import { soakChart } from '../../../src/lab/soak-chart';

test('soak schedule: each cycle restarts intercept, then the target, then impairs; nothing in the last 30 s', () => {
  const p = soakSchedule(600_000, 300_000);
  assert.deepEqual(
    p.map((e) => [e.kind, e.atMs]),
    [
      ['interceptRestart', 45_000],
      ['targetRestart', 135_000],
      ['impairment', 210_000],
      ['interceptRestart', 345_000],
      ['targetRestart', 435_000],
      ['impairment', 510_000],
    ],
  );
  assert.equal(p[2]?.lossPct, 2);
  assert.equal(p[5]?.delayMs, 20);
  // 3 minutes, one cycle: the impairment (126-149.4 s) still fits before 150 s
  assert.equal(soakSchedule(180_000, 180_000).length, 3);
  // a cycle whose impairment would end in the last 30 s loses it
  assert.deepEqual(
    soakSchedule(150_000, 180_000).map((e) => e.kind),
    ['interceptRestart', 'targetRestart'],
  );
});

test('soak metrics: samples parsed, lost requests by reason, deltas only for reasons that grew', () => {
  const m = parseProm(
    [
      '# HELP tcpcopy_requests_lost_total x',
      '# TYPE tcpcopy_requests_lost_total counter',
      'tcpcopy_requests_lost_total{reason="sampledOut"} 0',
      'tcpcopy_requests_lost_total{reason="targetReset"} 7',
      'tcpcopy_requests_lost_total{reason="inFlight"} 40',
      'tcpcopy_sessions_active 12',
      'tcpcopy_replay_lag_ms_bucket{le="+Inf"} 5',
    ].join('\n'),
  );
  assert.equal(m.get('tcpcopy_sessions_active'), 12);
  assert.equal(m.get('tcpcopy_replay_lag_ms_bucket{le="+Inf"}'), 5);
  const lost = lostByReason(m);
  assert.deepEqual(lost, { sampledOut: 0, targetReset: 7, inFlight: 40 });
  assert.deepEqual(lossDeltas({ targetReset: 3, inFlight: 10 }, { ...lost, channelDown: 2 }, 1000, 6000), [
    { fromMs: 1000, toMs: 6000, reason: 'targetReset', count: 4 },
    { fromMs: 1000, toMs: 6000, reason: 'channelDown', count: 2 },
  ]);
});

test('soak losses: explained only by a disturbance of a kind that causes the reason, within its window and grace', () => {
  const events: SoakEvent[] = [
    { kind: 'interceptRestart', startMs: 45_000, endMs: 50_000, detail: '' },
    { kind: 'targetRestart', startMs: 135_000, endMs: 138_000, detail: '' },
  ];
  const a = attributeLosses(
    [
      { fromMs: 45_000, toMs: 50_000, reason: 'channelDown', count: 3 }, // during the intercept restart
      { fromMs: 90_000, toMs: 95_000, reason: 'targetTimeout', count: 1 }, // 40 s after it: within grace
      { fromMs: 100_000, toMs: 105_000, reason: 'targetTimeout', count: 1 }, // 50 s after: not
      { fromMs: 135_000, toMs: 140_000, reason: 'channelDown', count: 2 }, // a target restart does not explain it
      { fromMs: 140_000, toMs: 145_000, reason: 'targetReset', count: 5 },
      { fromMs: 10_000, toMs: 15_000, reason: 'targetReset', count: 1 }, // before anything happened
      { fromMs: 190_000, toMs: 195_000, reason: 'idleTimeout', count: 1 }, // idle: longer grace
    ],
    events,
  );
  assert.deepEqual(
    a.explained.map((d) => [d.reason, d.count, d.by]),
    [
      ['channelDown', 3, 'interceptRestart@45s'],
      ['targetTimeout', 1, 'interceptRestart@45s'],
      ['targetReset', 5, 'targetRestart@135s'],
      ['idleTimeout', 1, 'interceptRestart@45s'],
    ],
  );
  assert.deepEqual(
    a.unexplained.map((d) => [d.reason, d.fromMs]),
    [
      ['targetTimeout', 100_000],
      ['channelDown', 135_000],
      ['targetReset', 10_000],
    ],
  );
});

test('soak flatness: medians of the first and last thirds within 10%; growth and too few samples fail', () => {
  const flat = flatness([80, 84, 79, 95, 81, 82, 80, 83, 81]);
  assert.equal(flat.flat, true);
  assert.equal(flat.firstMedian, 80);
  assert.equal(flat.lastMedian, 81);
  assert.equal(flat.max, 95);
  const growing = flatness([80, 82, 84, 86, 88, 90, 92, 94, 96]);
  assert.equal(growing.flat, false);
  assert.ok(Math.abs(growing.ratio - 94 / 82) < 1e-9);
  assert.equal(flatness([80]).flat, false);
  assert.equal(flatness([20, 21]).flat, true);
  assert.equal(warmupMinutes(60), 10);
  assert.equal(warmupMinutes(3), 1);
  assert.equal(warmupMinutes(600), 10);
});

test('soak table and chart: one line per minute; the chart is a standalone SVG with every panel and event', () => {
  const row = (minute: number, rss: number): SoakRow => ({
    minute,
    rssMB: rss,
    hwmMB: rss + 5,
    heapUsedMB: 20,
    heapTotalMB: 30,
    externalMB: 2,
    fds: 25,
    sessions: 40,
    captured: 1000 * minute,
    replayed: 990 * minute,
    lost: 2,
    inFlight: 10 * minute - 2,
    identity: minute !== 2,
    online: 500 * minute,
    target: 990 * minute,
    cpuPct: 12,
    stealPct: 1.5,
    events: minute === 1 ? 'I' : '',
  });
  const rows = [row(1, 70), row(2, 72), row(3, 71)];
  const t = soakTable(rows).split('\n');
  assert.equal(t.length, 4);
  assert.match(t[2] ?? '', /FAIL/);
  assert.match(t[1] ?? '', / I$/);
  const svg = soakChart(
    rows,
    [
      { kind: 'interceptRestart', startMs: 45_000, endMs: 50_000, detail: '' },
      { kind: 'impairment', startMs: 100_000, endMs: 130_000, detail: 'loss 2%' },
    ],
    1,
    'soak <test>',
  );
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  assert.match(svg, /<\/svg>\n$/);
  assert.doesNotMatch(svg, /<script|href=/);
  assert.equal((svg.match(/<polyline/g) ?? []).length, 7);
  assert.match(svg, /soak &lt;test&gt;/);
  assert.match(svg, /stroke-dasharray/);
  assert.match(svg, /fill="#fdd"/);
});
