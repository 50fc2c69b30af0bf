import * as path from 'node:path';
import * as fs from 'node:fs';
import type { Lab } from '../../src/lab/lab';
import type { HostName } from '../../src/lab/names';
import type { LabProcess } from '../../src/lab/process';
import type { AccessRecord } from '../../src/lab/access-log';

/** Paths of the compiled CLIs. */
export const TCPCOPY = path.join(__dirname, '..', '..', 'src', 'cli', 'tcpcopy-main.js');
export const INTERCEPT = path.join(__dirname, '..', '..', 'src', 'cli', 'intercept-main.js');

/** True when the e2e tests can run (root). */
export function canRunLab(): boolean {
  return process.getuid?.() === 0;
}

/**
 * The `skip` option of every e2e test: false as root; otherwise 'needs root' on a developer's
 * machine, but under CI (CI=true) it throws, so that the file fails instead of passing with
 * nothing run (scripts/test.sh also fails a CI run that is not root or skipped any e2e test).
 */
export function skipUnlessRoot(): false | string {
  if (canRunLab()) return false;
  if (process.env['CI'] === 'true')
    throw new Error('CI=true but not root: the end-to-end tests need root (network namespaces, raw sockets)');
  return 'needs root';
}

/**
 * How long a lab program (tcpcopy, intercept) may take to start, ms: an upper bound on waiting
 * for its start line, generous because with 2 CPUs shared by several labs (load average 30) a
 * start has taken more than 10 s. Nothing is judged by how long it took.
 */
export const START_MS = 60_000;

/** Starts intercept on the assistant and waits until it listens. */
export async function startIntercept(lab: Lab, args: string[] = [], host: HostName = 'assistant'): Promise<LabProcess> {
  const dev = lab.hosts[host as 'assistant'].dev;
  const p = lab.spawn(host, [process.execPath, INTERCEPT, '-i', dev, '-F', 'tcp and src port 8080', ...args]);
  const deadline = Date.now() + START_MS;
  while (Date.now() < deadline) {
    if (/listening on/.test(p.stderr + p.stdout)) return p;
    if (!p.running) throw new Error(`intercept exited: ${p.stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  // not left running: a late start would hold the channel port against the next intercept
  await p.stop('SIGKILL', 1000);
  throw new Error(`intercept did not start within ${START_MS} ms: ${p.stderr}`);
}

/** Runs tcpcopy to completion in a host's namespace; returns its output and JSON report. */
export async function runTcpcopy(
  lab: Lab,
  args: string[],
  host: HostName = 'online',
  timeoutMs = 300_000,
): Promise<{ code: number; stdout: string; stderr: string; report: TcpcopyJsonReport }> {
  const reportFile = path.join(lab.dir, `report-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  const r = await lab.exec(
    host,
    [process.execPath, TCPCOPY, ...args, '--report', `json:${reportFile}`, '--status', '0'],
    { timeoutMs },
  );
  let report: TcpcopyJsonReport;
  try {
    report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as TcpcopyJsonReport;
  } catch {
    throw new Error(`tcpcopy wrote no report (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  return { ...r, report };
}

/** The parts of tcpcopy's JSON report the tests read. */
export interface TcpcopyJsonReport {
  engine: {
    requestsCaptured: number;
    requestsReplayed: number;
    sessionsCreated: number;
    sessionsQueued: number;
    outcomes: Record<string, number>;
    requestsLost: Record<string, number>;
    packetsSent: number;
    replies: number;
    retransTimeout: number;
    retransFast: number;
    /** Replay lag histogram: bucket 0 under 1 ms, bucket i in [2^(i-1), 2^i) ms. */
    lagHistogram: number[];
  };
  accounting: {
    captured: number;
    replayed: number;
    lost: Record<string, number>;
    /** Requests in sessions still open when the report was made (0 at exit). */
    inFlight: number;
    /** captured - replayed - lost - inFlight: not 0 only on a counting bug. */
    unexplained: number;
    balanced: boolean;
  };
  process: { cpuUserS: number; cpuSystemS: number; maxRssMB: number };
  /** Capture counters (live: frames seen, kernel ring drops). */
  capture?: { frames: number; dropped: number };
  /** Why the replay stopped. */
  stopReason?: string;
  durationS: number;
  /** Replay lag percentiles (ms, bucket upper bounds). */
  lag?: { p50: number; p90: number; p99: number; samples: number };
  /** --compare: the comparison's result (summary.json's shape). */
  compare?: {
    totals: { exchanges: number; compared: number; different: number; skipped: Record<string, number> };
    memory?: { peakHeldBytes: number; maxBytes: number };
  } | null;
}

/** "METHOD path" multiset of access records, as sorted lines with counts. */
export function requestMultiset(recs: readonly AccessRecord[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of recs) {
    const k = `${r.method} ${r.path}`;
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

/** Process CPU seconds (user+system) of a pid, from /proc (for intercept's figures). */
export function cpuSecondsOf(pid: number): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[11]) + Number(rest[12]);
    return ticks / 100;
  } catch {
    return NaN;
  }
}

/** A live tcpcopy started with {@link startLiveTcpcopy}. */
export interface LiveTcpcopy {
  /** The process (pid, output so far). */
  proc: LabProcess;
  /** Stops it with SIGINT (SIGKILL after `graceMs`), then reads its JSON report. */
  stop(graceMs?: number): Promise<{
    code: number | null;
    signal: string | null;
    stdout: string;
    stderr: string;
    report: TcpcopyJsonReport | null;
    stopMs: number;
  }>;
}

/**
 * Starts tcpcopy in live mode in a host's namespace (`--status 0`, a JSON report file) and waits
 * until it logs that it captures.
 */
export async function startLiveTcpcopy(
  lab: Lab,
  args: string[],
  host: HostName = 'online',
  extra: string[] = ['--status', '0'],
  nodeArgs: readonly string[] = [],
  main: string = TCPCOPY,
): Promise<LiveTcpcopy> {
  const reportFile = path.join(lab.dir, `live-report-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  const proc = lab.spawn(
    host,
    [process.execPath, ...nodeArgs, main, ...args, '--report', `json:${reportFile}`, ...extra],
    { stopSignal: 'SIGINT', graceMs: 30_000 },
  );
  const deadline = Date.now() + START_MS;
  for (;;) {
    if (/capturing on/.test(proc.stderr + proc.stdout)) break;
    if (!proc.running) throw new Error(`tcpcopy exited: ${proc.stderr}${proc.stdout}`);
    if (Date.now() > deadline) {
      await proc.stop('SIGKILL', 1000);
      throw new Error(`tcpcopy did not start capturing: ${proc.stderr}${proc.stdout}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    proc,
    async stop(graceMs = 30_000) {
      const t0 = Date.now();
      const e = await proc.stop('SIGINT', graceMs);
      const stopMs = Date.now() - t0;
      let report: TcpcopyJsonReport | null = null;
      try {
        report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as TcpcopyJsonReport;
      } catch {
        report = null;
      }
      return { code: e.code, signal: e.signal, stdout: proc.stdout, stderr: proc.stderr, report, stopMs };
    },
  };
}

/**
 * Polls `count()` until it reaches `want` and then stays unchanged for `quietMs` (or until
 * `timeoutMs`); resolves the last value. For "the target has seen everything, and no more".
 */
export async function waitSettled(
  count: () => number,
  want: number,
  timeoutMs = 15_000,
  quietMs = 1000,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = count();
  let since = Date.now();
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const c = count();
    if (c !== last) {
      last = c;
      since = Date.now();
    }
    if ((last >= want && Date.now() - since >= quietMs) || Date.now() > deadline) return last;
  }
}

/**
 * Polls `cond` every 20 ms until it holds; throws naming `what` when it still does not after
 * `timeoutMs` (a bound against hangs, not a timed assertion). For "wait for the event" instead of
 * a fixed sleep.
 */
export async function waitUntil(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** "# name: cpu=..s rss=..MB" line with tcpcopy's own process figures from its report. */
export function processFigures(report: TcpcopyJsonReport | null): string {
  if (report === null) return 'no report';
  const p = report.process;
  return `tcpcopy cpu=${(p.cpuUserS + p.cpuSystemS).toFixed(2)}s (user ${p.cpuUserS.toFixed(2)} sys ${p.cpuSystemS.toFixed(2)}) peakRss=${p.maxRssMB.toFixed(1)}MB`;
}

/**
 * tcpcopy's own replay lag (capture of a request to the target's first reply byte): its
 * percentiles and the non-empty histogram buckets as `<=UPPER ms: COUNT` (bucket 0: under 1 ms).
 */
export function lagFigures(report: TcpcopyJsonReport | null): string {
  if (report === null) return 'no report';
  const l = report.lag;
  if (l === undefined) return 'no lag in the report';
  const buckets = report.engine.lagHistogram
    .map((n, i) => (n > 0 ? `<=${i === 0 ? 1 : 2 ** i}:${n}` : ''))
    .filter((x) => x !== '')
    .join(' ');
  return `lag p50 <= ${l.p50} ms, p90 <= ${l.p90}, p99 <= ${l.p99} (${l.samples} samples; ms buckets ${buckets})`;
}

/** Lines in a server's access log now (cheap: counts newlines; 0 before the file exists). */
export function accessLogLines(s: { accessLog: string }): number {
  try {
    const b = fs.readFileSync(s.accessLog);
    let n = 0;
    for (let i = b.indexOf(10); i !== -1; i = b.indexOf(10, i + 1)) n++;
    return n;
  } catch {
    return 0;
  }
}
