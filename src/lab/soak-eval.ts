/**
 * The soak test's judgement (issue 18, item 15), kept free of I/O so that it can be unit-tested:
 * the schedule of disturbances, the Prometheus text it scrapes, the attribution of every lost
 * request to a restart or impairment window, the flatness of RSS and fds after warm-up, and
 * the per-minute table.
 */

/** What the soak does to the replay's surroundings. */
export type SoakEventKind = 'interceptRestart' | 'targetRestart' | 'impairment';

/** One disturbance as it happened: wall-clock ms since the soak started. */
export interface SoakEvent {
  kind: SoakEventKind;
  /** When it began (before the stop / before the rules went in), ms since start. */
  startMs: number;
  /** When it was over (the process back and tcpcopy's channel up again; the rules removed), ms since start. */
  endMs: number;
  /** For the table and the report: e.g. "loss 2%". */
  detail: string;
}

/** A planned disturbance: at `atMs` since start; impairments last `durationMs`. */
export interface PlannedEvent {
  kind: SoakEventKind;
  atMs: number;
  durationMs: number;
  /** Impairments: loss percent or delay ms (one of them). */
  lossPct?: number;
  delayMs?: number;
}

/**
 * The disturbances of a soak of `totalMs`, one cycle every `cycleMs` (default 5 minutes): the
 * intercept restarted at 15% of each cycle, the target at 45%, an impairment from 70% for 13%
 * (loss 2% in even cycles, 20 ms delay in odd ones). Nothing starts in the last 30 s, so the
 * replay is quiet when the soak ends.
 */
export function soakSchedule(totalMs: number, cycleMs = 300_000): PlannedEvent[] {
  const out: PlannedEvent[] = [];
  const lastStart = totalMs - 30_000;
  for (let c = 0, base = 0; base < totalMs && c < 10_000; c++, base += cycleMs) {
    const ev: PlannedEvent[] = [
      { kind: 'interceptRestart', atMs: base + 0.15 * cycleMs, durationMs: 0 },
      { kind: 'targetRestart', atMs: base + 0.45 * cycleMs, durationMs: 0 },
      {
        kind: 'impairment',
        atMs: base + 0.7 * cycleMs,
        durationMs: 0.13 * cycleMs,
        ...(c % 2 === 0 ? { lossPct: 2 } : { delayMs: 20 }),
      },
    ];
    for (const e of ev) if (e.atMs + e.durationMs <= lastStart) out.push({ ...e, atMs: Math.round(e.atMs) });
  }
  return out;
}

/** Loss reasons each kind of disturbance can cause. */
export const EXPLAINS: Readonly<Record<SoakEventKind, readonly string[]>> = {
  // replies not seen while the channel was down: handshakes and requests time out
  interceptRestart: ['channelDown', 'targetNoHandshake', 'targetTimeout', 'idleTimeout'],
  // nginx's fast shutdown resets open connections; while it is down SYNs are refused
  targetRestart: ['targetReset', 'targetRefused', 'targetNoHandshake', 'targetTimeout', 'idleTimeout'],
  // lost or late segments: retransmissions exhausted, handshakes that never complete
  impairment: ['targetTimeout', 'targetNoHandshake', 'targetReset', 'idleTimeout', 'channelDown'],
};

/**
 * How long after a disturbance ended a loss with this reason can still be its consequence, ms:
 * idle sessions end after tcpcopy's -t / -k (120 s by default), the others within the reply
 * timeout (30 s) or the retransmission budget (8 tries, RTO up to 3 s), plus margin.
 */
export function graceMs(reason: string): number {
  return reason === 'idleTimeout' ? 150_000 : 45_000;
}

/** Requests lost with one reason between two scrapes (ms since start). */
export interface LossDelta {
  fromMs: number;
  toMs: number;
  reason: string;
  count: number;
}

/** Losses that a disturbance explains (with it) and those none explains. */
export interface LossAttribution {
  explained: Array<LossDelta & { by: string }>;
  unexplained: LossDelta[];
}

/**
 * Attributes each loss to the first disturbance whose window [start, end + grace(reason)]
 * overlaps the scrape interval the loss was seen in and whose kind explains the reason.
 */
export function attributeLosses(deltas: readonly LossDelta[], events: readonly SoakEvent[]): LossAttribution {
  const out: LossAttribution = { explained: [], unexplained: [] };
  for (const d of deltas) {
    const by = events.find(
      (e) => EXPLAINS[e.kind].includes(d.reason) && d.toMs >= e.startMs && d.fromMs <= e.endMs + graceMs(d.reason),
    );
    if (by !== undefined) out.explained.push({ ...d, by: `${by.kind}@${(by.startMs / 1000).toFixed(0)}s` });
    else out.unexplained.push(d);
  }
  return out;
}

/** Samples of one Prometheus exposition: `name` or `name{labels}` -> value. */
export function parseProm(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    if (sp <= 0) continue;
    const v = Number(line.slice(sp + 1));
    if (!Number.isNaN(v) || line.endsWith('NaN')) m.set(line.slice(0, sp), v);
  }
  return m;
}

/** The `reason` label values of `<prefix>_requests_lost_total` and their counts. */
export function lostByReason(m: ReadonlyMap<string, number>, prefix = 'tcpcopy'): Record<string, number> {
  const out: Record<string, number> = {};
  const re = new RegExp(`^${prefix}_requests_lost_total\\{reason="([^"]*)"\\}$`);
  for (const [k, v] of m) {
    const r = re.exec(k);
    if (r !== null) out[r[1] as string] = v;
  }
  return out;
}

/** The loss deltas by reason between two scrapes (reasons that grew); inFlight is not a loss. */
export function lossDeltas(
  before: Readonly<Record<string, number>>,
  after: Readonly<Record<string, number>>,
  fromMs: number,
  toMs: number,
): LossDelta[] {
  const out: LossDelta[] = [];
  for (const [reason, v] of Object.entries(after)) {
    if (reason === 'inFlight' || reason === 'sampledOut') continue;
    const d = v - (before[reason] ?? 0);
    if (d > 0) out.push({ fromMs, toMs, reason, count: d });
  }
  return out;
}

/** Flatness of a series after warm-up: medians of its first and last third and their ratio. */
export interface Flatness {
  samples: number;
  firstMedian: number;
  lastMedian: number;
  /** lastMedian / firstMedian. */
  ratio: number;
  min: number;
  max: number;
  /** ratio within 1 +- tolerance. */
  flat: boolean;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 === 1 ? (s[n >> 1] as number) : ((s[n / 2 - 1] as number) + (s[n / 2] as number)) / 2;
}

/**
 * Whether `values` (one per minute, after warm-up) stay flat: the median of the last third is
 * within `tolerance` (0.1 = 10%) of the median of the first third (medians, so one minute's GC
 * peak or a reconnect's extra socket does not decide). Not flat with fewer than two samples.
 */
export function flatness(values: readonly number[], tolerance = 0.1): Flatness {
  const n = values.length;
  const k = Math.max(1, Math.floor(n / 3));
  const firstMedian = median(values.slice(0, k));
  const lastMedian = median(values.slice(n - k));
  const ratio = lastMedian / firstMedian;
  return {
    samples: n,
    firstMedian,
    lastMedian,
    ratio,
    min: n > 0 ? Math.min(...values) : NaN,
    max: n > 0 ? Math.max(...values) : NaN,
    flat: n >= 2 && Math.abs(ratio - 1) <= tolerance,
  };
}

/** Minutes of warm-up left out of the flatness checks: a sixth of the run, at least 1, at most 10. */
export function warmupMinutes(minutes: number): number {
  return Math.min(10, Math.max(1, Math.round(minutes / 6)));
}

/** One row of the soak table (one per minute). */
export interface SoakRow {
  minute: number;
  /** tcpcopy's resident set now and its peak so far, MiB. */
  rssMB: number;
  hwmMB: number;
  heapUsedMB: number;
  heapTotalMB: number;
  externalMB: number;
  fds: number;
  sessions: number;
  captured: number;
  replayed: number;
  /** Lost with a reason (sampling excluded). */
  lost: number;
  /** captured - replayed - lost: the requests still open. */
  inFlight: number;
  /** The accounting identity holds now: nothing negative in flight, no unexplained remainder. */
  identity: boolean;
  /** Requests in the online and target access logs since tcpcopy started. */
  online: number;
  target: number;
  /** tcpcopy's CPU use over the minute, % of one CPU; the hypervisor's steal over it, % of the machine (NaN for the first row). */
  cpuPct: number;
  stealPct: number;
  /** Disturbances that began in this minute: I intercept restart, T target restart, L loss, D delay. */
  events: string;
}

/** The per-minute table. */
export function soakTable(rows: readonly SoakRow[]): string {
  const head = [
    'min',
    'RSS MiB',
    'peak',
    'heap used',
    'heap total',
    'external',
    'fds',
    'sessions',
    'captured',
    'replayed',
    'lost',
    'in flight',
    'identity',
    'online',
    'target',
    'cpu %',
    'steal %',
    'events',
  ];
  const lines = rows.map((r) => [
    String(r.minute),
    r.rssMB.toFixed(1),
    r.hwmMB.toFixed(1),
    r.heapUsedMB.toFixed(1),
    r.heapTotalMB.toFixed(1),
    r.externalMB.toFixed(1),
    String(r.fds),
    String(r.sessions),
    String(r.captured),
    String(r.replayed),
    String(r.lost),
    String(r.inFlight),
    r.identity ? 'ok' : 'FAIL',
    String(r.online),
    String(r.target),
    r.cpuPct.toFixed(0),
    r.stealPct.toFixed(1),
    r.events,
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const fmt = (cells: string[]): string => cells.map((c, i) => c.padStart(w[i] as number)).join('  ');
  return [fmt(head), ...lines.map(fmt)].join('\n');
}
