import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeadlineTimer } from '../../../src/run/deadline-timer';
import { ManualClock } from '../../sim/manual-clock';

test('deadline timer: fires once at the deadline, moves earlier at once, later beyond the slack, goes with Infinity', () => {
  const clock = new ManualClock(0);
  const firedAt: number[] = [];
  const d = new DeadlineTimer(() => firedAt.push(clock.now()), clock, 2);
  d.arm(40);
  d.arm(10); // earlier: moved
  assert.equal(clock.pending, 1, 'one timer, not two');
  clock.advance(25);
  assert.deepEqual(firedAt, [10], 'fired at the earlier deadline');
  d.arm(35);
  d.arm(225); // later by far more than the slack: moved, so nothing fires at 35
  clock.advance(30);
  assert.deepEqual(firedAt, [10], 'no empty fire at the old deadline');
  d.arm(Infinity); // no deadline any more: cancelled
  assert.equal(clock.pending, 0);
  clock.advance(300);
  assert.deepEqual(firedAt, [10]);
  const t = clock.now();
  d.arm(t + 5);
  d.arm(t + 6); // within the slack: stays at +5
  clock.advance(25);
  assert.deepEqual(firedAt, [10, t + 5]);
  d.arm(clock.now() + 5);
  d.cancel();
  clock.advance(25);
  assert.equal(firedAt.length, 2, 'cancel stops it');
});

test('deadline timer: a due timer calls back after the I/O of its turn (setImmediate), not in the timers phase', () => {
  const order: string[] = [];
  const timers: (() => void)[] = [];
  const immediates: (() => void)[] = [];
  const clock = {
    now: () => 100,
    setTimeout: (fn: () => void) => (timers.push(fn), fn),
    clearTimeout: () => undefined,
    setImmediate: (fn: () => void) => void immediates.push(fn),
  };
  const d = new DeadlineTimer(() => order.push('fire'), clock, 2);
  d.arm(90); // already due
  assert.equal(timers.length, 1);
  (timers.shift() as () => void)(); // the timers phase
  order.push('poll: channel data read'); // the poll phase of the same turn
  assert.deepEqual(order, ['poll: channel data read'], 'nothing judged before the poll');
  for (const fn of immediates.splice(0)) fn(); // the check phase
  assert.deepEqual(order, ['poll: channel data read', 'fire']);
});
