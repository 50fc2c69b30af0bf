import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeadlineTimer } from '../../../src/run/deadline-timer';

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('deadline timer: fires once at the deadline, moves earlier at once, later beyond the slack, goes with Infinity', async () => {
  let fired = 0;
  const t0 = Date.now();
  const clock = (): number => Date.now() - t0;
  const d = new DeadlineTimer(
    () => {
      fired++;
    },
    clock,
    2,
  );
  d.arm(clock() + 40);
  d.arm(clock() + 10); // earlier: moved
  await wait(25);
  assert.equal(fired, 1, 'fired at the earlier deadline');
  d.arm(clock() + 10);
  d.arm(clock() + 200); // later by far more than the slack: moved, so nothing fires at +10
  await wait(30);
  assert.equal(fired, 1, 'no empty fire at the old deadline');
  d.arm(Infinity); // no deadline any more: cancelled
  await wait(10);
  d.arm(clock() + 5);
  d.arm(clock() + 6); // within the slack: stays at +5
  await wait(25);
  assert.equal(fired, 2);
  d.cancel();
});
