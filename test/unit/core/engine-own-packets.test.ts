/**
 * A capture of both directions (a module that wants the online server's replies) reads back
 * tcpcopy's own packets to the target: with a transfer without an online address (`-x
 * 3306-TARGET:3306` matches any destination of port 3306) they must not be taken for client
 * packets, or every session would be replayed again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Script, TARGET, ONLINE } from './script';
import { parseIp } from '../../../src/core/wire/segment';

test('packets to the target address are ignored (counted), packets to the online server start sessions', () => {
  const t = new Script({}, {}, [{ onlineIp: 0, onlinePort: 3306, targetIp: parseIp(TARGET), targetPort: 3306 }]);
  // what tcpcopy sent: the client's address, to the target
  t.clientSends({ dst: TARGET, dport: 3306, seq: 1000, flags: 'S', mss: 1460 });
  t.clientSends({ dst: TARGET, dport: 3306, seq: 1001, ack: 90001, flags: 'PA', data: 'x' });
  assert.deepEqual(t.take(), []);
  assert.equal(t.engine.stats.clientToTarget, 2);
  assert.equal(t.engine.stats.sessionsCreated, 0);
  // the client's own packet to the online server
  t.clientSends({ dst: ONLINE, dport: 3306, seq: 1000, flags: 'S', mss: 1460 });
  assert.equal(t.engine.stats.sessionsCreated, 1);
  assert.equal(t.take().filter((e) => e.flags === 'S').length, 1);
  assert.equal(t.engine.stats.clientToTarget, 2);
});

test('with an online address the transfer never matches the target address: nothing to ignore', () => {
  const t = new Script({}, {}, [
    { onlineIp: parseIp(ONLINE), onlinePort: 3306, targetIp: parseIp(TARGET), targetPort: 3306 },
  ]);
  t.clientSends({ dst: TARGET, dport: 3306, seq: 1000, flags: 'S', mss: 1460 });
  assert.equal(t.engine.stats.clientToTarget, 0);
  assert.equal(t.engine.stats.sessionsCreated, 0);
});
