/**
 * Keeps tcpcopy under its memory budget (`--memory-budget`, issue 18 item 13). What grows when
 * tcpcopy falls behind the capture (measured in the lab with wrk: 6-8k short connections/s on
 * 2 shared cores, replay lag 4-8 s): the sessions waiting to be replayed (about 2 KiB of live
 * heap each, 15-30k of them) and the old generation's garbage, which V8 collects only once it
 * has grown to about twice the live heap (133 MiB used, 26 MiB live after a full collection).
 * So, checked every CHECK_MS on the resident set:
 *
 * - at or over the budget: new connections are not replayed (counted lost as `overload`, see
 *   ReplayEngine.setAdmitting), the sessions with nothing waiting and idle IDLE_SHED_MS are
 *   ended as the keep-alive timeout would end them (nothing lost: ReplayEngine.shedIdle; under
 *   CPU starvation these are the short connections whose FIN the kernel ring dropped, which
 *   would otherwise stay for `-k`, 600 s), and a full collection runs (at most once per
 *   GC_EVERY_MS);
 * - still over it SETTLE_MS after a collection: the session with the most requests waiting is
 *   given up (`overload`) as well (a keep-alive backlog has no new connections to refuse), one
 *   per collection: the next one only after another collection shows that giving one up was not
 *   enough (V8 returns freed memory to the system late, so the resident set a moment after a
 *   session was given up says little: judged every 250 ms, 8 sessions waiting for their logins
 *   were all given up within 3 s);
 * - back under RESUME_FRACTION of the budget, or under the budget REOPEN_AFTER_MS after it was
 *   reached: new connections are replayed again.
 *
 * It checks at every capture ring block end and on a timer, at most once per CHECK_MS.
 * Each change is logged. Pure over its inputs: the runner gives it the resident set, the
 * engine's two controls, the collector and the log.
 */

/** How often the resident set is read, ms. */
export const CHECK_MS = 100;
/** A full collection at most this often, ms (one takes 10-40 ms at these heap sizes). */
export const GC_EVERY_MS = 1000;
/** How long after a collection the resident set is given to fall before sessions are given up, ms. */
export const SETTLE_MS = 300;
/** Over the budget, sessions with nothing waiting are ended once idle this long, ms. */
export const IDLE_SHED_MS = 1000;
/** Under the budget, new connections are replayed again at the latest this long after it was reached, ms. */
export const REOPEN_AFTER_MS = 2000;
/** New connections are replayed again below this share of the budget. */
export const RESUME_FRACTION = 0.85;
/** The default budget when capturing from the host's own devices (production), MiB. */
export const LIVE_DEFAULT_BUDGET_MB = 110;
/**
 * The default budget with a protocol module (or a comparison), MiB: their sessions may each hold
 * up to LIVE_MODULE_SESSION_BACKLOG_KB while a login is redone or a statement learned, on top of
 * the 84-100 MiB of a replay keeping up (measured: a CI run of the PostgreSQL lab, 8 pgbench
 * connections opened before tcpcopy waiting to learn their statements, reached 110 MiB and all 8
 * were ended as overload within 3 s; the same run on a quiet machine peaked at 100 MiB).
 */
export const LIVE_MODULE_DEFAULT_BUDGET_MB = 256;
/**
 * `--session-backlog auto` when capturing from the host's own devices, KiB: about 5,000 small
 * requests waiting in one session (a unit costs its payload plus 128 bytes), so 64 keep-alive
 * connections hold at most 64 MiB (measured with 256: a starved tcpcopy at 20k keep-alive
 * requests/s lost 88% as backlog in transient lags it would have caught up with; with 1024 none).
 */
export const LIVE_SESSION_BACKLOG_KB = 1024;
/**
 * `--session-backlog auto` for the sessions of a protocol module (or a comparison), KiB: such a
 * session holds its captured messages while the module redoes a login or waits to learn a
 * statement (up to its hold limit, 10-30 s of a busy pooled connection: a CI run's pgbench
 * connections opened before tcpcopy passed 1024 KiB while they waited and were all ended as
 * backlog). The memory budget still bounds the whole.
 */
export const LIVE_MODULE_SESSION_BACKLOG_KB = 16384;

/** What the governor drives. */
export interface GovernedEngine {
  setAdmitting(open: boolean): void;
  shedLargest(now: number): number;
  /** Ends up to `max` sessions with nothing waiting, idle >= `idleMs`, as 'completed'; returns how many. */
  shedIdle(now: number, idleMs: number, max: number): number;
}

/** Counters of the governor (the report and the metrics show them). */
export interface GovernorStats {
  /** Times tcpcopy went over its budget (admission closed). */
  overBudget: number;
  /** Full collections it asked for. */
  collections: number;
  /** Sessions it gave up (the most requests waiting) when refusing new ones was not enough. */
  sessionsShed: number;
  /** Sessions with nothing waiting it ended early (idle IDLE_SHED_MS, as `-k` would; no request lost). */
  sessionsIdleEnded: number;
  /** Milliseconds spent with admission closed. */
  closedMs: number;
}

export class MemoryGovernor {
  readonly stats: GovernorStats = {
    overBudget: 0,
    collections: 0,
    sessionsShed: 0,
    sessionsIdleEnded: 0,
    closedMs: 0,
  };
  private closedSince = -1;
  private lastGcAt = -Infinity;
  private lastShedAt = -Infinity;
  private lastCheckAt = -Infinity;

  constructor(
    /** The budget, MiB (> 0). */
    readonly budgetMB: number,
    private readonly engine: GovernedEngine,
    private readonly collect: (() => void) | null,
    private readonly log: { warn(m: string): void; info(m: string): void },
  ) {}

  /** Whether new connections are refused now. */
  get closed(): boolean {
    return this.closedSince >= 0;
  }

  /**
   * A check when CHECK_MS passed since the last one: called from the runner's timer and at the
   * end of every capture ring block, because under overload the capture keeps the event loop so
   * busy that a timer alone comes late (measured: seconds).
   */
  due(rssMB: () => number, now: number): void {
    if (now - this.lastCheckAt >= CHECK_MS) this.check(rssMB(), now);
  }

  /** One check with the current resident set (MiB) at `now` (ms). */
  check(rssMB: number, now: number): void {
    this.lastCheckAt = now;
    const budget = this.budgetMB;
    if (rssMB >= budget) {
      this.stats.sessionsIdleEnded += this.engine.shedIdle(now, IDLE_SHED_MS, Infinity);
      if (this.closedSince < 0) {
        this.closedSince = now;
        this.stats.overBudget++;
        this.engine.setAdmitting(false);
        this.log.warn(
          `resident memory ${rssMB.toFixed(0)} MiB reached --memory-budget ${budget} MiB: new connections are not replayed (lost as overload) until it is under ${(budget * RESUME_FRACTION).toFixed(0)} MiB, or under the budget for ${REOPEN_AFTER_MS / 1000} s`,
        );
        this.gc(now);
        return;
      }
      if (now - this.lastGcAt >= GC_EVERY_MS) {
        this.gc(now);
        return;
      }
      // collected and still over: the backlog itself is too big; one session per collection
      if (now - this.lastGcAt < SETTLE_MS || this.lastShedAt >= this.lastGcAt) return;
      this.lastShedAt = now;
      if (this.engine.shedLargest(now) > 0) this.stats.sessionsShed++;
      return;
    }
    if (this.closedSince < 0) return;
    // between RESUME_FRACTION and the budget: collect again (what is left may be garbage), and
    // open after REOPEN_AFTER_MS even when the resident set stays there (a burst can leave it
    // there with nothing live: measured 105-124 MiB with no session left)
    if (rssMB >= budget * RESUME_FRACTION && now - this.closedSince < REOPEN_AFTER_MS) {
      if (now - this.lastGcAt >= GC_EVERY_MS) this.gc(now);
      return;
    }
    this.stats.closedMs += now - this.closedSince;
    this.closedSince = -1;
    this.engine.setAdmitting(true);
    this.log.info(`resident memory ${rssMB.toFixed(0)} MiB: new connections are replayed again`);
  }

  /** Milliseconds with admission closed, the current stretch included. */
  closedMsAt(now: number): number {
    return this.stats.closedMs + (this.closedSince >= 0 ? now - this.closedSince : 0);
  }

  private gc(now: number): void {
    this.lastGcAt = now;
    if (this.collect === null) return;
    this.stats.collections++;
    this.collect();
  }
}
