/**
 * BytesSessionObserver alone (src/compare/session.ts): each side's replies go to the exchange of
 * the client bytes that side acknowledged, production's waiting for client bytes not observed
 * yet, within the session's cap; an exchange is handed on once both sides moved past it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BytesSessionObserver, type Exchange } from '../../../src/compare/session';

const b = (s: string): Buffer => Buffer.from(s);

function observer(sessionMax = 1 << 20): { obs: BytesSessionObserver; out: Exchange[] } {
  const out: Exchange[] = [];
  const obs = new BytesSessionObserver({ bodyMax: 1 << 16, sessionMax }, { held: 0, max: 1 << 30 }, (e) => out.push(e));
  return { obs, out };
}

const pair = (e: Exchange | undefined): [string, string] => [
  e?.onlineBytes?.toString() ?? '',
  e?.targetBytes?.toString() ?? '',
];

test('production answers captured before their messages were observed wait for them; the target answers late', () => {
  const { obs, out } = observer();
  obs.onlineBytes(b('GREETING'), 0, 1, NaN, 0); // before any client bytes: in no exchange
  obs.onlineBytes(b('A1'), 0, 2, NaN, 4); // answers bytes 0..4, not observed yet
  obs.onlineBytes(b('A2'), 0, 3, NaN, 8);
  obs.targetBytes(b('GREETING'), 0, 3, NaN, 0);
  obs.clientBytes(b('Q1;\n'), 4, NaN, { captured: 0, sent: 0, sentLen: 4 });
  obs.clientBytes(b('Q2;\n'), 4, NaN, { captured: 4, sent: 4, sentLen: 4 });
  assert.equal(out.length, 0, 'the target has answered neither yet');
  obs.targetBytes(b('T1'), 0, 5, NaN, 4);
  assert.equal(out.length, 0);
  obs.targetBytes(b('T2'), 0, 6, NaN, 8);
  assert.deepEqual(pair(out[0]), ['A1', 'T1'], 'handed on once both sides moved past it');
  obs.end(7);
  assert.deepEqual(pair(out[1]), ['A2', 'T2']);
  assert.equal(out.length, 2);
});

test("production's queued answers count against the session's cap: beyond it the exchange is skipped as truncated", () => {
  const { obs, out } = observer(8);
  obs.onlineBytes(b('0123456789'), 0, 1, NaN, 3);
  obs.clientBytes(b('Q1\n'), 2);
  obs.targetBytes(b('T1'), 0, 3, NaN, 3);
  obs.end(4);
  assert.equal(out.length, 1);
  assert.equal(out[0]?.skipped, 'truncated');
});

test('without acknowledgments the bytes go to the latest exchange', () => {
  const { obs, out } = observer();
  obs.clientBytes(b('Q1\n'), 1);
  obs.onlineBytes(b('A1'), 0, 2);
  obs.targetBytes(b('A1'), 0, 2);
  obs.clientBytes(b('Q2\n'), 3);
  obs.onlineBytes(b('A2'), 0, 4);
  obs.targetBytes(b('B2'), 0, 4);
  obs.end(5);
  assert.deepEqual(out.map(pair), [
    ['A1', 'A1'],
    ['A2', 'B2'],
  ]);
});
