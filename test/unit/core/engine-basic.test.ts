import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Script, TARGET, CLIENT } from './script';

const GET_A = 'GET /a HTTP/1.1\r\nHost: x\r\n\r\n';
const GET_B = 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n';

/** Client ISN 1000, online server ISN 5000 (seen only in the client's acks), target ISN 90000. */
function established(over = {}): Script {
  const t = new Script(over);
  t.clientSends({ seq: 1000, flags: 'S', mss: 1460, wscale: 7 });
  t.expectEmitted([
    { src: CLIENT, dst: TARGET, sport: 40000, dport: 8080, seq: 1000, flags: 'S', mss: 1460, wscale: 7, len: 0 },
  ]);
  t.clientSends({ seq: 1001, ack: 5001, flags: 'A' });
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA', mss: 1460, wscale: 7 });
  t.expectEmitted([{ seq: 1001, ack: 90001, flags: 'A', len: 0 }]);
  return t;
}

test('handshake: CLIENT_ADD before the SYN, destination rewritten, options kept', () => {
  const t = new Script();
  t.clientSends({ seq: 1000, flags: 'S', mss: 1460, wscale: 7, tsVal: 777 });
  assert.deepEqual(t.added, [`${CLIENT}:40000>${TARGET}:8080`]);
  t.expectEmitted([{ dst: TARGET, dport: 8080, seq: 1000, flags: 'S', mss: 1460, wscale: 7, hasTs: true, tsVal: 777 }]);
  t.clientSends({ seq: 1000, flags: 'S', mss: 1460, wscale: 7, tsVal: 777 }); // captured retransmission
  t.expectNothing();
  assert.equal(t.engine.stats.sessionsCreated, 1);
});

test('request held until the target answers the previous one; reply data acknowledged; FIN exchange completes', () => {
  const t = established();
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: GET_A });
  t.expectEmitted([{ seq: 1001, ack: 90001, flags: 'PA', data: GET_A }]);
  const bEnd = 1001 + GET_A.length;
  // the online server answered with 100 bytes; the client acked them and sent the next request
  t.clientSends({ seq: bEnd, ack: 5101, flags: 'A' });
  t.clientSends({ seq: bEnd, ack: 5101, flags: 'PA', data: GET_B });
  t.expectNothing(); // held: the target has not answered GET /a yet
  t.targetReplies({ seq: 90001, ack: bEnd, flags: 'A' });
  t.expectNothing(); // a bare ACK is no answer
  t.targetReplies({ seq: 90001, ack: bEnd, flags: 'PA', len: 100 });
  t.expectEmitted([{ seq: bEnd, ack: 90101, flags: 'PA', data: GET_B }]);
  const cEnd = bEnd + GET_B.length;
  t.targetReplies({ seq: 90101, ack: cEnd, flags: 'PA', len: 50 });
  t.expectEmitted([{ seq: cEnd, ack: 90151, flags: 'A', len: 0 }]); // reply data acknowledged
  // the online server's answer to /b was 100 bytes; the target sent 50, then went quiet
  t.clientSends({ seq: cEnd, ack: 5201, flags: 'FA' });
  t.expectNothing();
  t.tick(29);
  t.expectNothing();
  t.tick(1);
  t.expectEmitted([{ seq: cEnd, ack: 90151, flags: 'FA' }]);
  t.targetReplies({ seq: 90151, ack: cEnd + 1, flags: 'FA' });
  t.expectEmitted([{ seq: cEnd + 1, ack: 90152, flags: 'A' }]);
  const s = t.engine.stats;
  assert.equal(s.outcomes.completed, 1);
  assert.equal(s.requestsCaptured, 2);
  assert.equal(s.requestsReplayed, 2);
  assert.equal(s.sessionsActive, 0);
  assert.deepEqual(t.removed, [`${CLIENT}:40000>${TARGET}:8080`]);
});

test('-W: requests go without waiting for the reply', () => {
  const t = established({ noWait: true });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: GET_A });
  t.clientSends({ seq: 1001 + GET_A.length, ack: 5101, flags: 'PA', data: GET_B });
  t.expectEmitted([
    { seq: 1001, data: GET_A },
    { seq: 1001 + GET_A.length, data: GET_B },
  ]);
});

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

test('client RST is replayed once the request before it was acknowledged', () => {
  const t = established();
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: GET_A });
  t.take();
  const end = 1001 + GET_A.length;
  t.clientSends({ seq: end, ack: 5001, flags: 'R' });
  t.expectNothing(); // GET /a not acknowledged yet
  t.targetReplies({ seq: 90001, ack: end, flags: 'A' });
  t.expectEmitted([{ seq: end, flags: 'RA' }]);
  assert.equal(t.engine.stats.outcomes.clientReset, 1);
  assert.equal(t.engine.stats.requestsReplayed, 1);
});

test('target RST ends the session as targetReset and counts the lost request', () => {
  const t = established();
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: GET_A });
  t.take();
  t.targetReplies({ seq: 90001, ack: 1001, flags: 'R' });
  t.expectNothing();
  assert.equal(t.engine.stats.outcomes.targetReset, 1);
  assert.equal(t.engine.stats.requestsLost.targetReset, 1);
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

test('lost data is retransmitted on timeout and on three duplicate ACKs', () => {
  const t = established();
  t.targetReplies({ seq: 90001, ack: 1001, flags: 'A', win: 1000 });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: GET_A });
  t.expectEmitted([{ seq: 1001, data: GET_A }]);
  t.tick(100);
  t.expectEmitted([{ seq: 1001, data: GET_A }]);
  assert.equal(t.engine.stats.retransTimeout, 1);
  t.targetReplies({ seq: 90001, ack: 1001 + GET_A.length, flags: 'A', win: 1000 });
  t.tick(1000);
  t.expectNothing();
  // three duplicate acks
  const t2 = established({ noWait: true });
  t2.targetReplies({ seq: 90001, ack: 1001, flags: 'A' }); // window update (scaled from now on)
  t2.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'x'.repeat(100) });
  t2.clientSends({ seq: 1101, ack: 5001, flags: 'PA', data: 'y'.repeat(100) });
  t2.take();
  for (let i = 0; i < 3; i++) t2.targetReplies({ seq: 90001, ack: 1001, flags: 'A' });
  t2.expectEmitted([{ seq: 1001, len: 100 }]);
  assert.equal(t2.engine.stats.retransFast, 1);
});

test('segments larger than the target MSS are split; the window is respected', () => {
  const t = new Script({ noWait: true });
  t.clientSends({ seq: 1000, flags: 'S' });
  t.take();
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA', mss: 536, win: 1000 });
  t.take();
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'z'.repeat(1200) });
  t.expectEmitted([
    { seq: 1001, len: 536 },
    { seq: 1537, len: 464 },
  ]);
  t.targetReplies({ seq: 90001, ack: 2001, flags: 'A', win: 1000 });
  t.expectEmitted([{ seq: 2001, len: 200, flags: 'PA' }]);
});

test('a session captured mid-stream gets a synthesized SYN (seq - 1, MSS from -D); -O skips it', () => {
  const t = new Script({ mss: 1400 });
  t.clientSends({ seq: 7001, ack: 3001, flags: 'PA', data: GET_A });
  t.expectEmitted([{ seq: 7000, flags: 'S', mss: 1400, wscale: 7 }]);
  t.targetReplies({ seq: 90000, ack: 7001, flags: 'SA', mss: 1460, wscale: 7 });
  t.expectEmitted([{ seq: 7001, ack: 90001, flags: 'PA', data: GET_A }]);
  assert.equal(t.engine.stats.sessionsSynthesized, 1);
  const o = new Script({ onlySyn: true });
  o.clientSends({ seq: 7001, ack: 3001, flags: 'PA', data: GET_A });
  o.expectNothing();
  assert.equal(o.engine.stats.sessionsNoSyn, 1);
});

test('idle sessions end after -t / -k with the right outcome', () => {
  const t = established({ keepaliveTimeoutMs: 5000, sessionTimeoutMs: 20000 });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: GET_A });
  t.targetReplies({ seq: 90001, ack: 1001 + GET_A.length, flags: 'PA', len: 10 });
  t.take();
  t.tick(5000);
  t.expectEmitted([{ flags: 'RA' }]); // frees the target's connection
  assert.equal(t.engine.stats.outcomes.completed, 1);
});

test('a capture hole is waited for, then the session ends as captureGap without sending garbage', () => {
  const t = established({ noWait: true, gapTimeoutMs: 1000 });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'aaaa' });
  t.clientSends({ seq: 1009, ack: 5001, flags: 'PA', data: 'cccc' }); // 1005..1008 missing
  t.expectEmitted([{ seq: 1001, data: 'aaaa' }]);
  t.targetReplies({ seq: 90001, ack: 1005, flags: 'A' });
  t.tick(999);
  t.expectNothing();
  t.tick(1);
  t.expectEmitted([{ flags: 'RA', seq: 1005 }]);
  assert.equal(t.engine.stats.outcomes.captureGap, 1);
  // filled in time: both go, in order
  const u = established({ noWait: true });
  u.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'aaaa' });
  u.clientSends({ seq: 1009, ack: 5001, flags: 'PA', data: 'cccc' });
  u.clientSends({ seq: 1005, ack: 5001, flags: 'PA', data: 'bbbb' });
  u.expectEmitted([
    { seq: 1001, data: 'aaaa' },
    { seq: 1005, data: 'bbbb' },
    { seq: 1009, data: 'cccc' },
  ]);
});

test('a new connection reusing the client port while the old one closes is replayed after it', () => {
  const t = established();
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: GET_A });
  const end = 1001 + GET_A.length;
  t.targetReplies({ seq: 90001, ack: end, flags: 'PA', len: 100 });
  t.clientSends({ seq: end, ack: 5101, flags: 'FA' });
  t.take();
  t.clientSends({ seq: 50000, flags: 'S' }); // same port, new ISN, before the target's FIN
  t.expectNothing(); // waits: the old connection's FIN is not acknowledged yet
  t.targetReplies({ seq: 90101, ack: end + 1, flags: 'A' });
  t.expectEmitted([{ seq: 50000, flags: 'S' }]);
  assert.equal(t.engine.stats.outcomes.completed, 1);
  t.targetReplies({ seq: 123, ack: 50001, flags: 'SA' });
  t.expectEmitted([{ seq: 50001, ack: 124, flags: 'A' }]);
});

test('-n 3 replays every session three times from distinct client ports; -c rewrites the address', () => {
  const t = new Script({
    replicas: 3,
    clientIps: [{ kind: 'lastOctet', base: (198 * 2 ** 24 + 18 * 2 ** 16 + 9 * 256) >>> 0 }],
  });
  t.clientSends({ seq: 1000, flags: 'S' });
  const syns = t.take();
  assert.equal(syns.length, 3);
  assert.equal(new Set(syns.map((s) => s.sport)).size, 3);
  assert.ok(syns.every((s) => s.src === '198.18.9.2' && s.flags === 'S'));
  assert.equal(syns[0]?.sport, 40000);
  assert.equal(t.added.length, 3);
});

test('-r 30 replays about 30% of sessions, chosen by client address', () => {
  const t = new Script({ samplePercent: 30 });
  for (let i = 0; i < 2000; i++) t.clientSends({ seq: 1000, flags: 'S', sport: 10000 + i });
  const n = t.take().length;
  assert.ok(n > 540 && n < 660, `sessions replayed: ${n}`);
  assert.equal(t.engine.stats.sessionsSampledOut + n, 2000);
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
