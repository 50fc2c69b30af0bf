/**
 * Rate limiting for log lines of events a hostile or broken peer can repeat at will (refused
 * routes, refused connections, fd exhaustion): the first event logs at once, later ones at most
 * once per period, each line saying how many events it stands for. Time is a parameter.
 */

/** One kind of rate-limited event. */
export class RateLimit {
  private last = -Infinity;
  private count = 0;

  /** @param periodMs at most one line per this many ms; default 10,000 */
  constructor(readonly periodMs = 10_000) {}

  /**
   * Counts one event at `now` (ms). Returns how many events (this one included) a line logged
   * now stands for, or 0 when no line is due yet (the event is folded into the next line).
   */
  hit(now: number): number {
    this.count++;
    if (now - this.last < this.periodMs) return 0;
    this.last = now;
    const n = this.count;
    this.count = 0;
    return n;
  }
}

/** " (N such events since the last line)" for N > 1, else "". */
export function alsoText(n: number): string {
  return n > 1 ? ` (${n} such events since the last such line)` : '';
}
