import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Script, established, establishedWithTs } from './script';

/** ESTABLISHED, receiving: the target's replies are acknowledged (at once or delayed) and reassembled across holes. */

/** Established session, request 'GET /a' sent (captured: the online server answered 3000 bytes before 'GET /b'). */
function oneRequestSent(): Script {
  const t = established();
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'GET /a' });
  t.clientSends({ seq: 1007, ack: 8001, flags: 'PA', data: 'GET /b' });
  t.expectEmitted([{ seq: 1001, data: 'GET /a' }]);
  return t;
}

test('a large reply is acknowledged as it arrives (one ACK per batch of reply records)', () => {
  const t = establishedWithTs();
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

test('reordered reply segments are kept (as ranges): the ACK jumps past them when the hole fills', () => {
  const t = oneRequestSent();
  // the reply's 2nd and 3rd segments overtake the 1st
  t.targetReplies({ seq: 91001, ack: 1007, flags: 'A', len: 1000 });
  t.expectEmitted([{ flags: 'A', ack: 90001 }]); // duplicate ACK for the hole
  t.targetReplies({ seq: 92001, ack: 1007, flags: 'PA', len: 1000 });
  t.expectEmitted([{ flags: 'A', ack: 90001 }]);
  assert.equal(t.engine.stats.replyBytes, 0);
  // the 1st arrives: everything is acknowledged at once, and the whole reply (3000 bytes) releases 'GET /b'
  t.targetReplies({ seq: 90001, ack: 1007, flags: 'A', len: 1000 });
  t.expectEmitted([{ seq: 1007, ack: 93001, data: 'GET /b' }]);
  assert.equal(t.engine.stats.replyBytes, 3000);
});

test('a FIN received beyond a hole counts only once the hole is filled', () => {
  const t = oneRequestSent();
  t.targetReplies({ seq: 91001, ack: 1007, flags: 'FA', len: 2000 });
  t.expectEmitted([{ flags: 'A', ack: 90001 }]);
  t.targetReplies({ seq: 90001, ack: 1007, flags: 'A', len: 1000 });
  const out = t.take();
  assert.equal(out.at(-1)?.ack, 93002, 'the FIN is acknowledged');
  assert.equal(t.engine.stats.replyBytes, 3000);
});

test('overlapping and retransmitted out-of-order ranges merge; at most a bounded number are kept', () => {
  const t = oneRequestSent();
  t.targetReplies({ seq: 91001, ack: 1007, flags: 'A', len: 500 });
  t.targetReplies({ seq: 91301, ack: 1007, flags: 'A', len: 700 }); // overlaps the previous one
  t.targetReplies({ seq: 91001, ack: 1007, flags: 'A', len: 500 }); // retransmitted
  for (let i = 0; i < 20; i++) t.targetReplies({ seq: 100_001 + i * 2000, ack: 1007, flags: 'A', len: 10 }); // far islands
  t.take();
  t.targetReplies({ seq: 90001, ack: 1007, flags: 'A', len: 1000 });
  const out = t.take();
  assert.equal(out.at(-1)?.ack, 92001);
  assert.equal(t.engine.stats.replyBytes, 2000);
});
