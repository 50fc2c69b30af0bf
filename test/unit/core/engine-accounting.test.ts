import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Script } from './script';
import { requestAccounting } from '../../../src/run/report';

const GET_A = 'GET /a HTTP/1.1\r\nHost: x\r\n\r\n';
const GET_B = 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n';

/** The accounting with in-flight requests counted from the open sessions; asserts nothing is unexplained. */
function balanced(t: Script): ReturnType<typeof requestAccounting> {
  const acc = requestAccounting(t.engine.stats, t.engine.requestsInFlight());
  assert.equal(acc.unexplained, 0, JSON.stringify(acc));
  assert.equal(acc.balanced, true, JSON.stringify(acc));
  const lost = Object.values(acc.lost).reduce((a, b) => a + b, 0);
  assert.equal(acc.captured, acc.replayed + lost);
  return acc;
}

/** Advances the clock in 50 ms steps (each tick runs the timers due once). */
function run(t: Script, ms: number): void {
  for (let i = 0; i < ms / 50; i++) t.tick(50);
}

/** One connection from client port `sport`: SYN then one request. */
function connect(t: Script, sport: number, data = GET_A): void {
  t.clientSends({ sport, seq: 1000, flags: 'S' });
  t.clientSends({ sport, seq: 1001, ack: 5001, flags: 'PA', data });
}

test('RST answering the SYN ends the session as targetRefused, its request lost', () => {
  const t = new Script();
  connect(t, 40000);
  t.expectEmitted([{ seq: 1000, flags: 'S' }]);
  t.targetReplies({ seq: 0, ack: 1001, flags: 'RA' });
  const s = t.engine.stats;
  assert.equal(s.outcomes.targetRefused, 1);
  assert.equal(s.outcomes.targetReset, 0);
  assert.equal(s.requestsLost.targetRefused, 1);
  assert.deepEqual(balanced(t).lost, { sampledOut: 0, targetRefused: 1 });
});

test('handshake that times out during a channel outage ends as channelDown, not targetNoHandshake', () => {
  const t = new Script();
  connect(t, 40000);
  t.take();
  t.tick(50);
  t.engine.setChannelUp(false);
  run(t, 500);
  t.engine.setChannelUp(true); // back before the SYN retries are exhausted: still the outage's fault
  run(t, 10_000);
  const s = t.engine.stats;
  assert.equal(s.outcomes.channelDown, 1);
  assert.equal(s.outcomes.targetNoHandshake, 0);
  assert.equal(s.requestsLost.channelDown, 1);
  balanced(t);
});

test('a session started while the channel is down is blamed on the channel; one started after is not', () => {
  const t = new Script();
  t.engine.setChannelUp(false);
  assert.equal(t.engine.isChannelUp, false);
  connect(t, 40000);
  t.tick(100);
  t.engine.setChannelUp(true);
  connect(t, 40001);
  run(t, 10_000);
  const s = t.engine.stats;
  assert.equal(s.outcomes.channelDown, 1);
  assert.equal(s.outcomes.targetNoHandshake, 1);
  balanced(t);
});

test('data timeout and unfinished sessions while the channel is down count as channelDown', () => {
  const t = new Script();
  connect(t, 40000);
  t.targetReplies({ sport: 8080, dport: 40000, seq: 90000, ack: 1001, flags: 'SA', mss: 1460 });
  connect(t, 40001, GET_B);
  t.targetReplies({ dport: 40001, seq: 70000, ack: 1001, flags: 'SA', mss: 1460 });
  t.take();
  t.engine.setChannelUp(false);
  run(t, 120_000); // retransmissions exhausted for both
  const s = t.engine.stats;
  assert.equal(s.outcomes.channelDown, 2);
  assert.equal(s.outcomes.targetTimeout, 0);
  connect(t, 40002);
  t.engine.finish(t.now);
  assert.equal(s.outcomes.channelDown, 3);
  assert.equal(s.outcomes.unfinished, 0);
  assert.equal(s.requestsLost.channelDown, 3);
  balanced(t);
});

test('-O: a connection without SYN is skipped once, its requests lost as noSyn', () => {
  const t = new Script({ onlySyn: true });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: GET_A });
  t.clientSends({ seq: 1001 + GET_A.length, ack: 5101, flags: 'PA', data: GET_B });
  t.clientSends({ seq: 1001 + GET_A.length + GET_B.length, ack: 5101, flags: 'PA', data: 'more of /b' });
  t.expectNothing();
  const s = t.engine.stats;
  assert.equal(s.sessionsNoSyn, 1);
  assert.equal(s.requestsNoSyn, 2);
  assert.equal(s.clientOrphans, 3);
  assert.deepEqual(balanced(t).lost, { sampledOut: 0, noSyn: 2 });
});

test('session cap: a refused connection counts once as evicted and its requests as lost', () => {
  const t = new Script({ maxSessions: 1 });
  connect(t, 40000);
  connect(t, 40001);
  t.clientSends({ sport: 40001, seq: 1001 + GET_A.length, ack: 5101, flags: 'PA', data: GET_B });
  const s = t.engine.stats;
  assert.equal(s.outcomes.evicted, 1);
  assert.equal(s.sessionsCreated, 2);
  assert.equal(s.requestsLost.evicted, 2);
  t.clientSends({ sport: 40001, seq: 1001 + GET_A.length + GET_B.length, ack: 5201, flags: 'FA' });
  t.engine.finish(t.now);
  assert.deepEqual(balanced(t).lost, { sampledOut: 0, evicted: 2, unfinished: 1 });
});

test('-r 50: sampled-out and replayed requests add up to the captured ones', () => {
  const t = new Script({ samplePercent: 50 });
  for (let i = 0; i < 40; i++) {
    const sport = 30000 + i * 7;
    connect(t, sport);
    t.clientSends({ sport, seq: 1001 + GET_A.length, ack: 5101, flags: 'PA', data: GET_B });
  }
  t.engine.finish(t.now);
  const s = t.engine.stats;
  assert.ok(s.sessionsSampledOut > 5 && s.sessionsSampledOut < 35, `${s.sessionsSampledOut}`);
  assert.equal(s.requestsSampledOut, s.sessionsSampledOut * 2);
  const acc = balanced(t);
  assert.equal(acc.captured, 80);
});

test('in flight is counted from the open sessions, and is gone once they end', () => {
  const t = new Script();
  connect(t, 40000);
  t.targetReplies({ dport: 40000, seq: 5000, ack: 1001, flags: 'SA', mss: 1460 });
  t.take(); // GET /a sent, not yet acknowledged
  connect(t, 40001, GET_B); // SYN sent, GET /b waiting for the handshake
  assert.equal(t.engine.requestsInFlight(), 2);
  const open = balanced(t);
  assert.equal(open.inFlight, 2);
  assert.equal(open.lost['inFlight'], 2);
  t.targetReplies({ dport: 40000, seq: 5001, ack: 1001 + GET_A.length, flags: 'A' }); // GET /a acknowledged: replayed
  assert.equal(t.engine.requestsInFlight(), 1);
  assert.equal(balanced(t).replayed, 1);
  t.engine.finish(t.now);
  assert.equal(t.engine.requestsInFlight(), 0);
  assert.deepEqual(balanced(t).lost, { sampledOut: 0, unfinished: 1 });
});

test('a remainder the sessions do not explain is unexplained, not hidden as in flight', () => {
  const t = new Script();
  for (let i = 0; i < 3; i++) connect(t, 40000 + i);
  t.engine.finish(t.now);
  const s = t.engine.stats;
  assert.deepEqual(balanced(t).lost, { sampledOut: 0, unfinished: 3 });
  // a counting bug: requests captured that no session, reason or replay accounts for
  s.requestsCaptured += 63;
  const acc = requestAccounting(s, t.engine.requestsInFlight());
  assert.equal(acc.balanced, false);
  assert.equal(acc.unexplained, 63);
  assert.equal(acc.inFlight, 0);
  assert.equal(acc.lost['inFlight'], undefined, 'not called in flight: no session is open');
  // and the other way round: more replayed + lost than captured
  s.requestsCaptured -= 63;
  s.requestsLost.unfinished += 2;
  const over = requestAccounting(s, t.engine.requestsInFlight());
  assert.equal(over.unexplained, -2);
  assert.equal(over.balanced, false);
});

test('an open session does not explain more than it holds', () => {
  const t = new Script();
  connect(t, 40000); // one request in flight
  const s = t.engine.stats;
  s.requestsCaptured += 5; // five more that no session holds
  const acc = requestAccounting(s, t.engine.requestsInFlight());
  assert.equal(acc.inFlight, 1);
  assert.equal(acc.unexplained, 5);
  assert.equal(acc.balanced, false);
});

test('a connection refused after its handshake ACK was captured still counts its first request (lost, not uncounted)', () => {
  const t = new Script();
  t.clientSends({ sport: 40000, seq: 1000, flags: 'S' });
  t.clientSends({ sport: 40000, seq: 1001, ack: 5001, flags: 'A' }); // the captured handshake ACK
  t.targetReplies({ seq: 0, ack: 1001, flags: 'RA' }); // the target refuses before the request is read
  t.clientSends({ sport: 40000, seq: 1001, ack: 5001, flags: 'PA', data: GET_A });
  t.clientSends({ sport: 40000, seq: 1001 + GET_A.length, ack: 5101, flags: 'PA', data: GET_B });
  const s = t.engine.stats;
  assert.equal(s.outcomes.targetRefused, 1);
  assert.equal(s.requestsCaptured, 2, 'both captured requests are counted');
  assert.deepEqual(balanced(t).lost, { sampledOut: 0, targetRefused: 2 });
});
