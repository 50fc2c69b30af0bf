import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GET_A, GET_B, balanced, established, runFor } from './script';

/**
 * ReplayEngine.shedIdle (the memory governor over --memory-budget, issue 18 item 13): ends, as
 * 'completed', only established sessions with nothing waiting that have been idle long enough;
 * no request is lost.
 */

/** An established session on client port 40000 whose request GET_A the target has answered and acknowledged. */
function answered() {
  const t = established();
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: GET_A });
  t.take();
  t.targetReplies({ seq: 90001, ack: 1001 + GET_A.length, flags: 'PA', data: 'HTTP/1.1 200 OK\r\n\r\n' });
  t.take();
  return t;
}

test('shedIdle ends a caught-up session idle >= idleMs as completed, nothing lost', () => {
  const t = answered();
  runFor(t, 500);
  assert.equal(t.engine.shedIdle(t.now, 1000, Infinity), 0, 'idle 500 ms < 1000 ms: kept');
  assert.equal(t.engine.stats.sessionsActive, 1);
  runFor(t, 600);
  assert.equal(t.engine.shedIdle(t.now, 1000, Infinity), 1);
  assert.equal(t.engine.stats.sessionsActive, 0);
  assert.equal(t.engine.stats.outcomes.completed, 1);
  const acc = balanced(t);
  assert.equal(acc.captured, 1);
  assert.equal(acc.replayed, 1);
});

test('shedIdle keeps a session with a request the target has not acknowledged', () => {
  const t = answered();
  // a second request, sent but never acknowledged (the target is silent)
  t.clientSends({ seq: 1001 + GET_A.length, ack: 5101, flags: 'PA', data: GET_B });
  t.take();
  runFor(t, 1500);
  t.take();
  assert.equal(t.engine.shedIdle(t.now, 1000, Infinity), 0);
  assert.equal(t.engine.stats.sessionsActive, 1);
});

test('shedIdle ends at most max sessions', () => {
  const t = answered();
  runFor(t, 1100);
  assert.equal(t.engine.shedIdle(t.now, 1000, 0), 0);
  assert.equal(t.engine.stats.sessionsActive, 1);
});

test('a late copy of a request replayed before shedIdle is a duplicate, not a second replay', () => {
  // the max bench at nice 19: a session ended idle while the client's retransmission of its
  // request still waited in the backlogged ring; it used to start a mid-stream session that
  // replayed the request a second time
  const t = answered();
  runFor(t, 1100);
  t.take();
  assert.equal(t.engine.shedIdle(t.now, 1000, Infinity), 1);
  t.take(); // the reset that ends the target's side
  const dupsBefore = t.engine.stats.clientDuplicates;
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: GET_A });
  t.expectNothing();
  assert.equal(t.engine.stats.sessionsActive, 0);
  assert.equal(t.engine.stats.sessionsCreated, 1);
  assert.equal(t.engine.stats.clientDuplicates, dupsBefore + 1);
  const acc = balanced(t);
  assert.equal(acc.captured, 1);
  assert.equal(acc.replayed, 1);
});

test('after shedIdle, the connection FIN alone is the end (no session), new data starts a mid-stream one', () => {
  const t = answered();
  runFor(t, 1100);
  t.take();
  assert.equal(t.engine.shedIdle(t.now, 1000, Infinity), 1);
  // new request on the same keep-alive connection: replayed in a mid-stream session
  const nxt = 1001 + GET_A.length;
  t.clientSends({ seq: nxt, ack: 5101, flags: 'PA', data: GET_B });
  const out = t.take();
  assert.equal(t.engine.stats.sessionsActive, 1);
  assert.equal(t.engine.stats.sessionsSynthesized, 1);
  assert.ok(
    out.some((p) => p.flags === 'S'),
    `a synthesized SYN for the mid-stream session: ${JSON.stringify(out)}`,
  );

  // another connection, ended idle, then only its FIN arrives: nothing to replay, no session
  const u = answered();
  runFor(u, 1100);
  u.take();
  assert.equal(u.engine.shedIdle(u.now, 1000, Infinity), 1);
  u.take();
  u.clientSends({ seq: nxt, ack: 5101, flags: 'FA' });
  u.expectNothing();
  assert.equal(u.engine.stats.sessionsActive, 0);
  assert.equal(u.engine.stats.sessionsCreated, 1);
  balanced(u);
});
