/** The in-order delivery of reply bytes to a module: duplicates, holes filled, holes given up. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ByteOrderer, MAX_HELD_PIECES, type OrderStats } from '../../../../src/core/session/byte-order';

function orderer(): { o: ByteOrderer; st: OrderStats; got: string[]; push: (seq: number, s: string) => void } {
  const st: OrderStats = { bytes: 0, missing: 0, held: 0, notHeld: 0, duplicates: 0 };
  const o = new ByteOrderer(st);
  const got: string[] = [];
  const deliver = (d: Buffer, missing: number): void => {
    got.push(missing > 0 ? `${d.toString()}+${missing}` : d.toString());
  };
  const push = (seq: number, s: string): void => o.push(seq, Buffer.from(s), 0, s.length, s.length, deliver);
  return { o, st, got, push };
}

test('in order, a duplicate, a hole filled later: every byte once, in order', () => {
  const { st, got, push } = orderer();
  push(100, 'ab');
  push(100, 'ab');
  push(104, 'ef');
  push(102, 'cd');
  assert.deepEqual(got, ['ab', 'cd', 'ef']);
  assert.equal(st.duplicates, 1);
  assert.equal(st.held, 1);
  assert.equal(st.missing, 0);
});

test('a hole the store cannot wait for any more is given up: its bytes delivered as missing, the stream moves on', () => {
  const { st, got, push } = orderer();
  push(0, 'x');
  // byte 1 never comes (the capture missed it); MAX_HELD_PIECES pieces beyond it are kept
  for (let i = 0; i < MAX_HELD_PIECES; i++) push(2 + i, String.fromCharCode(0x61 + i));
  assert.deepEqual(got, ['x']);
  push(2 + MAX_HELD_PIECES, 'z');
  assert.equal(st.notHeld, 1);
  assert.equal(got[1], '+1', 'the hole, as one missing byte');
  assert.deepEqual(got.slice(2).join(''), 'abcdefgh'.slice(0, MAX_HELD_PIECES) + 'z');
  assert.equal(st.missing, 1);
  // later bytes flow in order
  push(3 + MAX_HELD_PIECES, 'w');
  assert.equal(got.at(-1), 'w');
});

test('the payload cap: carried bytes, then the rest as missing', () => {
  const st: OrderStats = { bytes: 0, missing: 0, held: 0, notHeld: 0, duplicates: 0 };
  const o = new ByteOrderer(st);
  const got: [string, number][] = [];
  o.push(7, Buffer.from('hello'), 0, 2, 5, (d, m) => got.push([d.toString(), m]));
  assert.deepEqual(got, [['he', 3]]);
  assert.equal(o.nxt, 12);
});
