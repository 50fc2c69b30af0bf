import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Session, SessionState } from '../../../src/core/session/session';
import { Script } from './script';

/** Own fields of an object as plain data: arrays and typed arrays by content, the named parts (rtt, capture, reply) field by field. */
function fields(o: object): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(o).map(([k, v]) => {
      if (Array.isArray(v)) return [k, [...(v as unknown[])]];
      if (v instanceof Float64Array) return [k, [...v]];
      if (v !== null && typeof v === 'object' && !(v instanceof Session)) return [k, fields(v as object)];
      return [k, v];
    }),
  );
}

/** Gives every field of `o` (and of its named parts) a value unlike its initial one. */
function scramble(o: object): void {
  const r = o as Record<string, unknown>;
  for (const [k, v] of Object.entries(o)) {
    if (typeof v === 'number') r[k] = v === 7 ? 8 : 7;
    else if (typeof v === 'boolean') r[k] = !v;
    else if (k === 'timer' && Array.isArray(v))
      v.fill(5); // the timer table has a fixed length
    else if (Array.isArray(v)) v.push(1, 2, 3);
    else if (v instanceof Float64Array) v.fill(5);
    else if (v === null) r[k] = new Session();
    else if (typeof v === 'object') scramble(v as object);
  }
}

test('Session.reset puts every field (and every field of its parts) back to what a new Session has', () => {
  const s = new Session();
  scramble(s);
  s.state = SessionState.Established;
  const arrays = [s.units, s.capture.parked, s.reply.ranges, s.requestSeqs];
  const parts = [s.capture, s.reply, s.rtt, s.timer];
  assert.notDeepEqual(fields(s), fields(new Session()));
  s.reset();
  assert.deepEqual(fields(s), fields(new Session()));
  // the arrays and parts are kept (emptied, reset), not replaced
  assert.deepEqual([s.units, s.capture.parked, s.reply.ranges, s.requestSeqs], arrays);
  assert.ok(arrays.every((a) => a.length === 0));
  assert.ok([s.capture, s.reply, s.rtt, s.timer].every((p, i) => p === parts[i]));
});

/** One short connection on client port `port`: handshake, one request, response, close from both sides. */
function shortConnection(t: Script, port: number, isn: number, flushAtEnd = true): void {
  const req = `GET /${port} HTTP/1.1\r\nHost: x\r\n\r\n`;
  t.clientSends({ sport: port, seq: isn, flags: 'S', mss: 1460 });
  t.expectEmitted([{ sport: port, seq: isn, flags: 'S' }]);
  t.targetReplies({ dport: port, seq: 9000, ack: isn + 1, flags: 'SA', mss: 1460 });
  t.expectEmitted([{ sport: port, seq: isn + 1, ack: 9001, flags: 'A' }]);
  t.clientSends({ sport: port, seq: isn + 1, ack: 5001, flags: 'PA', data: req });
  t.expectEmitted([{ sport: port, seq: isn + 1, ack: 9001, flags: 'PA', data: req }]);
  const end = isn + 1 + req.length;
  t.targetReplies({ dport: port, seq: 9001, ack: end, flags: 'FPA', len: 200 });
  t.expectEmitted([{ sport: port, seq: end, ack: 9202, flags: 'A' }]); // the target's FIN is acknowledged at once
  t.clientSends({ sport: port, seq: end, ack: 5202, flags: 'FA' });
  t.expectEmitted([{ sport: port, seq: end, ack: 9202, flags: 'FA' }]);
  t.targetReplies({ dport: port, seq: 9202, ack: end + 1, flags: 'A' }, flushAtEnd);
}

test('sessions of ended connections are recycled at flush: 2,000 short connections one after another use one Session object', () => {
  const t = new Script();
  for (let i = 0; i < 2000; i++) shortConnection(t, 20000 + i, 1000 + i * 7919);
  const st = t.engine.stats;
  assert.equal(st.sessionsCreated, 2000);
  assert.equal(st.outcomes.completed, 2000);
  assert.equal(st.requestsReplayed, 2000);
  assert.equal(st.sessionsActive, 0);
  assert.equal(t.engine.allocations.sessionObjectsCreated, 1);
  assert.equal(t.removed.length, 2000);
});

test('a session that ended in a batch is recycled only at flush: a connection starting in the same batch gets another object', () => {
  const t = new Script();
  shortConnection(t, 30000, 5000, false); // ended by the last reply, no flush yet
  assert.equal(t.engine.stats.outcomes.completed, 1);
  t.clientSends({ sport: 30001, seq: 100, flags: 'S' });
  t.expectEmitted([{ sport: 30001, seq: 100, flags: 'S' }]);
  assert.equal(t.engine.allocations.sessionObjectsCreated, 2, 'the ended session is not reused within its batch');
  t.engine.flush();
  t.clientSends({ sport: 30002, seq: 200, flags: 'S' });
  t.expectEmitted([{ sport: 30002, seq: 200, flags: 'S' }]);
  assert.equal(t.engine.allocations.sessionObjectsCreated, 2, 'reused after the flush');
  t.targetReplies({ dport: 30001, seq: 7000, ack: 101, flags: 'SA' });
  t.targetReplies({ dport: 30002, seq: 8000, ack: 201, flags: 'SA' });
  t.expectEmitted([
    { sport: 30001, seq: 101, ack: 7001, flags: 'A' },
    { sport: 30002, seq: 201, ack: 8001, flags: 'A' },
  ]);
  assert.equal(t.engine.stats.sessionsActive, 2);
});
