import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newEngineStats } from '../../../src/core/stats';
import type { Logger } from '../../../src/io/logger';
import {
  CLEAR_LINE,
  estimateEta,
  fitLine,
  formatEta,
  formatLosses,
  formatStatus,
  progressBar,
  StatusLine,
} from '../../../src/run/status-line';
import { LiveStatus } from '../../../src/run/live-status';

function stats() {
  const e = newEngineStats();
  e.sessionsActive = 3;
  e.sessionsCreated = 120;
  e.outcomes.completed = 110;
  e.requestsCaptured = 500;
  e.requestsSampledOut = 100;
  e.requestsReplayed = 480;
  e.requestsLost.targetReset = 2;
  e.requestsLost.targetTimeout = 7;
  e.replies = 1500;
  e.retransTimeout = 4;
  e.retransFast = 1;
  return e;
}

test('progress bar, ETA and line fitting', () => {
  assert.equal(progressBar(0, 10), '[----------]   0.0%');
  assert.equal(progressBar(0.42, 10), '[####------]  42.0%');
  assert.equal(progressBar(1.5, 4), '[####] 100.0%');
  assert.equal(progressBar(NaN, 4), '[----]   0.0%');
  assert.equal(formatEta(null), '?');
  assert.equal(formatEta(65), '1:05');
  assert.equal(formatEta(3725), '1:02:05');
  assert.equal(estimateEta(0, 0, 1000), null);
  assert.equal(estimateEta(0.25, 0, 10_000), 30);
  assert.equal(fitLine('abcdef', 80), 'abcdef');
  assert.equal(fitLine('abcdefghij', 6), 'abcd…');
});

test('status text: sessions, requests, rate, replies, retransmissions, losses by reason, progress', () => {
  const e = stats();
  const live = formatStatus(e, { rate: 12.345, progress: null, etaS: null, rssMB: 55.4, channelUp: true });
  assert.equal(
    live,
    'sessions 3 active/120 replayed/110 completed | requests 480/600 replayed | 12.3 req/s | replies 1500 | retrans 5 | lost sampledOut=100 targetReset=2 targetTimeout=7 inFlight=11 | rss 55MiB',
  );
  const off = formatStatus(e, { rate: 0, progress: 0.5, etaS: 90, rssMB: 40, channelUp: false });
  assert.ok(off.startsWith('[##########----------]  50.0% ETA 1:30 | sessions 3 active'), off);
  assert.ok(off.endsWith('| CHANNEL DOWN | rss 40MiB'), off);
  assert.equal(formatLosses(newEngineStats()), 'none');
});

test('StatusLine redraws in place and clears itself around log lines', () => {
  const out: string[] = [];
  const stream = { write: (s: string) => out.push(s), columns: 30 };
  const line = new StatusLine(stream);
  const logged: string[] = [];
  const base: Logger = {
    debug: () => {},
    info: (m) => {
      out.push(`<log ${m}>`);
      logged.push(m);
    },
    warn: () => {},
    error: () => {},
    close: () => {},
  };
  const log = line.wrapLogger(base);
  log.info('before any status'); // nothing to clear yet
  line.show('x'.repeat(50));
  log.info('hello');
  line.done();
  line.done();
  assert.deepEqual(out, [
    '<log before any status>',
    CLEAR_LINE + 'x'.repeat(28) + '…',
    CLEAR_LINE,
    '<log hello>',
    'x'.repeat(28) + '…',
    CLEAR_LINE,
  ]);
  assert.deepEqual(logged, ['before any status', 'hello']);
});

test('LiveStatus: line on a TTY every second, plain lines otherwise, rate over the last interval', () => {
  const out: string[] = [];
  const lines: string[] = [];
  const base: Logger = {
    debug: () => {},
    info: (m) => lines.push(m),
    warn: () => {},
    error: () => {},
    close: () => {},
  };
  const tty = new LiveStatus({
    style: 'auto',
    intervalMs: 5000,
    stream: { write: (s: string) => out.push(s), isTTY: true, columns: 300 },
    log: base,
    startedAt: 0,
  });
  assert.ok(tty.line !== null);
  assert.equal(tty.periodMs, 1000);
  const e = stats();
  e.requestsReplayed = 100;
  tty.tick(e, 1000, 0.25, true, 10);
  assert.match(out.at(-1) ?? '', /\| 100\.0 req\/s \|/); // first tick: average since the start
  e.requestsReplayed = 150;
  tty.tick(e, 2000, 0.5, true, 10);
  assert.equal(lines.length, 0);
  // eslint-disable-next-line no-control-regex -- the TTY line starts with an ANSI erase
  assert.match(out.at(-1) ?? '', /^\r\x1b\[2K\[##########----------\] {2}50\.0% ETA 0:02 \|.*\| 50\.0 req\/s \|/);
  const plain = new LiveStatus({
    style: 'auto',
    intervalMs: 5000,
    stream: { write: (s: string) => out.push(s), isTTY: false },
    log: base,
    startedAt: 0,
  });
  assert.equal(plain.line, null);
  assert.equal(plain.periodMs, 5000);
  plain.tick(e, 1000, null, true, 10);
  assert.match(lines[0] ?? '', /^status: sessions 3 active/);
  assert.equal(
    new LiveStatus({ style: 'line', intervalMs: 0, stream: { write: () => 0, isTTY: true }, log: base, startedAt: 0 })
      .periodMs,
    0,
  );
  assert.ok(
    new LiveStatus({
      style: 'line',
      intervalMs: 1000,
      stream: { write: () => 0, isTTY: false },
      log: base,
      startedAt: 0,
    }).line !== null,
  );
});
