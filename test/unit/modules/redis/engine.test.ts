/**
 * The redis module in the real engine (src/core), not the scripted driver: production's AUTH
 * (26 bytes) becomes the target's (28 bytes); the engine sends the command after it at the
 * mapped sequence number, translates the target's ACKs back and counts both requests replayed.
 * A session picked up mid-stream sends the inserted AUTH first and its command after the +OK.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { balanced, established, Script } from '../../core/script';
import { definition } from '../../../../src/modules/redis/index';
import { buildCommand } from '../../../../src/modules/redis/resp';

const AUTH = buildCommand(['AUTH', 'prodpw']).toString('latin1');
const SET = buildCommand(['SET', 'k', 'v']).toString('latin1');
const TARGET_AUTH = buildCommand(['AUTH', 'targetpw']).toString('latin1');
const redis = (): ReturnType<typeof definition.createModule> => definition.createModule({ 'redis-auth': ['targetpw'] });

test('engine + redis module: AUTH rewritten to another length, the SET follows in mapped sequence space', () => {
  const t = established({ module: redis() });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: AUTH });
  assert.deepEqual(
    t
      .take()
      .filter((e) => e.len > 0)
      .map((e) => [e.seq, e.data]),
    [[1001, TARGET_AUTH]],
  );
  t.targetReplies({ seq: 90001, ack: 1001 + TARGET_AUTH.length, flags: 'PA', data: '+OK\r\n' });
  t.take();
  t.clientSends({ seq: 1001 + AUTH.length, ack: 5006, flags: 'PA', data: SET });
  assert.deepEqual(
    t
      .take()
      .filter((e) => e.len > 0)
      .map((e) => [e.seq, e.data]),
    [[1001 + TARGET_AUTH.length, SET]],
  );
  t.targetReplies({ seq: 90006, ack: 1001 + TARGET_AUTH.length + SET.length, flags: 'PA', data: '+OK\r\n' });
  t.take();
  assert.equal(t.engine.stats.module?.counters['authRewritten'], 1);
  assert.equal(t.engine.stats.module?.counters['authOk'], 1);
  const acc = balanced(t);
  assert.equal(acc.replayed, 2);
});

test('engine + redis module: a mid-stream session gets an AUTH, its command waits for the +OK', () => {
  const t = new Script({ module: redis() });
  t.clientSends({ seq: 7001, ack: 3001, flags: 'PA', data: SET });
  t.expectEmitted([{ seq: 7000, flags: 'S', len: 0 }]);
  t.targetReplies({ seq: 90000, ack: 7001, flags: 'SA', mss: 1460 });
  t.expectEmitted([{ seq: 7001, ack: 90001, flags: 'PA', data: TARGET_AUTH }]);
  t.targetReplies({ seq: 90001, ack: 7001 + TARGET_AUTH.length, flags: 'PA', data: '+OK\r\n' });
  t.expectEmitted([{ seq: 7001 + TARGET_AUTH.length, ack: 90006, flags: 'PA', data: SET }]);
  assert.equal(t.engine.stats.module?.counters['authInserted'], 1);
});
