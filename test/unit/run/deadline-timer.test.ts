import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeadlineTimer } from '../../../src/run/deadline-timer';

/**
 * On mocked timers (node:test's mock.timers) and a manual clock: each step says exactly when
 * the timer fires, with no real waiting and no margins.
 */
test('deadline timer: fires once at the deadline, moves earlier at once, later beyond the slack, goes with Infinity', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let now = 0;
  let fired = 0;
  const firedAt: number[] = [];
  const advance = (ms: number): void => {
    now += ms;
    t.mock.timers.tick(ms);
  };
  const d = new DeadlineTimer(
    () => {
      fired++;
      firedAt.push(now);
    },
    () => now,
    2,
  );
  d.arm(40);
  d.arm(10); // earlier: moved
  advance(9);
  assert.equal(fired, 0, 'not before the deadline');
  advance(1);
  assert.deepEqual(firedAt, [10], 'fired at the earlier deadline');
  advance(40);
  assert.equal(fired, 1, 'not again at the old, later deadline');
  d.arm(now + 10);
  d.arm(now + 200); // later by far more than the slack: moved, so nothing fires at +10
  advance(10);
  assert.equal(fired, 1, 'no empty fire at the old deadline');
  d.arm(Infinity); // no deadline any more: cancelled
  advance(500);
  assert.equal(fired, 1, 'cancelled by Infinity');
  d.arm(now + 5);
  d.arm(now + 6); // within the slack: stays at +5
  advance(5);
  assert.equal(fired, 2, 'fired at +5, the deadline kept');
  assert.equal(firedAt[1], now);
  d.arm(now + 5);
  d.arm(now + 7); // exactly the slack later: moved
  advance(5);
  assert.equal(fired, 2, 'moved by the slack: not at +5');
  advance(2);
  assert.equal(fired, 3, 'at +7');
  d.arm(now - 3); // already due: fires on the next turn
  advance(0);
  assert.equal(fired, 4);
  d.arm(now + 1);
  d.cancel();
  advance(10);
  assert.equal(fired, 4, 'cancelled');
});

test('deadline timer: re-arming from inside the callback keeps one timer', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  let now = 0;
  const at: number[] = [];
  const d: DeadlineTimer = new DeadlineTimer(
    () => {
      at.push(now);
      if (at.length < 3) d.arm(now + 100);
    },
    () => now,
  );
  d.arm(100);
  for (let i = 0; i < 5; i++) {
    now += 100;
    t.mock.timers.tick(100);
  }
  assert.deepEqual(at, [100, 200, 300]);
});
