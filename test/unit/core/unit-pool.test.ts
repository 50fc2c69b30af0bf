import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHUNK_BYTES, UnitPool } from '../../../src/core/session/unit-pool';
import type { Unit } from '../../../src/core/session/session';

/** A unit with `len` payload bytes copied from `src[off ..]`. */
function take(pool: UnitPool, seq: number, src: Buffer, off: number, len: number, capturedAt = 0): Unit {
  const u = pool.take(seq, capturedAt, 0);
  pool.copyPayload(u, src, off, len);
  return u;
}

function bytes(u: Unit): Buffer {
  return u.data === null ? Buffer.alloc(0) : u.data.subarray(u.dataOff, u.dataOff + u.len);
}

test('unit pool: payloads are copied into shared chunks and read back intact, across chunk ends', () => {
  const pool = new UnitPool();
  const src = Buffer.alloc(20_000);
  for (let i = 0; i < src.length; i++) src[i] = (i * 7) & 255;
  const units: Unit[] = [];
  for (let i = 0; i < 40; i++) units.push(take(pool, 1000 + i, src, i, 3000 + i, i));
  for (const [i, u] of units.entries()) {
    assert.deepEqual(bytes(u), src.subarray(i, i + 3000 + i), `unit ${i}`);
    assert.equal(u.seq, 1000 + i);
    assert.ok(u.dataOff + u.len <= CHUNK_BYTES);
  }
  assert.equal(pool.stats.chunksCreated, 2, 'about 122 KB in 64 KiB chunks');
  const empty = take(pool, 5, src, 0, 0);
  assert.equal(empty.data, null);
  assert.equal(empty.len, 0);
  assert.equal(empty.fin, false);
});

test('unit pool: released units and emptied chunks are reused; nothing new in a steady state', () => {
  const pool = new UnitPool();
  const src = Buffer.alloc(1000, 0x61);
  const live: Unit[] = [];
  // a steady state: 100 requests in flight, each released when "acknowledged"
  for (let i = 0; i < 100_000; i++) {
    live.push(take(pool, i, src, 0, 200 + (i % 700), i));
    if (live.length > 100) pool.release(live.shift() as Unit);
  }
  assert.ok(pool.stats.unitsCreated <= 101, `units created ${pool.stats.unitsCreated}`);
  assert.ok(pool.stats.chunksCreated <= 4, `chunks created ${pool.stats.chunksCreated}`);
  for (const u of live) assert.equal(bytes(u).length, u.len);
});

test('unit pool: a payload over a quarter chunk gets a Buffer of its own', () => {
  const pool = new UnitPool();
  const src = Buffer.alloc(40_000, 0x62);
  const u = take(pool, 1, src, 100, 30_000);
  assert.equal(u.chunk, null);
  assert.equal(u.dataOff, 0);
  assert.equal(u.data?.length, 30_000);
  assert.equal(pool.stats.ownBuffers, 1);
  pool.release(u);
  assert.equal(u.data, null);
});
