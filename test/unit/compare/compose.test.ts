/**
 * `--compare` beside a protocol module (withCompare, src/compare/module.ts): the protocol
 * module decides every verdict (hold, replace, insert) on a packet-scripted session while the
 * comparison observes the captured conversation, each client message once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Comparison } from '../../../src/compare/comparison';
import { compareConfig } from '../../../src/compare/config';
import { withCompare } from '../../../src/compare/module';
import { buildRules } from '../../../src/compare/rules';
import type { DiffLine } from '../../../src/compare/summary';
import { established, type Script } from '../core/script';
import { lineModule } from '../core/line-module';

/** The online server's captured packet to the client (its ISN 5000), acknowledging `ack`. */
function online(t: Script, seq: number, ack: number, flags: string, data: string): void {
  assert.equal(t.onlineSends({ seq, ack, flags, data }), true);
}

test('withCompare: the protocol module holds, rewrites and inserts; the comparison sees each captured message once and compares per exchange', () => {
  const lines: DiffLine[] = [];
  const cmp = new Comparison(compareConfig('bytes', buildRules()), (l) => lines.push(l));
  const inner = lineModule();
  const mod = withCompare(inner, cmp);
  assert.equal(mod.name, 'line', "the report's rows keep the protocol module's name");
  assert.equal(mod.wantsTargetPayload && mod.wantsOnlineReplies, true);
  assert.equal(mod.targetPayloadMax, 65535, 'whole replies, whatever the protocol module asked');
  assert.deepEqual(mod.reasons, inner.reasons);
  const t = established({ module: mod });
  online(t, 5000, 1001, 'SA', '');
  assert.deepEqual(t.addedPayload, [true]);
  // a server-first protocol: the greeting of each server, before any client bytes
  online(t, 5001, 1001, 'PA', 'OK hi\n');
  // the client's first message is held by the protocol module until the target said OK
  t.clientSends({ seq: 1001, ack: 5007, flags: 'PA', data: 'HOLD a\n' });
  t.expectNothing();
  t.targetReplies({ seq: 90001, ack: 1001, flags: 'PA', data: 'OK hi\n' });
  t.expectEmitted([{ seq: 1001, data: 'HOLD a\n' }]);
  online(t, 5007, 1008, 'PA', 'A1\n');
  t.targetReplies({ seq: 90007, ack: 1008, flags: 'PA', data: 'A1\n' });
  t.take();
  // rewritten (another length) and an insert: the comparison still sees what the client sent
  t.clientSends({ seq: 1008, ack: 5010, flags: 'PA', data: 'REWRITE y\n' });
  t.expectEmitted([{ seq: 1008, data: 'REWRITTEN-AND-LONGER y\n' }]);
  online(t, 5010, 1018, 'PA', 'B2\n');
  t.targetReplies({ seq: 90010, ack: 1031, flags: 'PA', data: 'C2\n' });
  t.take();
  t.engine.finish(t.now + 10);
  cmp.finish();
  const s = cmp.summary();
  assert.deepEqual(
    inner.sessions[0]?.offered,
    ['HOLD a\n', 'HOLD a\n', 'REWRITE y\n'],
    'the held message was offered twice',
  );
  assert.equal(inner.sessions[0]?.online, '', 'the protocol module did not ask for online replies');
  assert.equal(inner.sessions[0]?.target, 'OK hi\nA1\nC2\n', 'the protocol module still gets the target bytes');
  assert.equal(inner.sessions[0]?.ended, true);
  assert.equal(t.engine.stats.module?.counters['rewritten'], 1);
  assert.equal(s.totals.exchanges, 2, 'two client messages, two exchanges (the held one counted once)');
  assert.equal(s.totals.identical, 1);
  assert.equal(s.totals.different, 1);
  assert.equal(s.identity, true);
  assert.equal(lines.length, 1);
});

test('withCompare: a protocol module that stops framing (-1) has the rest passed and observed chunk by chunk', () => {
  const cmp = new Comparison(compareConfig('bytes', buildRules()), () => {});
  const inner = lineModule();
  const mod = withCompare({ ...inner, frameClient: () => -1 }, cmp);
  const t = established({ module: mod });
  online(t, 5000, 1001, 'SA', '');
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'raw bytes' });
  t.expectEmitted([{ seq: 1001, data: 'raw bytes' }]);
  online(t, 5001, 1010, 'PA', 'same');
  t.targetReplies({ seq: 90001, ack: 1010, flags: 'PA', data: 'same' });
  t.take();
  t.engine.finish(t.now + 10);
  cmp.finish();
  const s = cmp.summary();
  assert.equal(s.totals.exchanges, 1);
  assert.equal(s.totals.identical, 1);
  assert.deepEqual(inner.sessions[0]?.offered, [], 'onClientMessage is not called once unframed');
});

test("withCompare, bytes mode: each side's answers pair with the message that side had received (their ACKs), not with the message offered last", () => {
  const lines: DiffLine[] = [];
  const cmp = new Comparison(compareConfig('bytes', buildRules()), (l) => lines.push(l));
  const inner = lineModule();
  const t = established({ module: withCompare(inner, cmp) });
  online(t, 5000, 1001, 'SA', '');
  online(t, 5001, 1001, 'PA', 'OK hi\n'); // production's greeting: before any exchange
  // the login is held (the target has not greeted yet) while production answers it and the
  // client's next message is captured and answered: production's answers wait for their messages
  t.clientSends({ seq: 1001, ack: 5007, flags: 'PA', data: 'HOLD login\n' });
  online(t, 5007, 1012, 'PA', 'WELCOME\n');
  t.clientSends({ seq: 1012, ack: 5015, flags: 'PA', data: 'Q1\n' });
  online(t, 5015, 1015, 'PA', 'R1-prod\n');
  t.expectNothing();
  // the target's greeting releases the login; Q1 is offered (and observed) at once, but goes
  // only after the target's answer to the login, which therefore comes after Q1 was observed
  t.targetReplies({ seq: 90001, ack: 1001, flags: 'PA', data: 'OK hi\n' });
  t.expectEmitted([{ seq: 1001, data: 'HOLD login\n' }]);
  t.targetReplies({ seq: 90007, ack: 1012, flags: 'PA', data: 'WELCOME\n' });
  t.expectEmitted([{ seq: 1012, data: 'Q1\n' }]);
  t.targetReplies({ seq: 90015, ack: 1015, flags: 'PA', data: 'R1-diff\n' });
  t.take();
  // an inserted message: the target's answer sent when it had only the module's bytes is the module's
  t.clientSends({ seq: 1015, ack: 5023, flags: 'PA', data: 'INS x\n' });
  t.expectEmitted([
    { seq: 1015, data: 'PRE\n' },
    { seq: 1019, data: 'INS x\n' },
  ]);
  online(t, 5023, 1021, 'PA', 'X-ANSWER\n');
  t.targetReplies({ seq: 90023, ack: 1019, flags: 'PA', data: 'PRE-OK\n' });
  t.targetReplies({ seq: 90030, ack: 1025, flags: 'PA', data: 'X-ANSWER\n' });
  t.take();
  t.engine.finish(t.now + 10);
  cmp.finish();
  const s = cmp.summary();
  assert.equal(
    inner.sessions[0]?.target,
    'OK hi\nWELCOME\nR1-diff\nPRE-OK\nX-ANSWER\n',
    'the protocol module got every byte',
  );
  assert.equal(s.totals.exchanges, 3, 'login, Q1, INS');
  assert.equal(s.totals.identical, 2, 'the login (WELCOME on both) and INS (X-ANSWER on both, PRE-OK left out)');
  assert.equal(s.totals.different, 1);
  assert.equal(lines.length, 1);
  const d = lines[0] as DiffLine;
  assert.equal(d.index, 1, 'Q1');
  assert.equal(Buffer.from(d.bodies?.online ?? '', 'base64').toString(), 'R1-prod\n');
  assert.equal(Buffer.from(d.bodies?.target ?? '', 'base64').toString(), 'R1-diff\n');
});

test('withCompare, bytes mode: comparableReply of the protocol module is what the target side is compared as', () => {
  const lines: DiffLine[] = [];
  const cmp = new Comparison(compareConfig('bytes', buildRules()), (l) => lines.push(l));
  const inner = lineModule();
  // the module knows its target numbers things one higher: "ID 8" answers like production's "ID 7"
  const mod = withCompare(
    { ...inner, comparableReply: (_st, a, b) => (b.toString() === 'ID 8\n' && a.toString() === 'ID 7\n' ? a : b) },
    cmp,
  );
  const t = established({ module: mod });
  online(t, 5000, 1001, 'SA', '');
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'NEW\n' });
  t.take();
  online(t, 5001, 1005, 'PA', 'ID 7\n');
  t.targetReplies({ seq: 90001, ack: 1005, flags: 'PA', data: 'ID 8\n' });
  t.clientSends({ seq: 1005, ack: 5006, flags: 'PA', data: 'NEW\n' });
  t.take();
  online(t, 5006, 1009, 'PA', 'ID 9\n');
  t.targetReplies({ seq: 90006, ack: 1009, flags: 'PA', data: 'ID 1\n' });
  t.take();
  t.engine.finish(t.now + 10);
  cmp.finish();
  const s = cmp.summary();
  assert.equal(s.totals.identical, 1, 'the rewritten answer');
  assert.equal(s.rewrittenByModule, 1);
  assert.equal(s.totals.different, 1, 'the one the module did not vouch for');
  assert.equal(Buffer.from(lines[0]?.bodies?.target ?? '', 'base64').toString(), 'ID 1\n');
});

test("withCompare, bytes mode: an insert answered in the same reply segment as the client's message is left out by the module's comparableReply", () => {
  const lines: DiffLine[] = [];
  const cmp = new Comparison(compareConfig('bytes', buildRules()), (l) => lines.push(l));
  const inner = lineModule();
  let inserts = 0;
  const mod = withCompare(
    {
      ...inner,
      onClientMessage: (st, msg, act, now) => {
        if (msg.toString().startsWith('INS')) inserts++;
        inner.onClientMessage(st, msg, act, now);
      },
      // the module knows its insert "PRE\n" is answered "PRE-OK\n" first: it leaves that out
      comparableReply: (_st, _a, b) => {
        if (inserts === 0 || !b.toString().startsWith('PRE-OK\n')) return b;
        inserts--;
        return b.subarray(7);
      },
    },
    cmp,
  );
  const t = established({ module: mod });
  online(t, 5000, 1001, 'SA', '');
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: 'INS x\n' });
  t.take();
  online(t, 5001, 1007, 'PA', 'X-ANSWER\n');
  // one reply segment, acknowledging the insert and the message
  t.targetReplies({ seq: 90001, ack: 1011, flags: 'PA', data: 'PRE-OK\nX-ANSWER\n' });
  t.clientSends({ seq: 1007, ack: 5010, flags: 'PA', data: 'INS y\n' });
  t.take();
  online(t, 5010, 1013, 'PA', 'Y-ANSWER\n');
  t.targetReplies({ seq: 90017, ack: 1021, flags: 'PA', data: 'PRE-OK\nY-OTHER\n' });
  t.take();
  t.engine.finish(t.now + 10);
  cmp.finish();
  const s = cmp.summary();
  assert.equal(s.totals.exchanges, 2);
  assert.equal(s.totals.identical, 1, 'X: the same once the insert answer is out');
  assert.equal(s.totals.different, 1, 'Y: a real difference stays');
  assert.equal(s.rewrittenByModule, 2);
  assert.equal(Buffer.from(lines[0]?.bodies?.target ?? '', 'base64').toString(), 'Y-OTHER\n');
});
