/**
 * The replay lag of compared sessions (issue 15): the engine's lag histogram counts from the
 * capture of a request to the target's first reply byte, so a keep-alive client that sends
 * faster than the replay's round trip (production answers in 0.2 ms, each replayed exchange
 * waits for the target's answer to the previous one) shows its backlog in the histogram, and a
 * paced client shows the target's round trip alone. The live compare lab's 0.3-2 s lag was
 * that backlog (an unthrottled client on a CPU-starved 2-core host, the capture read up to
 * 0.5 s behind the kernel's stamps), not a wrong capture time: doc/compare.md "Replay lag".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Comparison } from '../../../src/compare/comparison';
import { compareConfig } from '../../../src/compare/config';
import { compareModule } from '../../../src/compare/module';
import { buildRules } from '../../../src/compare/rules';
import { CLIENT, established, Script, TARGET } from '../core/script';

const REQ = 'GET /users/7 HTTP/1.1\r\nHost: x\r\n\r\n';
const RESP = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
const L = REQ.length;
const R = RESP.length;
/** The target's answer time, ms. */
const RTT = 4;

function comparison(): Comparison {
  return new Comparison(compareConfig('http', buildRules()), () => undefined);
}

/** Request k from the captured client (its ACK says production answered the k before it) and production's answer. */
function captureExchange(t: Script, k: number): void {
  t.clientSends({ seq: 1001 + k * L, ack: 5001 + k * R, flags: 'PA', data: REQ });
  assert.equal(t.onlineSends({ seq: 5001 + k * R, ack: 1001 + (k + 1) * L, flags: 'PA', data: RESP }), true);
}

/** The bytes of request `k` left for the target now (one segment). */
function expectRequestSent(t: Script, k: number): void {
  const sent = t.take().filter((e) => e.dst === TARGET && e.len > 0);
  assert.deepEqual(
    sent.map((e) => [e.src, e.seq, e.len]),
    [[CLIENT, 1001 + k * L, L]],
    `request ${k} sent`,
  );
}

/** The target answers request k, RTT ms after it was sent. */
function targetAnswers(t: Script, k: number): void {
  t.tick(RTT);
  t.targetReplies({ seq: 90001 + k * R, ack: 1001 + (k + 1) * L, flags: 'PA', data: RESP });
}

const N = 5;

test('compared keep-alive session, paced client: every lag sample is the target round trip', () => {
  const cmp = comparison();
  const t = established({ module: compareModule(cmp) });
  online0(t);
  for (let k = 0; k < N; k++) {
    captureExchange(t, k);
    expectRequestSent(t, k);
    targetAnswers(t, k);
    t.tick(20); // the client's think time: the replay has caught up before the next request
  }
  const st = t.engine.stats;
  assert.equal(st.lagCount, N);
  assert.equal(st.lagSumMs, N * RTT);
  assert.equal(st.lagHistogram[3], N, 'all in the 4-8 ms bucket');
});

test('compared keep-alive session, burst client: the lag grows with the backlog the replay works through', () => {
  const cmp = comparison();
  const t = established({ module: compareModule(cmp) });
  online0(t);
  const t0 = t.now;
  // production answers in 0.2 ms: the client's N requests are captured before the target answered the first
  for (let k = 0; k < N; k++) {
    if (k > 0) t.now += 0.2;
    captureExchange(t, k);
  }
  expectRequestSent(t, 0); // the others wait for the target's answer to the one before (the release wait)
  for (let k = 0; k < N; k++) {
    targetAnswers(t, k);
    if (k + 1 < N) expectRequestSent(t, k + 1);
  }
  const st = t.engine.stats;
  assert.equal(st.lagCount, N);
  // request k: captured at t0 + 0.2k, answered at t0 + 0.2(N-1) + RTT(k+1)
  let want = 0;
  for (let k = 0; k < N; k++) want += 0.2 * (N - 1) + RTT * (k + 1) - 0.2 * k;
  assert.ok(Math.abs(st.lagSumMs - want) < 1e-6, `lag sum ${st.lagSumMs} vs ${want}`);
  assert.ok(Math.abs(t.now - t0 - (N * RTT + 0.2 * (N - 1))) < 1e-6);
  assert.deepEqual(st.lagHistogram.slice(0, 6), [0, 0, 0, 1, 2, 2], '4.8 | 8.6, 12.4 | 16.2, 20 ms');
});

test("compared session: a slow target handshake is in the first request's lag (captured before the replay could send it)", () => {
  const cmp = comparison();
  const t = new Script({ module: compareModule(cmp) });
  t.clientSends({ seq: 1000, flags: 'S', mss: 1460, wscale: 7 });
  assert.equal(t.onlineSends({ seq: 5000, ack: 1001, flags: 'SA' }), true);
  t.now += 0.3;
  t.clientSends({ seq: 1001, ack: 5001, flags: 'A' });
  captureExchange(t, 0);
  t.take();
  t.now += 50; // the target's SYN-ACK, 50 ms after the SYN
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA', mss: 1460, wscale: 7 });
  expectRequestSent(t, 0);
  targetAnswers(t, 0);
  const st = t.engine.stats;
  assert.equal(st.lagCount, 1);
  assert.ok(Math.abs(st.lagSumMs - (50 + RTT)) < 1e-6, `lag ${st.lagSumMs}`);
});

/** Production's SYN-ACK, captured: its stream starts at 5001. */
function online0(t: Script): void {
  assert.equal(t.onlineSends({ seq: 5000, ack: 1001, flags: 'SA' }), true);
}
