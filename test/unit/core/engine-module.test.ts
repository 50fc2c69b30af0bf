/**
 * The engine with a protocol module: packet scripts for every verdict (a length-changing
 * replace, insert, hold, drop with and without a reason, end), the byte mapping (the target's
 * ACKs in sent space, retransmission of the rewritten bytes, the FIN after the data), the
 * target's bytes delivered in order, and the request accounting.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { balanced, established, runFor, Script } from './script';
import { lineModule } from './line-module';

const REWRITTEN = 'REWRITTEN-AND-LONGER a\n';

test('a replaced message of another length: sent space, ACK translated, retransmitted rewritten, FIN after the data', () => {
  const mod = lineModule();
  const t = established({ module: mod });
  assert.deepEqual(t.addedPayload, [true], 'the session registers with the payload flag');
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'REWRITE a\n' }); // 10 captured bytes
  t.expectEmitted([{ seq: 1001, ack: 90001, flags: 'PA', data: REWRITTEN }]);
  // no ACK: the retransmission carries the rewritten bytes, not the captured ones
  t.tick(100);
  t.expectEmitted([{ seq: 1001, flags: 'PA', data: REWRITTEN }]);
  // the target acknowledges the sent space (1001 + 23) and answers
  t.targetReplies({ seq: 90001, ack: 1001 + REWRITTEN.length, flags: 'PA', data: 'R1' });
  t.expectEmitted([{ seq: 1024, ack: 90003, flags: 'A' }]);
  assert.equal(t.engine.stats.requestsReplayed, 1);
  assert.equal(mod.sessions[0]?.target, 'R1');
  // the next captured request (captured seq 1011) goes at sent seq 1024
  t.clientSends({ seq: 1011, ack: 5003, flags: 'PA', data: 'next\n' });
  t.expectEmitted([{ seq: 1024, ack: 90003, flags: 'PA', data: 'next\n' }]);
  t.targetReplies({ seq: 90003, ack: 1029, flags: 'PA', data: 'R2' });
  t.take();
  // the client's FIN (captured seq 1016) follows the data in sent space
  t.clientSends({ seq: 1016, ack: 5005, flags: 'FA' });
  t.expectEmitted([{ seq: 1029, flags: 'FA', len: 0 }]);
  t.targetReplies({ seq: 90005, ack: 1030, flags: 'FA' });
  assert.equal(t.engine.stats.outcomes.completed, 1);
  assert.equal(mod.sessions[0]?.ended, true);
  assert.equal(t.engine.stats.module?.counters['rewritten'], 1);
  assert.equal(t.engine.stats.module?.replaced, 1);
  const acc = balanced(t);
  assert.equal(acc.replayed, 2);
});

test('a message cut across segments is framed whole; two messages in one segment are offered one by one', () => {
  const mod = lineModule();
  const t = established({ module: mod });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'A', data: 'REWR' });
  t.expectNothing();
  t.clientSends({ seq: 1005, ack: 5001, flags: 'PA', data: 'ITE a\nINS b\n' });
  t.expectEmitted([
    { seq: 1001, data: REWRITTEN },
    { seq: 1024, data: 'PRE\n' },
    { seq: 1028, data: 'INS b\n' },
  ]);
  assert.deepEqual(mod.sessions[0]?.offered, ['REWRITE a\n', 'INS b\n']);
  t.targetReplies({ seq: 90001, ack: 1034, flags: 'A' });
  // one captured request (one captured segment started the exchange), replayed; the insert is not one
  const acc = balanced(t);
  assert.equal(acc.captured, 1);
  assert.equal(acc.replayed, 1);
});

test('insert before a request: not counted; the release wait gates the inserted bytes too', () => {
  const mod = lineModule();
  const t = established({ module: mod });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'first\n' });
  t.expectEmitted([{ seq: 1001, data: 'first\n' }]);
  t.targetReplies({ seq: 90001, ack: 1007, flags: 'A' });
  t.take();
  // the online server answered 10 bytes before the next request: it waits for the target's answer
  t.clientSends({ seq: 1007, ack: 5011, flags: 'PA', data: 'INS x\n' });
  t.expectNothing();
  t.targetReplies({ seq: 90001, ack: 1007, flags: 'PA', data: '0123456789' });
  t.expectEmitted([
    { seq: 1007, ack: 90011, data: 'PRE\n' },
    { seq: 1011, ack: 90011, data: 'INS x\n' },
  ]);
  t.targetReplies({ seq: 90011, ack: 1011, flags: 'A' });
  assert.equal(t.engine.stats.requestsReplayed, 1, 'the insert acknowledged alone is no request');
  t.targetReplies({ seq: 90011, ack: 1017, flags: 'A' });
  assert.equal(t.engine.stats.requestsReplayed, 2);
  assert.equal(t.engine.stats.module?.inserted, 1);
  balanced(t);
});

test('a pipelined module: the next request goes before the target answered the previous one; a hold still waits', () => {
  const mod = lineModule({ pipelined: true });
  const t = established({ module: mod });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'first\n' });
  t.expectEmitted([{ seq: 1001, data: 'first\n' }]);
  // the online server answered 10 bytes before it; the target has answered nothing yet: sent at once
  t.clientSends({ seq: 1007, ack: 5011, flags: 'PA', data: 'second\n' });
  t.expectEmitted([{ seq: 1007, data: 'second\n' }]);
  t.clientSends({ seq: 1014, ack: 5021, flags: 'PA', data: 'HOLD x\n' });
  t.expectNothing();
  t.targetReplies({ seq: 90001, ack: 1014, flags: 'PA', data: 'OK' });
  t.expectEmitted([{ seq: 1014, ack: 90003, data: 'HOLD x\n' }]);
  t.targetReplies({ seq: 90003, ack: 1021, flags: 'PA', data: '0123456789' });
  t.take();
  assert.equal(balanced(t).replayed, 3);
});

test('hold until the target speaks; TargetActions.send goes before the held message', () => {
  const mod = lineModule();
  const t = established({ module: mod });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'HOLD a\n' });
  t.expectNothing();
  // a later message waits behind the held one (order is kept)
  t.clientSends({ seq: 1008, ack: 5001, flags: 'PA', data: 'later\n' });
  t.expectNothing();
  // the target greets: the module answers at once; the held message is offered again (not OK yet)
  t.targetReplies({ seq: 90001, ack: 1001, flags: 'PA', data: 'HELLO' });
  t.expectEmitted([{ seq: 1001, ack: 90006, data: 'ANSWER\n' }]);
  assert.deepEqual(mod.sessions[0]?.offered, ['HOLD a\n', 'HOLD a\n']);
  t.targetReplies({ seq: 90006, ack: 1008, flags: 'PA', data: 'OK' });
  t.expectEmitted([
    { seq: 1008, ack: 90008, data: 'HOLD a\n' },
    { seq: 1015, ack: 90008, data: 'later\n' },
  ]);
  assert.equal(t.engine.stats.module?.sent, 1);
  assert.equal(t.engine.stats.module?.held, 2);
  t.targetReplies({ seq: 90008, ack: 1021, flags: 'A' });
  // one request (the first captured data; 'later' did not advance the captured ack), replayed
  const acc = balanced(t);
  assert.equal(acc.captured, 1);
  assert.equal(acc.replayed, 1);
});

test('drop with a reason is lost with it; without a reason it was not needed; end names its reason', () => {
  const mod = lineModule();
  const t = established({ module: mod });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'DROPR a\n' });
  t.expectNothing();
  t.clientSends({ seq: 1009, ack: 5002, flags: 'PA', data: 'DROP b\n' });
  t.expectNothing();
  t.clientSends({ seq: 1016, ack: 5003, flags: 'PA', data: 'pass c\n' });
  t.expectEmitted([{ seq: 1001, data: 'pass c\n' }]);
  t.targetReplies({ seq: 90001, ack: 1008, flags: 'A' });
  let acc = balanced(t);
  assert.equal(acc.captured, 3);
  assert.equal(acc.replayed, 2, 'the one passed and the one not needed');
  assert.equal(acc.lost['line: bad'], 1);
  // END: the session ends with the module's reason, its unreplayed request lost with it
  t.clientSends({ seq: 1023, ack: 5004, flags: 'PA', data: 'END d\n' });
  assert.equal(t.engine.stats.outcomes.moduleEnded, 1);
  assert.equal(t.engine.stats.module?.ended['refused'], 1);
  t.expectEmitted([{ flags: 'RA' }]);
  // the rest of the connection is lost with the same reason
  t.clientSends({ seq: 1029, ack: 5005, flags: 'PA', data: 'more e\n' });
  acc = balanced(t);
  assert.equal(acc.lost['line: refused'], 2);
  assert.equal(acc.captured, 5);
  assert.equal(mod.sessions[0]?.ended, true);
});

test("the target's bytes reach the module in sequence order: duplicates once, a piece beyond a hole after it, no payload as missing", () => {
  const mod = lineModule();
  const t = established({ module: mod });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'q\n' });
  t.take();
  t.targetReplies({ seq: 90003, ack: 1003, flags: 'PA', data: 'CD' }); // beyond a hole
  t.targetReplies({ seq: 90001, ack: 1003, flags: 'A', data: 'AB' });
  t.targetReplies({ seq: 90001, ack: 1003, flags: 'A', data: 'AB' }); // retransmitted
  t.targetReplies({ seq: 90005, ack: 1003, flags: 'PA', len: 4, data: 'EF' }); // capped: 2 of 4 carried
  t.targetReplies({ seq: 90009, ack: 1003, flags: 'PA', len: 3 }); // headers only
  assert.equal(mod.sessions[0]?.target, 'ABCDEF?????');
  const ms = t.engine.stats.module;
  assert.equal(ms?.target.bytes, 6);
  assert.equal(ms?.target.missing, 5);
  assert.equal(ms?.target.held, 1);
  assert.equal(ms?.target.duplicates, 1);
});

test('TargetActions.end ends the session with the reason; the module is told the session ended', () => {
  const mod = lineModule();
  const t = established({ module: mod });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'q\n' });
  t.take();
  t.targetReplies({ seq: 90001, ack: 1001, flags: 'PA', data: 'BYE' });
  assert.equal(t.engine.stats.outcomes.moduleEnded, 1);
  assert.equal(t.engine.stats.module?.ended['targetBye'], 1);
  assert.equal(mod.sessions[0]?.ended, true);
  balanced(t);
});

test('a module that throws ends its session as moduleError, counted with the message', () => {
  const mod = lineModule();
  mod.onClientMessage = () => {
    throw new Error('boom');
  };
  const t = established({ module: mod });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'q\n' });
  assert.equal(t.engine.stats.module?.ended['moduleError'], 1);
  assert.equal(t.engine.stats.module?.errors, 1);
  assert.match(t.engine.stats.module?.lastError ?? '', /line: boom/);
  balanced(t);
});

test('the client closing mid-message: the partial message goes as captured, then the FIN', () => {
  const t = established({ module: lineModule() });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'partial' });
  t.expectNothing();
  t.clientSends({ seq: 1008, ack: 5001, flags: 'FA' });
  t.expectEmitted([
    { seq: 1001, data: 'partial' },
    { seq: 1008, flags: 'FA', len: 0 },
  ]);
  t.targetReplies({ seq: 90001, ack: 1009, flags: 'FA' });
  assert.equal(t.engine.stats.outcomes.completed, 1);
  balanced(t);
});

test('a held message keeps the session from counting as caught up: idle ends it as idleTimeout, lost', () => {
  const t = established({ module: lineModule(), sessionTimeoutMs: 1000, keepaliveTimeoutMs: 100_000 });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'HOLD a\n' });
  runFor(t, 1100);
  assert.equal(t.engine.stats.outcomes.idleTimeout, 1);
  assert.equal(t.engine.stats.requestsLost.idleTimeout, 1);
  balanced(t);
});

test('a held message with a hold limit on a quiet session: re-offered when the limit passes, then dropped with the reason', () => {
  const mod = lineModule();
  const t = established({ module: mod, sessionTimeoutMs: 100_000, keepaliveTimeoutMs: 100_000 });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'WAIT 500 drop\n' });
  t.clientSends({ seq: 1015, ack: 5001, flags: 'PA', data: 'later\n' });
  t.expectNothing();
  t.tick(499);
  t.expectNothing();
  assert.deepEqual(mod.sessions[0]?.offered, ['WAIT 500 drop\n'], 'not offered again before the limit');
  // nothing arrived from the target: the engine's Hold timer offers it again, expired
  t.tick(2);
  assert.deepEqual(mod.sessions[0]?.offered, ['WAIT 500 drop\n', 'WAIT 500 drop\n', 'later\n']);
  t.expectEmitted([{ seq: 1001, ack: 90001, data: 'later\n' }]);
  assert.equal(t.engine.stats.module?.lost['late'], 1);
  assert.equal(t.engine.stats.module?.holdExpired, 0);
  t.targetReplies({ seq: 90001, ack: 1007, flags: 'A' });
  balanced(t);
});

test('a held message the module holds again after its limit: dropped as holdExpired, counted; the limit runs from the first hold', () => {
  const mod = lineModule();
  const t = established({ module: mod, sessionTimeoutMs: 100_000, keepaliveTimeoutMs: 100_000 });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'WAIT 300 keep\n' });
  t.tick(200);
  // target bytes re-offer it early (not OK yet): held again, the deadline stays at 300
  t.targetReplies({ seq: 90001, ack: 1001, flags: 'PA', data: 'x' });
  t.take();
  assert.equal(mod.sessions[0]?.offered.length, 2);
  t.tick(101);
  assert.equal(mod.sessions[0]?.offered.length, 3, 'offered once more at the limit, expired');
  assert.equal(t.engine.stats.module?.holdExpired, 1);
  assert.equal(t.engine.stats.module?.lost['holdExpired'], 1);
  t.clientSends({ seq: 1015, ack: 5002, flags: 'PA', data: 'next\n' });
  t.tick(50);
  assert.deepEqual(
    t
      .take()
      .filter((x) => x.len > 0)
      .map((x) => x.data),
    ['next\n'],
    'the next message goes (nothing is stuck behind the expired one)',
  );
  balanced(t);
});

test('a held message with a limit that the target answers in time: passed, no expiry', () => {
  const mod = lineModule();
  const t = established({ module: mod, sessionTimeoutMs: 100_000, keepaliveTimeoutMs: 100_000 });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'WAIT 300 drop\n' });
  t.tick(100);
  t.targetReplies({ seq: 90001, ack: 1001, flags: 'PA', data: 'OK' });
  t.expectEmitted([{ seq: 1001, ack: 90003, data: 'WAIT 300 drop\n' }]);
  runFor(t, 1000);
  assert.equal(mod.sessions[0]?.offered.length, 2);
  assert.equal(t.engine.stats.module?.holdExpired, 0);
  assert.deepEqual(t.engine.stats.module?.lost, {});
});

test('without a module: headers-only registration and no module counters', () => {
  const t = new Script();
  t.clientSends({ seq: 1000, flags: 'S' });
  assert.deepEqual(t.addedPayload, [false]);
  assert.equal(t.engine.stats.module, null);
});

test("online replies (wantsOnlineReplies): the online server's captured bytes reach the module in order", () => {
  const mod = lineModule({ wantsOnlineReplies: true });
  const t = established({ module: mod });
  t.onlineSends({ seq: 5003, ack: 1001, flags: 'PA', data: 'CD' }); // beyond a hole
  t.onlineSends({ seq: 5001, ack: 1001, flags: 'PA', data: 'AB' });
  assert.equal(mod.sessions[0]?.online, 'ABCD', 'the piece beyond the hole waited for it');
  t.onlineSends({ seq: 5003, ack: 1001, flags: 'PA', data: 'CD' });
  t.onlineSends({ seq: 5005, ack: 1001, flags: 'PA', data: 'EF' });
  assert.equal(mod.sessions[0]?.online, 'ABCDEF');
  assert.equal(t.engine.stats.module?.online.bytes, 6);
});
