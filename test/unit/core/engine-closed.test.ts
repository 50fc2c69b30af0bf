import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Script, CLIENT, TARGET, GET_A, GET_B, connect, balanced } from './script';

/**
 * CLOSED: a captured packet for which no session exists. A SYN (or, without -O, the first data
 * of a connection captured mid-stream) starts one, unless sampling, the session cap or the end
 * of an earlier replay of that connection says otherwise.
 */

test('handshake: CLIENT_ADD before the SYN, destination rewritten, options kept', () => {
  const t = new Script();
  t.clientSends({ seq: 1000, flags: 'S', mss: 1460, wscale: 7, tsVal: 777 });
  assert.deepEqual(t.added, [`${CLIENT}:40000>${TARGET}:8080`]);
  t.expectEmitted([{ dst: TARGET, dport: 8080, seq: 1000, flags: 'S', mss: 1460, wscale: 7, hasTs: true, tsVal: 777 }]);
  t.clientSends({ seq: 1000, flags: 'S', mss: 1460, wscale: 7, tsVal: 777 }); // captured retransmission
  t.expectNothing();
  assert.equal(t.engine.stats.sessionsCreated, 1);
});

test('a session captured mid-stream gets a synthesized SYN (seq - 1, MSS from -D)', () => {
  const t = new Script({ mss: 1400 });
  t.clientSends({ seq: 7001, ack: 3001, flags: 'PA', data: GET_A });
  t.expectEmitted([{ seq: 7000, flags: 'S', mss: 1400, wscale: 7 }]);
  t.targetReplies({ seq: 90000, ack: 7001, flags: 'SA', mss: 1460, wscale: 7 });
  t.expectEmitted([{ seq: 7001, ack: 90001, flags: 'PA', data: GET_A }]);
  assert.equal(t.engine.stats.sessionsSynthesized, 1);
});

test('-O: a session captured mid-stream is not replayed', () => {
  const t = new Script({ onlySyn: true });
  t.clientSends({ seq: 7001, ack: 3001, flags: 'PA', data: GET_A });
  t.expectNothing();
  assert.equal(t.engine.stats.sessionsNoSyn, 1);
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

test('-r 30 replays about 30% of sessions, chosen by client address', () => {
  const t = new Script({ samplePercent: 30 });
  for (let i = 0; i < 2000; i++) t.clientSends({ seq: 1000, flags: 'S', sport: 10000 + i });
  const n = t.take().length;
  assert.ok(n > 540 && n < 660, `sessions replayed: ${n}`);
  assert.equal(t.engine.stats.sessionsSampledOut + n, 2000);
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

test('-g ramps the replayed share from 1% up to -r over rampMs', () => {
  const t = new Script({ samplePercent: 100, rampMs: 100_000 });
  let port = 10000;
  const burst = (): number => {
    for (let i = 0; i < 2000; i++) t.clientSends({ seq: 1000, flags: 'S', sport: port++ });
    return t.take().length;
  };
  const first = burst();
  t.tick(50_000);
  t.take(); // SYN retries of the sessions started so far
  const middle = burst();
  t.tick(60_000);
  t.take();
  const last = burst();
  assert.ok(first < 60, `start ${first}`);
  assert.ok(middle > 850 && middle < 1150, `middle ${middle}`);
  assert.equal(last, 2000);
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

test('-H replaces loopback client addresses before -c', () => {
  const t = new Script({ localhostIp: (198 * 2 ** 24 + 18 * 2 ** 16 + 1 * 256 + 9) >>> 0 });
  t.clientSends({ src: '127.0.0.1', seq: 1000, flags: 'S' });
  t.clientSends({ src: '198.18.1.7', seq: 2000, flags: 'S', sport: 40001 });
  t.expectEmitted([
    { src: '198.18.1.9', seq: 1000, flags: 'S' },
    { src: '198.18.1.7', seq: 2000, flags: 'S' },
  ]);
});

test('after a replay ended mid-stream, the rest of that connection is counted as lost, not replayed as a new session', () => {
  const t = new Script();
  t.clientSends({ seq: 1000, flags: 'S' });
  t.take();
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA' });
  t.take();
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'POST /x part1 ' });
  t.take();
  t.targetReplies({ seq: 90001, ack: 1001, flags: 'R' }); // the target resets before acking it
  t.clientSends({ seq: 1015, ack: 5001, flags: 'PA', data: 'part2' });
  t.clientSends({ seq: 1020, ack: 5101, flags: 'PA', data: 'GET /y' });
  t.expectNothing(); // no synthesized SYN for the tail of a broken connection
  const s = t.engine.stats;
  assert.equal(s.sessionsCreated, 1);
  assert.equal(s.requestsCaptured, 2);
  assert.equal(s.requestsLost.targetReset, 2);
  t.clientSends({ seq: 1026, ack: 5201, flags: 'FA' });
  t.clientSends({ seq: 70000, flags: 'S' }); // the port reused by a new connection: replayed
  t.expectEmitted([{ seq: 70000, flags: 'S' }]);
});

test('a keep-alive connection resumed after its drained session ended is replayed from a request boundary', () => {
  const t = new Script({ keepaliveTimeoutMs: 1000 });
  t.clientSends({ seq: 1000, flags: 'S' });
  t.take();
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA' });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'GET /a' });
  t.targetReplies({ seq: 90001, ack: 1007, flags: 'PA', len: 10 });
  t.take();
  for (let i = 0; i < 12; i++) t.tick(100);
  t.expectEmitted([{ flags: 'RA' }]); // idle: completed, target connection freed
  t.clientSends({ seq: 1007, ack: 5011, flags: 'PA', data: 'GET /b' });
  t.expectEmitted([{ seq: 1006, flags: 'S' }]); // synthesized: the next request starts cleanly
});
