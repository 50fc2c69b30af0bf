import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  TIMER_KINDS,
  TimerKind,
  disarmAll,
  earliestDeadline,
  newTimerTable,
} from '../../../../src/core/session/timers';

test('timer table: one disarmed deadline per kind; earliestDeadline is the minimum; disarmAll resets', () => {
  const t = newTimerTable();
  assert.equal(t.length, TIMER_KINDS, 'the literal in newTimerTable must list every TimerKind');
  assert.ok(t.every((x) => x === Infinity));
  assert.equal(earliestDeadline(t), Infinity);
  t[TimerKind.Idle] = 500;
  t[TimerKind.Rtx] = 120.5;
  assert.equal(earliestDeadline(t), 120.5);
  disarmAll(t);
  assert.equal(t.length, TIMER_KINDS);
  assert.equal(earliestDeadline(t), Infinity);
});
