import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Script, CLIENT, TARGET, GET_A, GET_B, established, establishedWithTs } from './script';

/** ESTABLISHED, sending: captured requests go out in order, released exchange by exchange, within the window, retransmitted. */

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
  t.tick(499); // the end of the stream waits closeQuietMs (500) of silence, not replyQuietMs
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

test('reply silence releases the next request only after max(replyQuietMs, 2 * SRTT)', () => {
  const t = new Script();
  t.clientSends({ seq: 1000, flags: 'S' });
  t.take();
  t.tick(60); // handshake RTT 60 ms: SRTT = 60 (below the 100 ms initial RTO, so no SYN retransmission)
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA', mss: 1460 });
  t.take();
  // online answered 'GET /a' with 5000 bytes; the target's answer pauses after 1000 (a cwnd-limited flight)
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'GET /a' });
  t.clientSends({ seq: 1007, ack: 10001, flags: 'PA', data: 'GET /b' });
  t.expectEmitted([{ seq: 1001, data: 'GET /a' }]);
  t.tick(60);
  t.targetReplies({ seq: 90001, ack: 1007, flags: 'A', len: 1000 }); // RTT 60 again: SRTT = 60
  t.expectEmitted([{ flags: 'A', ack: 91001 }]);
  t.tick(30); // the old fixed 30 ms quiet would release 'GET /b' here, cutting into the answer
  t.expectNothing();
  t.tick(89);
  t.expectNothing();
  t.tick(1); // 2 * SRTT of silence: the answer is taken as complete
  t.expectEmitted([{ seq: 1007, data: 'GET /b' }]);
});

test('on a fast path the fixed replyQuietMs still applies', () => {
  const t = new Script();
  t.clientSends({ seq: 1000, flags: 'S' });
  t.take();
  t.tick(1);
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA', mss: 1460 });
  t.take();
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'GET /a' });
  t.clientSends({ seq: 1007, ack: 10001, flags: 'PA', data: 'GET /b' });
  t.take();
  t.targetReplies({ seq: 90001, ack: 1007, flags: 'A', len: 1000 });
  t.take();
  t.tick(29);
  t.expectNothing();
  t.tick(1);
  t.expectEmitted([{ seq: 1007, data: 'GET /b' }]);
});

test('a short pause in a large answer does not release the client FIN: it waits closeQuietMs, and the answer goes on', () => {
  const t = new Script();
  t.clientSends({ seq: 1000, flags: 'S' });
  t.take();
  t.tick(1);
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA', mss: 1460 });
  t.take();
  // production: 'GET /big' answered with 50000 bytes, then the client closed
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'GET /big' });
  t.clientSends({ seq: 1009, ack: 55001, flags: 'FA' });
  t.take();
  t.targetReplies({ seq: 90001, ack: 1009, flags: 'A', len: 20000 });
  t.take();
  t.tick(300); // a stall of 300 ms (tcpcopy or intercept busy): silence, as the engine sees it
  t.expectNothing();
  t.targetReplies({ seq: 110001, ack: 1009, flags: 'A', len: 30000 });
  t.expectEmitted([{ seq: 1009, ack: 140001, flags: 'FA' }]); // all 50000 bytes: the FIN goes at once
  assert.equal(t.engine.stats.sessionsActive, 1);
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

test('timestamps: TSval never decreases, TSecr echoes the latest target TSval', () => {
  const t = establishedWithTs({ noWait: true });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'a', tsVal: 502 });
  t.expectEmitted([{ seq: 1001, tsVal: 502, tsEcr: 7000 }]);
  t.targetReplies({ seq: 90001, ack: 1002, flags: 'PA', len: 10, tsVal: 7005, tsEcr: 502 });
  t.expectEmitted([{ flags: 'A', ack: 90011, tsVal: 502, tsEcr: 7005 }]);
  // a captured segment with an older TSval (reordered in the capture) still goes out with a newer one
  t.clientSends({ seq: 1002, ack: 5001, flags: 'PA', data: 'b', tsVal: 400 });
  t.expectEmitted([{ seq: 1002, tsVal: 502, tsEcr: 7005 }]);
});

test('lost data is retransmitted when the retransmission timer fires', () => {
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
});

test('three duplicate ACKs trigger one fast retransmit of the segment at sndUna', () => {
  const t = established({ noWait: true });
  t.targetReplies({ seq: 90001, ack: 1001, flags: 'A' }); // window update (scaled from now on)
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'x'.repeat(100) });
  t.clientSends({ seq: 1101, ack: 5001, flags: 'PA', data: 'y'.repeat(100) });
  t.take();
  for (let i = 0; i < 3; i++) t.targetReplies({ seq: 90001, ack: 1001, flags: 'A' });
  t.expectEmitted([{ seq: 1001, len: 100 }]);
  assert.equal(t.engine.stats.retransFast, 1);
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

test('a capture hole filled in time: the segments behind it go, in order', () => {
  const t = established({ noWait: true });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'aaaa' });
  t.clientSends({ seq: 1009, ack: 5001, flags: 'PA', data: 'cccc' });
  t.clientSends({ seq: 1005, ack: 5001, flags: 'PA', data: 'bbbb' });
  t.expectEmitted([
    { seq: 1001, data: 'aaaa' },
    { seq: 1005, data: 'bbbb' },
    { seq: 1009, data: 'cccc' },
  ]);
});
