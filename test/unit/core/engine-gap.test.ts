import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Script } from './script';

/**
 * Requests behind a capture hole (a client segment the capture lost, e.g. tcpdump's kernel
 * drops) can never be replayed; they must still show in the accounting as captured and lost
 * (captureGap), and an offline replay must wait for the gap timeout instead of calling the
 * session drained.
 */

const REQ = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'; // 27 bytes
const L = REQ.length;

/** Client ISN 1000, online server ISN 5000 (100-byte responses), target ISN 90000. */
function withHole(): Script {
  const t = new Script({ gapTimeoutMs: 1000 });
  t.clientSends({ seq: 1000, flags: 'S', mss: 1460 });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'A' });
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA', mss: 1460 });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: REQ }); // request 1
  t.targetReplies({ seq: 90001, ack: 1001 + L, flags: 'PA', len: 100 });
  // request 2 (seq 1001+L, ack 5101) was lost by the capture; requests 3 and 4 are parked
  t.clientSends({ seq: 1001 + 2 * L, ack: 5201, flags: 'PA', data: REQ });
  t.clientSends({ seq: 1001 + 3 * L, ack: 5301, flags: 'PA', data: REQ });
  t.take();
  return t;
}

test('requests parked behind a capture hole are counted as captured and lost (captureGap) when the gap times out', () => {
  const t = withHole();
  assert.equal(t.engine.busySessions(), 1, 'a session waiting for a hole is not drained');
  t.tick(1000);
  t.expectEmitted([{ flags: 'RA', seq: 1001 + L }]);
  const st = t.engine.stats;
  assert.equal(st.outcomes.captureGap, 1);
  assert.equal(st.requestsReplayed, 1);
  assert.equal(st.requestsCaptured, 3);
  assert.equal(st.requestsLost.captureGap, 2);
  assert.equal(t.engine.busySessions(), 0);
});

test('finish() ends a session still waiting for a capture hole as captureGap, its parked requests lost', () => {
  const t = withHole();
  t.engine.finish(t.now);
  const st = t.engine.stats;
  assert.equal(st.outcomes.captureGap, 1);
  assert.equal(st.outcomes.completed, 0);
  assert.equal(st.requestsCaptured, 3);
  assert.equal(st.requestsLost.captureGap, 2);
  assert.equal(st.requestsCaptured, st.requestsReplayed + st.requestsLost.captureGap);
});

test('a parked continuation segment of one request counts once', () => {
  const t = withHole();
  t.clientSends({ seq: 1001 + 4 * L, ack: 5301, flags: 'PA', data: 'X-More: 1\r\n' }); // same ack: same request
  t.engine.finish(t.now);
  assert.equal(t.engine.stats.requestsLost.captureGap, 2);
});
