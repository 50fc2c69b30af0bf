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
