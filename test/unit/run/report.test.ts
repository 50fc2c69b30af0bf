import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newEngineStats } from '../../../src/core/stats';
import { formatReport, type ReplayReport } from '../../../src/run/report';

function report(): ReplayReport {
  const e = newEngineStats();
  e.sessionsCreated = 3;
  e.outcomes.completed = 2;
  e.outcomes.targetReset = 1;
  e.requestsCaptured = 100;
  e.requestsReplayed = 37;
  e.requestsLost.targetReset = 63;
  return {
    mode: 'offline',
    durationS: 1,
    capture: { frames: 500, decode: { ok: 500 }, notForTransfers: 0, dropped: 0, damaged: 0, fatal: null },
    engine: e,
    requestsInFlight: 0,
    channel: {},
    sender: { sent: 400, failed: 0, retried: 0, lastError: '' },
    lag: { p50: 1, p90: 2, p99: 4, samples: 37 },
    process: { cpuUserS: 0.1, cpuSystemS: 0.1, maxRssMB: 40 },
  };
}

const line = (text: string, head: string): string | undefined => text.split('\n').find((l) => l.startsWith(head));

test('report: a balanced replay says nothing is unexplained', () => {
  const text = formatReport(report());
  assert.equal(line(text, '  lost '), '  lost       targetReset=63');
  assert.equal(line(text, '  unexplained'), '  unexplained none (captured = replayed + lost)');
});

test('report: 63 of 100 requests lost without a reason get their own line, not an inFlight loss', () => {
  const r = report();
  r.engine.requestsLost.targetReset = 0;
  const text = formatReport(r);
  assert.equal(line(text, '  lost '), '  lost       none');
  assert.match(
    line(text, '  unexplained') ?? '',
    /^ {2}unexplained 63 requests: captured 100 != replayed 37 \+ lost 0 \+ in flight 0 \(UNBALANCED/,
  );
  assert.doesNotMatch(text, /inFlight/);
});

test('report: requests in open sessions are in flight, and explained', () => {
  const r = report();
  r.engine.requestsCaptured += 5;
  r.requestsInFlight = 5;
  const text = formatReport(r);
  assert.equal(line(text, '  lost '), '  lost       targetReset=63 inFlight=5');
  assert.equal(line(text, '  unexplained'), '  unexplained none (captured = replayed + lost + in flight)');
});

test('report: frames the kernel dropped before tcpcopy read them are named next to the accounting', () => {
  const r = report();
  assert.equal(line(formatReport(r), '  not seen'), undefined, 'no line without drops');
  r.capture.dropped = 14613;
  const text = formatReport(r);
  assert.match(
    line(text, '  not seen') ?? '',
    /^ {2}not seen {3}14613 captured frames dropped by the kernel .*in none of the counts/,
  );
  assert.equal(line(text, '  unexplained'), '  unexplained none (captured = replayed + lost)');
});
