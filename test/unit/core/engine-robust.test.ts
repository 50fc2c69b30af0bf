import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Script } from './script';

/** Handshake with timestamps: client ISN 1000 (TSval 500), online ISN 5000, target ISN 90000 (TSval 7000). */
function tsSession(over = {}): Script {
  const t = new Script(over);
  t.clientSends({ seq: 1000, flags: 'S', mss: 1460, wscale: 7, tsVal: 500 });
  t.take();
  t.clientSends({ seq: 1001, ack: 5001, flags: 'A', tsVal: 501 });
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA', mss: 1460, wscale: 7, tsVal: 7000, tsEcr: 500 });
  t.expectEmitted([{ seq: 1001, ack: 90001, flags: 'A', hasTs: true, tsEcr: 7000 }]);
  return t;
}

test('timestamps: TSval never decreases, TSecr echoes the latest target TSval', () => {
  const t = tsSession({ noWait: true });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'a', tsVal: 502 });
  t.expectEmitted([{ seq: 1001, tsVal: 502, tsEcr: 7000 }]);
  t.targetReplies({ seq: 90001, ack: 1002, flags: 'PA', len: 10, tsVal: 7005, tsEcr: 502 });
  t.expectEmitted([{ flags: 'A', ack: 90011, tsVal: 502, tsEcr: 7005 }]);
  // a captured segment with an older TSval (reordered in the capture) still goes out with a newer one
  t.clientSends({ seq: 1002, ack: 5001, flags: 'PA', data: 'b', tsVal: 400 });
  t.expectEmitted([{ seq: 1002, tsVal: 502, tsEcr: 7005 }]);
});

test('server-first protocol: the first command waits for the target greeting', () => {
  const t = new Script();
  t.clientSends({ seq: 1000, flags: 'S' });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'A' }); // handshake ACK: online ISN + 1
  // the online server greeted with 30 bytes, then the client spoke
  t.clientSends({ seq: 1001, ack: 5031, flags: 'PA', data: 'EHLO x\r\n' });
  t.take();
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA', mss: 1460 });
  t.expectEmitted([{ seq: 1001, flags: 'A' }]); // handshake only: no EHLO before the greeting
  t.targetReplies({ seq: 90001, ack: 1001, flags: 'PA', len: 30 });
  t.expectEmitted([{ seq: 1001, ack: 90031, data: 'EHLO x\r\n' }]);
});

test('pipelined requests keep their captured boundaries; one request over many segments goes at once', () => {
  const t = new Script();
  t.clientSends({ seq: 1000, flags: 'S' });
  t.take();
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA', mss: 1460 });
  t.take();
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'GET /1\r\n\r\nGET /2\r\n\r\n' });
  t.clientSends({ seq: 1021, ack: 5001, flags: 'A', data: 'POST /3 part1 ' });
  t.clientSends({ seq: 1035, ack: 5001, flags: 'PA', data: 'part2' });
  t.expectEmitted([
    { seq: 1001, len: 20 },
    { seq: 1021, len: 14 },
    { seq: 1035, len: 5 },
  ]);
});

test('zero window: the session pauses, probes, and resumes when the window opens', () => {
  const t = new Script({ noWait: true });
  t.clientSends({ seq: 1000, flags: 'S' });
  t.take();
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA', mss: 1460, win: 0 });
  t.take();
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'hello' });
  t.expectNothing();
  t.tick(100);
  t.expectEmitted([{ seq: 1001, len: 1, data: 'h' }]); // window probe
  assert.equal(t.engine.stats.windowProbes, 1);
  t.targetReplies({ seq: 90001, ack: 1001, flags: 'A', win: 0 });
  t.tick(199);
  t.expectNothing();
  t.tick(1);
  t.expectEmitted([{ seq: 1001, len: 1 }]); // backed off
  t.targetReplies({ seq: 90001, ack: 1002, flags: 'A', win: 100 });
  t.expectEmitted([{ seq: 1002, data: 'ello' }]);
});

test('a large reply is acknowledged as it arrives (one ACK per batch of reply records)', () => {
  const t = tsSession();
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'GET /big', tsVal: 502 });
  t.take();
  let seq = 90001;
  for (let i = 0; i < 50; i++) {
    t.targetReplies({ seq, ack: 1009, flags: 'A', len: 1448, tsVal: 7001 + i });
    seq += 1448;
    const acks = t.take();
    assert.equal(acks.length, 1);
    assert.equal(acks[0]?.ack, seq);
  }
  assert.equal(t.engine.stats.replyBytes, 50 * 1448);
});

test('the target closes first (FIN), then the captured client FIN completes the session', () => {
  const t = new Script();
  t.clientSends({ seq: 1000, flags: 'S' });
  t.take();
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA' });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'GET /' });
  t.take();
  t.targetReplies({ seq: 90001, ack: 1006, flags: 'PA', len: 20 });
  t.targetReplies({ seq: 90021, ack: 1006, flags: 'FA' });
  t.expectEmitted([
    { ack: 90021, flags: 'A' },
    { ack: 90022, flags: 'A' },
  ]);
  assert.equal(t.engine.stats.sessionsActive, 1); // half-closed: the client may still send
  t.clientSends({ seq: 1006, ack: 5022, flags: 'FA' });
  t.expectEmitted([{ seq: 1006, ack: 90022, flags: 'FA' }]);
  t.targetReplies({ seq: 90022, ack: 1007, flags: 'A' });
  assert.equal(t.engine.stats.outcomes.completed, 1);
  assert.equal(t.engine.stats.sessionsActive, 0);
});

test('retransmission timeout follows the measured RTT (RFC 6298), with a floor at -R', () => {
  const t = new Script({ noWait: true, rtoInitialMs: 100 });
  t.clientSends({ seq: 1000, flags: 'S' });
  t.take();
  t.tick(300); // SYN retransmitted at 100, 300
  t.take();
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA' });
  t.take();
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'x' });
  t.take();
  t.tick(400); // RTT sample of 400 ms
  t.take(); // (retransmissions meanwhile)
  t.targetReplies({ seq: 90001, ack: 1002, flags: 'A' });
  t.clientSends({ seq: 1002, ack: 5001, flags: 'PA', data: 'y' });
  t.take();
  t.tick(100);
  t.expectNothing(); // the RTO is no longer 100 ms
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

test('delayed ACK: the end of a reply (PSH) waits up to 40 ms for the next request to carry its ACK; other segments are acked at once', () => {
  const t = new Script({ delayedAckMs: 40 });
  t.clientSends({ seq: 1000, flags: 'S' });
  t.take();
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA', mss: 1460 });
  t.take();
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'GET /a' });
  t.clientSends({ seq: 1007, ack: 5101, flags: 'PA', data: 'GET /b' });
  t.take();
  t.targetReplies({ seq: 90001, ack: 1007, flags: 'PA', len: 100 });
  t.expectEmitted([{ seq: 1007, ack: 90101, data: 'GET /b' }]); // the request carries the ACK
  t.targetReplies({ seq: 90101, ack: 1013, flags: 'PA', len: 100 });
  t.expectNothing();
  t.tick(39);
  t.expectNothing();
  t.tick(1);
  t.expectEmitted([{ flags: 'A', ack: 90201 }]);
  t.targetReplies({ seq: 90201, ack: 1013, flags: 'A', len: 1460 }); // middle of a reply: at once
  t.expectEmitted([{ flags: 'A', ack: 91661 }]);
  t.targetReplies({ seq: 91661, ack: 1013, flags: 'FA' });
  t.expectEmitted([{ flags: 'A', ack: 91662 }]);
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

test('window scaling: the target window field is shifted by its wscale', () => {
  const t = new Script({ noWait: true });
  t.clientSends({ seq: 1000, flags: 'S', wscale: 7 });
  t.take();
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA', mss: 1000, wscale: 2 });
  t.take();
  t.targetReplies({ seq: 90001, ack: 1001, flags: 'A', win: 500 }); // 500 << 2 = 2000 bytes
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'q'.repeat(3000) });
  t.expectEmitted([
    { seq: 1001, len: 1000 },
    { seq: 2001, len: 1000 },
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
