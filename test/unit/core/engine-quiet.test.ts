import { test } from 'node:test';
import { Script } from './script';

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
