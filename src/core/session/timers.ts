/**
 * A session's timers: one deadline per kind in a fixed table (no allocation when a timer is
 * set), the earliest of which is the session's place in the engine's timer heap. Adding a
 * timer means adding a kind here and a case where the engine fires it (engine-timers.ts).
 */

/** The kinds of session timer. When several are due at once they fire in this order. */
export const enum TimerKind {
  /** A hole in the captured client stream was waited for long enough (-> captureGap). Derived from the capture. */
  Gap = 0,
  /** Retransmission, and the persist timer while the target's window is zero (RFC 6298 RTO). */
  Rtx = 1,
  /** A delayed ACK for the end of a reply is due. */
  DelAck = 2,
  /** Release wait: the next exchange may go (reply quiet) or is given up (reply timeout). */
  Wait = 3,
  /** A message the protocol module held reached its hold limit: offered once more. Derived from the oldest held message. */
  Hold = 4,
  /** Nothing happened for -t (data pending) or -k (all replayed). Derived from the last activity. */
  Idle = 5,
}

/** Number of timer kinds (the table's length). */
export const TIMER_KINDS = 6;

/**
 * Deadlines (ms) indexed by TimerKind; Infinity = not armed. A plain array of doubles (V8 keeps
 * it unboxed, PACKED_DOUBLE_ELEMENTS: writes allocate nothing) of 72 bytes per session, where a
 * Float64Array with its ArrayBuffer took about 180 (issue 18 item 13: bytes per live session).
 */
export type TimerTable = number[];

/** A table with every timer disarmed (a literal: packed doubles from the start, never holey). */
export function newTimerTable(): TimerTable {
  return [Infinity, Infinity, Infinity, Infinity, Infinity, Infinity];
}

/** Disarms every timer of the table. */
export function disarmAll(t: TimerTable): void {
  for (let k = 0; k < TIMER_KINDS; k++) t[k] = Infinity;
}

/** The earliest deadline in the table (Infinity when none is armed). */
export function earliestDeadline(t: TimerTable): number {
  let d = Infinity;
  for (let k = 0; k < TIMER_KINDS; k++) {
    const x = t[k] as number;
    if (x < d) d = x;
  }
  return d;
}
