/**
 * Engine accounting that can fail: in-flight requests are counted from the open sessions, and
 * a remainder no session, reason or replay explains is reported as unexplained (issue 18).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { balanced, connect, GET_A, GET_B, Script } from './script';
import { requestAccounting } from '../../../src/run/report';
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
