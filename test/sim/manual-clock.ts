import type { Clock, TimerHandle } from '../../src/io/types';

/** One armed timer of a ManualClock. */
interface Entry {
  at: number;
  seq: number;
  fn: () => void;
  dead: boolean;
}

/**
 * A Clock that moves only when told (quinn-proto's test `Pair` keeps time the same way):
 * timers run in deadline order (ties in arming order), setImmediate callbacks before any timer.
 * Deterministic: a test drives a whole replay through seconds of simulated time in
 * milliseconds of real time, and no assertion depends on the machine's speed.
 */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  /** Armed timers, sorted by (at, seq). */
  private timers: Entry[] = [];
  private immediates: (() => void)[] = [];
  /** Timers that have fired so far. */
  fired = 0;

  /** @param start the initial time, ms since the epoch (a fixed, recent-looking instant by default) */
  constructor(start = 1_750_000_000_000) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const e: Entry = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, dead: false };
    let lo = 0;
    let hi = this.timers.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = this.timers[mid] as Entry;
      if (m.at < e.at || (m.at === e.at && m.seq < e.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.timers.splice(lo, 0, e);
    return e;
  }

  clearTimeout(h: TimerHandle): void {
    const e = h as Entry | null;
    if (e === null || e.dead) return;
    e.dead = true;
    const i = this.timers.indexOf(e);
    if (i >= 0) this.timers.splice(i, 1);
  }

  setImmediate(fn: () => void): void {
    this.immediates.push(fn);
  }

  /** When the next timer is due (Infinity when none is armed). */
  get nextAt(): number {
    return this.timers[0]?.at ?? Infinity;
  }

  /** Armed timers. */
  get pending(): number {
    return this.timers.length;
  }

  /**
   * Runs one step: the queued setImmediate callbacks (one "turn"), else the earliest timer if it
   * is due by `until` (time moves to it). Returns false when there was nothing to run.
   */
  step(until = Infinity): boolean {
    if (this.immediates.length > 0) {
      const turn = this.immediates;
      this.immediates = [];
      for (const fn of turn) fn();
      return true;
    }
    const e = this.timers[0];
    if (e === undefined || e.at > until) return false;
    this.timers.shift();
    e.dead = true;
    if (e.at > this.t) this.t = e.at;
    this.fired++;
    e.fn();
    return true;
  }

  /** Moves time forward by `ms`, running everything due meanwhile, in order. */
  advance(ms: number): void {
    const until = this.t + ms;
    while (this.step(until));
    this.t = until;
  }
}
