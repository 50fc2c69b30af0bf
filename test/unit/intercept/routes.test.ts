import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RouteTable, clientKey } from '../../../src/intercept/routes';
import { HoldQueue } from '../../../src/intercept/hold';

interface O {
  alive: boolean;
  name: string;
}
const a: O = { alive: true, name: 'a' };
const b: O = { alive: true, name: 'b' };

test('clientKey is exact for the whole address space', () => {
  assert.equal(clientKey(0xffffffff, 65535), 0xffffffff * 65536 + 65535);
  assert.notEqual(clientKey(1, 0), clientKey(0, 65535));
  assert.ok(Number.isSafeInteger(clientKey(0xffffffff, 65535)));
});

test('lookup prefers the matching target, falls back to any live route', () => {
  const t = new RouteTable<O>(1000, 10);
  assert.equal(t.add(1, 100, 9, 80, a, 0), 'added');
  assert.equal(t.add(1, 100, 8, 80, b, 0), 'added');
  assert.equal(t.add(1, 100, 8, 80, b, 1), 'updated');
  assert.equal(t.size, 2);
  assert.equal(t.lookup(1, 100, 9, 80, 1), a);
  assert.equal(t.lookup(1, 100, 8, 80, 1), b);
  assert.ok(t.lookup(1, 100, 7, 80, 1) !== null, 'fallback');
  assert.equal(t.lookup(1, 101, 9, 80, 1), null);
  assert.equal(t.lookup(2, 100, 9, 80, 1), null);
});

test('idle routes expire, used ones stay; CLIENT_DEL expires after the grace', () => {
  const t = new RouteTable<O>(1000, 10, 200);
  t.add(1, 1, 9, 80, a, 0);
  t.add(1, 2, 9, 80, a, 0);
  t.add(1, 3, 9, 80, a, 0);
  t.lookup(1, 2, 9, 80, 900);
  assert.equal(t.del(1, 3, 9, 80, a, 900), true);
  assert.equal(t.del(1, 3, 9, 80, b, 900), false, 'only the owner deletes');
  assert.equal(t.sweep(999), 0);
  assert.equal(t.sweep(1100), 2);
  assert.equal(t.lookup(1, 1, 9, 80, 1100), null);
  assert.equal(t.lookup(1, 3, 9, 80, 1100), null);
  assert.equal(t.lookup(1, 2, 9, 80, 1100), a);
  assert.equal(t.size, 1);
  assert.equal(t.expired, 2);
});

test('size cap refuses; routes of a dead owner are skipped, reused and swept', () => {
  const dead: O = { alive: true, name: 'dead' };
  const t = new RouteTable<O>(1000, 2);
  assert.equal(t.add(1, 1, 9, 80, dead, 0), 'added');
  assert.equal(t.add(1, 2, 9, 80, a, 0), 'added');
  assert.equal(t.add(1, 3, 9, 80, a, 0), 'refused');
  dead.alive = false;
  assert.equal(t.lookup(1, 1, 9, 80, 1), null);
  assert.equal(t.has(clientKey(1, 1)), false);
  assert.equal(t.add(1, 1, 7, 81, b, 1), 'updated', 'reuses the dead entry');
  assert.equal(t.lookup(1, 1, 7, 81, 1), b);
  assert.equal(t.sweep(2), 0);
});

test('hold queue: bounded, released by key in order, expires', () => {
  const h = new HoldQueue(64, 3, 100);
  const o1 = h.reserve(1, 1, 0);
  h.buffer[o1] = 11;
  const o2 = h.reserve(1, 2, 0);
  h.buffer[o2] = 12;
  const o3 = h.reserve(1, 1, 50);
  h.buffer[o3] = 13;
  assert.equal(h.reserve(1, 3, 50), -1);
  const got: number[] = [];
  assert.equal(
    h.release(clientKey(1, 1), (b, off) => got.push(b[off] as number)),
    2,
  );
  assert.deepEqual(got, [11, 13]);
  assert.equal(h.size, 1);
  assert.equal(h.expire(99), 0);
  assert.equal(h.expire(100), 1);
  assert.equal(h.size, 0);
  assert.equal(
    h.release(clientKey(1, 2), () => assert.fail('expired')),
    0,
  );
});
