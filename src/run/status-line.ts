import type { EngineStats, ModuleStats } from '../core/stats';
import type { Logger } from '../io/logger';
import { requestAccounting } from './report';

/**
 * The live status: one refreshing line on a terminal (stderr is a TTY), plain periodic log lines
 * otherwise. The formatting is pure (tested); StatusLine owns the terminal line and clears it
 * before any log line or report is written so that nothing is garbled.
 */

/** What one status line shows besides the engine counters. */
export interface StatusExtras {
  /** Requests replayed per second over the last interval. */
  rate: number;
  /** Offline replay progress 0..1, null live. */
  progress: number | null;
  /** Estimated seconds until the capture is replayed, null when unknown. */
  etaS: number | null;
  /** Resident memory, MiB. */
  rssMB: number;
  /** Whether the intercept channel is up. */
  channelUp: boolean;
  /** Offline: seconds until the next frame's recorded time (a gap in the capture); shown from 1 s. Default 0. */
  gapWaitS?: number;
  /** A part of its own after the module's (the comparison's `cmp ...`). */
  extra?: string;
}

/** Shortest wait for a recorded gap that the status line mentions, seconds. */
export const GAP_WAIT_SHOWN_S = 1;

/** `[#####-----]  42.0%` with `width` cells between the brackets. */
export function progressBar(fraction: number, width = 20): string {
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const full = Math.round(f * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}] ${(f * 100).toFixed(1).padStart(5)}%`;
}

/** Seconds as `m:ss` or `h:mm:ss`; `?` when unknown. */
export function formatEta(s: number | null): string {
  if (s === null || !Number.isFinite(s) || s < 0) return '?';
  const t = Math.round(s);
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = String(t % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** ETA from progress made since `startedAt` (ms): null until there is some progress. */
export function estimateEta(progress: number, startedAt: number, now: number): number | null {
  if (progress <= 0.001 || now <= startedAt) return null;
  return ((now - startedAt) / 1000) * ((1 - progress) / progress);
}

/** Losses by reason, non-zero only: `sampledOut=3 targetReset=1`, or `none`. */
export function formatLosses(e: EngineStats): string {
  const lost = Object.entries(requestAccounting(e).lost).filter(([, v]) => v !== 0);
  return lost.length === 0 ? 'none' : lost.map(([k, v]) => `${k}=${v}`).join(' ');
}

/** The module's part of the status line, brief: its name, sessions it ended, its first few counters. */
export function moduleStatus(m: ModuleStats): string {
  const ended = Object.values(m.ended).reduce((a, b) => a + b, 0);
  const counters = Object.entries(m.counters)
    .filter(([, v]) => v !== 0)
    .slice(0, 3)
    .map(([k, v]) => `${k}=${v}`);
  return [`${m.name} ended ${ended}`, ...counters, ...(m.errors > 0 ? [`errors=${m.errors}`] : [])].join(' ');
}

/** The status text (no terminal control characters): sessions, requests, replies, losses, rate, progress. */
export function formatStatus(e: EngineStats, x: StatusExtras): string {
  const acc = requestAccounting(e);
  const parts: string[] = [];
  // the progress bar first: a line cut to the terminal width loses the least useful end
  const gapS = x.gapWaitS ?? 0;
  if (x.progress !== null) {
    // while a recorded gap is waited for, the file may be all read: the ETA is at least the wait
    const eta = gapS > 0 && (x.etaS === null || x.etaS < gapS) ? gapS : x.etaS;
    parts.push(`${progressBar(x.progress)} ETA ${formatEta(eta)}`);
  }
  if (gapS >= GAP_WAIT_SHOWN_S) parts.push(`waiting ${formatEta(gapS)} for a recorded gap`);
  parts.push(
    `sessions ${e.sessionsActive} active/${e.sessionsCreated} replayed/${e.outcomes.completed} completed`,
    `requests ${acc.replayed}/${acc.captured} replayed`,
    `${x.rate.toFixed(1)} req/s`,
    `replies ${e.replies}`,
    `retrans ${e.retransTimeout + e.retransFast}`,
    `lost ${formatLosses(e)}`,
  );
  if (e.module !== null) parts.push(moduleStatus(e.module));
  if (x.extra !== undefined && x.extra !== '') parts.push(x.extra);
  if (!x.channelUp) parts.push('CHANNEL DOWN');
  parts.push(`rss ${x.rssMB.toFixed(0)}MiB`);
  return parts.join(' | ');
}

/** Fits a line to `columns` (a wrapped line cannot be redrawn in place); ends with `…` when cut. */
export function fitLine(text: string, columns: number): string {
  if (columns <= 1 || text.length < columns) return text;
  return text.slice(0, columns - 2) + '…';
}

/** ANSI: carriage return and erase the line. */
export const CLEAR_LINE = '\r\x1b[2K';

/** What StatusLine writes to: process.stderr in production, a fake in tests. */
export interface StatusStream {
  write(s: string): unknown;
  /** Terminal width, when known. */
  columns?: number | undefined;
}

/** The one refreshing line at the bottom of a terminal. */
export class StatusLine {
  private text = '';
  private shown = false;

  constructor(private readonly out: StatusStream) {}

  /** Replaces the line with `text` (cut to the terminal width). */
  show(text: string): void {
    this.text = fitLine(text, this.out.columns ?? 160);
    this.out.write(CLEAR_LINE + this.text);
    this.shown = true;
  }

  /** Erases the line (before other output); `redraw()` puts it back. */
  clear(): void {
    if (!this.shown) return;
    this.out.write(CLEAR_LINE);
    this.shown = false;
  }

  /** Draws the last text again after other output. */
  redraw(): void {
    if (this.text !== '' && !this.shown) {
      this.out.write(this.text);
      this.shown = true;
    }
  }

  /** Clears the line for good and moves on (at exit). */
  done(): void {
    this.clear();
    this.text = '';
  }

  /** A logger whose every line first clears the status line and redraws it afterwards. */
  wrapLogger(log: Logger): Logger {
    const around =
      (fn: (m: string, f?: Record<string, unknown>) => void) =>
      (m: string, f?: Record<string, unknown>): void => {
        this.clear();
        fn(m, f);
        this.redraw();
      };
    return {
      debug: around((m, f) => log.debug(m, f)),
      info: around((m, f) => log.info(m, f)),
      warn: around((m, f) => log.warn(m, f)),
      error: around((m, f) => log.error(m, f)),
      close: () => log.close(),
    };
  }
}
