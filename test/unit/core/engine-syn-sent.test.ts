import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Script, GET_A, connect, runFor, balanced } from './script';

/** SYN-SENT: our SYN is out, the target's SYN-ACK (reported by intercept) is awaited. */

test('data captured before the SYN-ACK completes the handshake itself (no separate ACK)', () => {
  const t = new Script();
  t.clientSends({ seq: 1000, flags: 'S' });
  t.take();
  t.clientSends({ seq: 1001, ack: 5001, flags: 'A' });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: GET_A });
  t.expectNothing();
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA', mss: 1460 });
  t.expectEmitted([{ seq: 1001, ack: 90001, flags: 'PA', data: GET_A }]);
});

test('SYN retransmitted with backoff, then given up as targetNoHandshake', () => {
  const t = new Script();
  t.clientSends({ seq: 1000, flags: 'S' });
  t.take();
  const gaps = [100, 200, 400, 800, 1600];
  for (const g of gaps) {
    t.tick(g - 1);
    t.expectNothing();
    t.tick(1);
    t.expectEmitted([{ seq: 1000, flags: 'S' }]);
  }
  t.tick(3000);
  t.expectNothing();
  assert.equal(t.engine.stats.outcomes.targetNoHandshake, 1);
  assert.equal(t.engine.stats.synsSent, 6);
});

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

test('a stale connection on the target (challenge ACK to our SYN) is reset and the SYN retried', () => {
  const t = new Script();
  t.clientSends({ seq: 1000, flags: 'S' });
  t.take();
  t.targetReplies({ seq: 777, ack: 555, flags: 'A' });
  t.expectEmitted([{ seq: 555, flags: 'R' }]);
  t.tick(1);
  t.expectEmitted([{ seq: 1000, flags: 'S' }]);
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA' });
  t.expectEmitted([{ seq: 1001, ack: 90001, flags: 'A' }]);
});

test('handshake that times out during a channel outage ends as channelDown, not targetNoHandshake', () => {
  const t = new Script();
  connect(t, 40000);
  t.take();
  t.tick(50);
  t.engine.setChannelUp(false);
  runFor(t, 500);
  t.engine.setChannelUp(true); // back before the SYN retries are exhausted: still the outage's fault
  runFor(t, 10_000);
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
  runFor(t, 10_000);
  const s = t.engine.stats;
  assert.equal(s.outcomes.channelDown, 1);
  assert.equal(s.outcomes.targetNoHandshake, 1);
  balanced(t);
});

test('every session ends in exactly one counted outcome', () => {
  const t = new Script({ sessionTimeoutMs: 60_000, keepaliveTimeoutMs: 1000 });
  for (let i = 0; i < 20; i++) t.clientSends({ seq: 1000 + i, flags: 'S', sport: 30000 + i });
  for (let i = 0; i < 100; i++) t.tick(100);
  const s = t.engine.stats;
  const ended = Object.values(s.outcomes).reduce((a, b) => a + b, 0);
  assert.equal(ended, 20);
  assert.equal(s.sessionsActive, 0);
  assert.equal(s.outcomes.targetNoHandshake, 20);
});
