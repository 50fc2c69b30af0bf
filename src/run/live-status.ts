import type { EngineStats } from '../core/stats';
import type { Logger } from '../io/logger';
import { estimateEta, formatStatus, StatusLine, type StatusStream } from './status-line';

/** How status is shown: `line` refreshes one terminal line, `plain` logs periodic lines, `auto` picks by isTTY. */
export type StatusStyle = 'auto' | 'line' | 'plain';

/** Options of LiveStatus. */
export interface LiveStatusOptions {
  /** --status-style; default auto (line when `stream.isTTY`). */
  style: StatusStyle;
  /** --status in ms: plain line period; 0 disables status output entirely. */
  intervalMs: number;
  /** Where the terminal line goes (process.stderr). */
  stream: StatusStream & { isTTY?: boolean | undefined };
  /** The runner's logger; use `log` (wrapped) afterwards. */
  log: Logger;
  /** When the replay started (ms, the runner's clock): the ETA extrapolates progress since then. */
  startedAt: number;
}

/** Terminal line refresh period, ms. */
export const LINE_REFRESH_MS = 1000;

/**
 * The runner's status output: decides line vs plain, computes the request rate over the last
 * interval and the offline ETA, and wraps the logger so log lines never garble the line.
 */
export class LiveStatus {
  /** The terminal line, or null in plain mode. */
  readonly line: StatusLine | null;
  /** The logger to use from now on (clears and redraws the line around each message). */
  readonly log: Logger;
  private lastAt = -1;
  private lastReplayed = 0;
  private rate = 0;

  constructor(private readonly opts: LiveStatusOptions) {
    this.lastAt = opts.startedAt; // the first rate is the average since the start
    const useLine =
      opts.intervalMs > 0 && (opts.style === 'line' || (opts.style === 'auto' && opts.stream.isTTY === true));
    this.line = useLine ? new StatusLine(opts.stream) : null;
    this.log = this.line !== null ? this.line.wrapLogger(opts.log) : opts.log;
  }

  /** Timer period for tick(), ms (0 = no status). */
  get periodMs(): number {
    if (this.opts.intervalMs <= 0) return 0;
    return this.line !== null ? LINE_REFRESH_MS : this.opts.intervalMs;
  }

  /**
   * Builds the status text as of `now` (ms) and updates the rate; pure apart from the rate
   * memory. `gapWaitMs`: offline, how long the next frame waits for its recorded time (0 = none).
   */
  text(
    e: EngineStats,
    now: number,
    progress: number | null,
    channelUp: boolean,
    rssMB: number,
    gapWaitMs = 0,
    extra?: string,
  ): string {
    if (this.lastAt >= 0 && now > this.lastAt)
      this.rate = ((e.requestsReplayed - this.lastReplayed) * 1000) / (now - this.lastAt);
    this.lastAt = now;
    this.lastReplayed = e.requestsReplayed;
    const etaS = progress !== null ? estimateEta(progress, this.opts.startedAt, now) : null;
    return formatStatus(e, {
      rate: this.rate,
      progress,
      etaS,
      rssMB,
      channelUp,
      gapWaitS: gapWaitMs / 1000,
      ...(extra !== undefined ? { extra } : {}),
    });
  }

  /** One status update: redraws the line or logs a plain line. `extra`: a part of its own (the comparison's). */
  tick(
    e: EngineStats,
    now: number,
    progress: number | null,
    channelUp: boolean,
    rssMB: number,
    gapWaitMs = 0,
    extra?: string,
  ): void {
    const t = this.text(e, now, progress, channelUp, rssMB, gapWaitMs, extra);
    if (this.line !== null) this.line.show(t);
    else this.opts.log.info(`status: ${t}`);
  }

  /** Runs `fn` (which writes to the terminal, e.g. a report) with the line cleared, then redraws it. */
  around(fn: () => void): void {
    this.line?.clear();
    fn();
    this.line?.redraw();
  }

  /** Removes the line for good (before the final report). */
  done(): void {
    this.line?.done();
  }
}
