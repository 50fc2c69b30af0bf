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
