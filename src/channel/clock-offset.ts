/**
 * Moves intercept's capture times (record stamps, V2_REC_STAMP) onto tcpcopy's clock, without
 * assuming the two hosts' clocks agree.
 *
 * Let θ be intercept's clock minus tcpcopy's. A record captured at I (intercept's clock) is
 * read by tcpcopy at R (its clock) after a delivery delay d >= 0 (intercept's capture batch and
 * flush, the channel, tcpcopy's event loop): R = I - θ + d, so I - R = θ - d <= θ. The largest
 * I - R seen is therefore θ - dmin, dmin the smallest delivery delay among those records, and
 * I - (θ - dmin) = (the capture on tcpcopy's clock) + dmin: a stamp moved with this estimate is
 * late by dmin, never early. The estimate only ever errs by the fastest record's delay (on a
 * LAN a fraction of a millisecond once any record came through without waiting), not by each
 * record's own delay as the time a record was read would.
 *
 * Clocks drift and get stepped: the maximum is kept over a sliding window of two halves of
 * `windowMs` (tcpcopy's clock), so a change of θ is followed within 2 windows. Pure: the caller
 * gives both times.
 */

/** Default half-window of the estimate, ms of tcpcopy's clock. */
export const OFFSET_WINDOW_MS = 10_000;

export class ClockOffset {
  private cur = -Infinity;
  private prev = -Infinity;
  private curStart = NaN;

  /** @param windowMs half-window of the sliding maximum, ms (default OFFSET_WINDOW_MS) */
  constructor(private readonly windowMs = OFFSET_WINDOW_MS) {}

  /** One record: captured at `remoteMs` (intercept's clock), read at `localMs` (tcpcopy's). */
  observe(remoteMs: number, localMs: number): void {
    if (!(localMs - this.curStart < this.windowMs)) {
      // a new half-window (or the first): what the previous one saw is kept one more
      this.prev = localMs - this.curStart < 2 * this.windowMs ? this.cur : -Infinity;
      this.cur = -Infinity;
      this.curStart = localMs;
    }
    const d = remoteMs - localMs;
    if (d > this.cur) this.cur = d;
  }

  /** The estimate θ - dmin (intercept's clock minus tcpcopy's), NaN before the first record. */
  get offsetMs(): number {
    const o = Math.max(this.cur, this.prev);
    return o === -Infinity ? NaN : o;
  }

  /** A time of intercept's clock on tcpcopy's (late by dmin, see above); NaN before the first record. */
  toLocal(remoteMs: number): number {
    return remoteMs - this.offsetMs;
  }
}
