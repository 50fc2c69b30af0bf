import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RouteTable, clientKey, type RouteOrigin } from '../../../src/intercept/routes';
import { HoldQueue } from '../../../src/intercept/hold';

interface O {
  alive: boolean;
  name: string;
  origin: RouteOrigin;
}
/** a and b: two connections of one tcpcopy (one address). */
const h1: RouteOrigin = { addr: '198.18.0.1', routes: 0 };
const a: O = { alive: true, name: 'a', origin: h1 };
const b: O = { alive: true, name: 'b', origin: h1 };

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
  const dead: O = { alive: true, name: 'dead', origin: { addr: '198.18.0.9', routes: 0 } };
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

test('a live route cannot be taken from another address, with the same or a made-up target', () => {
  const o: RouteOrigin = { addr: '198.18.0.1', routes: 0 };
  const mine: O = { alive: true, name: 'mine', origin: o };
  const thief: O = { alive: true, name: 'thief', origin: { addr: '198.18.0.66', routes: 0 } };
  const t = new RouteTable<O>(1000, 10);
  assert.equal(t.add(1, 100, 9, 80, mine, 0), 'added');
  assert.equal(t.add(1, 100, 9, 80, thief, 1), 'owned', 'same client and target');
  assert.equal(t.add(1, 100, 7, 77, thief, 1), 'owned', 'same client, made-up target');
  assert.equal(t.lookup(1, 100, 9, 80, 2), mine);
  assert.equal(t.lookup(1, 100, 6, 66, 2), mine, 'the fallback still goes to the owner');
  assert.equal(t.size, 1);
  assert.equal(thief.origin.routes, 0);
  // a reconnect from the same address takes the route over
  const again: O = { alive: true, name: 'again', origin: o };
  mine.alive = false;
  assert.equal(t.add(1, 100, 9, 80, again, 3), 'updated');
  assert.equal(t.lookup(1, 100, 9, 80, 3), again);
  // once the owner is gone, another address may register the client
  again.alive = false;
  assert.equal(t.add(1, 100, 9, 80, thief, 4), 'updated');
  assert.equal(t.lookup(1, 100, 9, 80, 4), thief);
  assert.equal(o.routes, 0);
  assert.equal(thief.origin.routes, 1);
});

test('per-origin quota: one address cannot fill the table; counts follow sweeps and takeovers', () => {
  const hog: O = { alive: true, name: 'hog', origin: { addr: '198.18.0.66', routes: 0 } };
  const fair: O = { alive: true, name: 'fair', origin: { addr: '198.18.0.1', routes: 0 } };
  const t = new RouteTable<O>(1000, 10, 200, 4);
  for (let p = 1; p <= 4; p++) assert.equal(t.add(1, p, 9, 80, hog, 0), 'added');
  assert.equal(t.add(1, 5, 9, 80, hog, 0), 'quota');
  assert.equal(t.add(1, 1, 9, 80, hog, 0), 'updated', 'refreshing its own route is not a new one');
  assert.equal(hog.origin.routes, 4);
  for (let p = 10; p < 14; p++) assert.equal(t.add(1, p, 9, 80, fair, 0), 'added');
  assert.equal(t.size, 8);
  assert.equal(t.del(1, 2, 9, 80, hog, 0), true);
  assert.equal(t.sweep(300), 1);
  assert.equal(hog.origin.routes, 3);
  assert.equal(t.add(1, 5, 9, 80, hog, 300), 'added');
  // the hog goes away: its routes no longer count once another origin reuses or the sweep drops them
  hog.alive = false;
  assert.equal(t.add(1, 1, 9, 80, fair, 301), 'quota', 'fair is at its own quota');
  assert.equal(t.sweep(302), 4);
  assert.equal(hog.origin.routes, 0);
  assert.equal(fair.origin.routes, 4);
});
