/**
 * Several targets for one online port (`-x 80-OLD:8080,80-NEW:8080`, the comparison's reference
 * target): every captured session goes to each of them as its own replay variant (its own
 * client port), and each target's replies reach only its own session.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIpv4 } from '../../../src/core/wire/segment';
import { CLIENT, GET_A, Script } from './script';

const OLD = '198.18.0.4';
const NEW = '198.18.0.2';

function twoTargets(replicas = 1): Script {
  return new Script({ replicas }, {}, [
    { onlineIp: 0, onlinePort: 80, targetIp: parseIpv4(OLD), targetPort: 8080 },
    { onlineIp: 0, onlinePort: 80, targetIp: parseIpv4(NEW), targetPort: 8080 },
    { onlineIp: 0, onlinePort: 81, targetIp: parseIpv4(NEW), targetPort: 8081 },
  ]);
}

test('one captured SYN: a session per target of its port, distinct client ports, CLIENT_ADD before each SYN', () => {
  const t = twoTargets();
  t.clientSends({ seq: 1000, flags: 'S', mss: 1460 });
  assert.equal(t.added.length, 2);
  assert.equal(t.added[0], `${CLIENT}:40000>${OLD}:8080`);
  const second = /^198\.18\.1\.2:(\d+)>198\.18\.0\.2:8080$/.exec(t.added[1] as string);
  assert.ok(second, t.added[1]);
  const port2 = Number(second[1]);
  assert.notEqual(port2, 40000);
  t.expectEmitted([
    { dst: OLD, dport: 8080, sport: 40000, seq: 1000, flags: 'S' },
    { dst: NEW, dport: 8080, sport: port2, seq: 1000, flags: 'S' },
  ]);
  assert.equal(t.engine.stats.sessionsCreated, 2);
  // each target's SYN-ACK establishes its own session only; the request goes to both
  t.targetReplies({ src: NEW, dport: port2, seq: 9000, ack: 1001, flags: 'SA', mss: 1460 });
  t.expectEmitted([{ dst: NEW, sport: port2, flags: 'A', ack: 9001 }]);
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: GET_A });
  t.expectEmitted([{ dst: NEW, sport: port2, seq: 1001, data: GET_A }]);
  t.targetReplies({ src: OLD, dport: 40000, seq: 7000, ack: 1001, flags: 'SA', mss: 1460 });
  t.expectEmitted([{ dst: OLD, sport: 40000, seq: 1001, ack: 7001, data: GET_A }]);
  // another port with one target: one session, as before
  t.clientSends({ dport: 81, sport: 40100, seq: 5000, flags: 'S' });
  t.expectEmitted([{ dst: NEW, dport: 8081, sport: 40100, flags: 'S' }]);
});

test('with -n 2: targets x replicas sessions, every one on its own client port', () => {
  const t = twoTargets(2);
  t.clientSends({ seq: 1000, flags: 'S' });
  const got = t.take();
  assert.equal(got.length, 4);
  assert.deepEqual(
    got.map((g) => g.dst),
    [OLD, OLD, NEW, NEW],
  );
  assert.equal(new Set(got.map((g) => g.sport)).size, 4);
});
