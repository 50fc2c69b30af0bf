import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UNIT_COST_BYTES } from '../../../src/core/session/session';
import { GET_A, balanced, established } from './script';

/**
 * The per-session backlog bound (EngineConfig.maxBacklogBytes, `--session-backlog`, issue 18
 * item 13): a session whose captured data waiting for the target passes it is ended as
 * 'backlog', its waiting requests and the rest of its connection counted lost with that reason.
 */

/** Sends `n` pipelined requests (GET_A) from the established client, each after a "reply" from online (ack + 100). */
function requests(t: ReturnType<typeof established>, n: number, from = 0): void {
  for (let i = from; i < from + n; i++)
    t.clientSends({ seq: 1001 + i * GET_A.length, ack: 5001 + i * 100, flags: 'PA', data: GET_A });
}

test('a target that acknowledges nothing: past the bound the session ends as backlog, every request counted', () => {
  const perUnit = GET_A.length + UNIT_COST_BYTES;
  const t = established({ maxBacklogBytes: 10 * perUnit });
  requests(t, 10);
  assert.equal(t.engine.stats.sessionsActive, 1, '10 units: at the bound, kept');
  t.take();
  requests(t, 1, 10);
  assert.equal(t.engine.stats.sessionsActive, 0, 'the 11th unit passes it');
  assert.equal(t.engine.stats.outcomes.backlog, 1);
  // the target is told: a reset for the connection it holds
  assert.ok(t.take().some((p) => p.flags.includes('R')));
  // the rest of the connection is counted, not replayed
  requests(t, 2, 11);
  t.expectNothing();
  const acc = balanced(t);
  assert.equal(acc.captured, 13);
  assert.equal(acc.replayed, 0);
  assert.equal(acc.lost['backlog'], 13);
});

test('acknowledged data does not count: a target that keeps up is never cut off', () => {
  const t = established({ maxBacklogBytes: 2 * (GET_A.length + UNIT_COST_BYTES) });
  for (let i = 0; i < 50; i++) {
    const seq = 1001 + i * GET_A.length;
    t.clientSends({ seq, ack: 5001 + i * 10, flags: 'PA', data: GET_A });
    t.take();
    t.targetReplies({ seq: 90001 + i * 10, ack: seq + GET_A.length, flags: 'PA', data: 'HTTP/1.0 1' });
    t.take();
  }
  assert.equal(t.engine.stats.outcomes.backlog, 0, JSON.stringify(t.engine.stats.outcomes));
  assert.equal(t.engine.stats.sessionsActive, 1);
  assert.equal(t.engine.stats.requestsReplayed, 50);
});

test('no bound by default', () => {
  const t = established();
  requests(t, 500);
  assert.equal(t.engine.stats.sessionsActive, 1);
  assert.equal(t.engine.stats.outcomes.backlog, 0);
});
