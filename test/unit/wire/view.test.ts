/**
 * The cached DataViews (wire/view.ts) and the IPv6 address reads and writes built on them:
 * the right bytes for Buffers that are slices of a larger ArrayBuffer, for more Buffers in turn
 * than the cache holds, and for addresses cut by the end of a Buffer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { viewOf } from '../../../src/core/wire/view';
import { internIpv6, internIpv6Memo, internIpv6Words, newIpv6Memo, writeIpv6 } from '../../../src/core/wire/ipv6';

test('viewOf: a view of each Buffer’s own ArrayBuffer, whatever the order and number of Buffers', () => {
  const pool = new ArrayBuffer(256);
  const slices = [0, 40, 80, 120, 160, 200].map((o) => Buffer.from(pool, o, 40));
  const others = [Buffer.alloc(64), Buffer.alloc(64), Buffer.alloc(64)];
  const all = [...slices, ...others];
  all.forEach((b, i) => b.fill(i + 1));
  for (let round = 0; round < 3; round++) {
    for (let j = 0; j < all.length; j++) {
      // visit the Buffers in an order that changes every round (and repeats some)
      const b = all[(j * (round + 2)) % all.length] as Buffer;
      const v = viewOf(b);
      assert.equal(v.buffer, b.buffer);
      assert.equal(v.getUint8(b.byteOffset), b[0]);
      assert.equal(v.getUint8(b.byteOffset + b.length - 1), b[b.length - 1]);
    }
  }
});

test('IPv6 reads: a slice of a pool, a cut address (missing bytes read as 0), the memo across Buffers', () => {
  const pool = Buffer.alloc(100, 0xee);
  const id = internIpv6Words(0x20010002, 0x00000042, 0x01020304, 0x05060708);
  writeIpv6(id, pool, 37); // unaligned, inside
  const slice = pool.subarray(30, 60);
  assert.equal(internIpv6(slice, 7), id);
  const memo = newIpv6Memo();
  const other = Buffer.alloc(16);
  const id2 = internIpv6Words(0x20010002, 0, 0, 9);
  writeIpv6(id2, other, 0);
  for (let i = 0; i < 5; i++) {
    assert.equal(internIpv6Memo(slice, 7, memo), id);
    assert.equal(internIpv6Memo(other, 0, memo), id2);
  }
  // 10 of the 16 bytes inside the Buffer: the other 6 read as zeros
  const cut = Buffer.from(pool.subarray(37, 47));
  const want = internIpv6Words(0x20010002, 0x00000042, 0x01020000, 0);
  assert.equal(internIpv6(cut, 0), want);
  assert.equal(internIpv6Memo(cut, 0, memo), want);
  // a cut address is not remembered: the full one at the same place is still found
  assert.equal(internIpv6Memo(slice, 7, memo), id);
});
