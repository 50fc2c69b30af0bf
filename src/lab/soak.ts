/**
 * The soak test (issue 18, item 15): one live tcpcopy (`-n 2`, `-L`) copying nginx on online to
 * nginx on target for `minutes`, under a mixed load (keep-alive and one request per
 * connection, in bounded chunks), while the intercept is killed and restarted, the target's
 * nginx is restarted, and an impairment (loss or delay, see test/e2e/robust-helpers.ts: this
 * kernel has no netem) is switched on and off on the target's links, each every cycle.
 * tcpcopy's RSS and fds are read from /proc, its heap, sessions and accounting from its
 * metrics endpoint (scraped every few seconds, so every lost request is seen near the time it
 * was lost). See soak-eval.ts for the judgement and soak-chart.ts for the chart.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { withLab, type Lab } from './lab';
import type { LoadOptions } from './loadgen';
import type { NginxServer } from './servers';
import type { LabProcess } from './process';
import { sleep } from './sh';
import { impair, type ImpairHandle } from '../../test/e2e/robust-helpers';
import { startIntercept, startLiveTcpcopy, type TcpcopyJsonReport } from '../../test/e2e/replay-helpers';
import {
  attributeLosses,
  flatness,
  lossDeltas,
  lostByReason,
  parseProm,
  soakSchedule,
  soakTable,
  warmupMinutes,
  type Flatness,
  type LossAttribution,
  type LossDelta,
  type PlannedEvent,
  type SoakEvent,
  type SoakRow,
} from './soak-eval';
import { soakChart } from './soak-chart';

/** Settings of a soak run. */
export interface SoakOptions {
  /** Length of the run, minutes. Default 60. */
  minutes: number;
  /** One cycle of disturbances (intercept restart, target restart, impairment), ms. Default 300000 (5 min), or the whole run when shorter. */
  cycleMs?: number;
  /** Directory for soak.json, soak.txt and soak.svg. Required. */
  outDir: string;
  /** Offered keep-alive requests per second (32 connections). Default 300. */
  keepAliveRate?: number;
  /** Offered one-request connections per second (8 at a time). Default 100. */
  shortRate?: number;
  /** Metrics scrape interval, ms. Default 5000. */
  scrapeMs?: number;
  /**
   * Lab name prefix (namespaces `<prefix>client` ...). Default 'tsk1', which no e2e test, bench
   * part or demo uses, so a soak can run beside them without the e2e lock; two soaks at once
   * need two prefixes.
   */
  prefix?: string;
  /** Progress lines. */
  log: (s: string) => void;
}

/** The soak's default lab prefix (see SoakOptions.prefix). */
export const SOAK_PREFIX = 'tsk1';

/** What the soak found. */
export interface SoakResult {
  passed: boolean;
  failures: string[];
  minutes: number;
  minutesCompleted: number;
  warmupMinutes: number;
  rows: SoakRow[];
  events: SoakEvent[];
  rss: Flatness;
  fds: Flatness;
  losses: LossAttribution;
  lostByReason: Record<string, number>;
  /** The final JSON report's accounting. */
  accounting: TcpcopyJsonReport['accounting'] | null;
  /** Access log lines since tcpcopy started, and tcpcopy's final counters. */
  totals: { online: number; target: number; captured: number; replayed: number };
  loadErrors: string[];
  /** Every scrape: seconds since start, RSS MiB, fds, sessions, captured, replayed, lost (with a reason), in flight. */
  series: Array<[number, number, number, number, number, number, number, number]>;
  files: { json: string; table: string; chart: string };
}

/** Counts lines of a growing file from where it was at construction, reading only what is new. */
class LineCounter {
  private offset: number;
  private lines = 0;
  constructor(private readonly file: string) {
    this.offset = fs.existsSync(file) ? fs.statSync(file).size : 0;
  }
  count(): number {
    let fd: number;
    try {
      fd = fs.openSync(this.file, 'r');
    } catch {
      return this.lines;
    }
    try {
      const buf = Buffer.allocUnsafe(1 << 20);
      for (let i = 0; i < 100_000; i++) {
        const n = fs.readSync(fd, buf, 0, buf.length, this.offset);
        if (n <= 0) break;
        let last = -1;
        for (let j = buf.indexOf(10); j !== -1 && j < n; j = buf.indexOf(10, j + 1)) {
          this.lines++;
          last = j;
        }
        if (last < 0) break; // a partial line: wait for its end
        this.offset += last + 1;
      }
    } finally {
      fs.closeSync(fd);
    }
    return this.lines;
  }
}

/** One scrape: /proc figures and the metrics. */
interface Scrape {
  tMs: number;
  rssMB: number;
  hwmMB: number;
  fds: number;
  metrics: Map<string, number>;
  lost: Record<string, number>;
  online: number;
  target: number;
  /** tcpcopy's CPU seconds (user + system) so far, and the machine's CPU ticks (total, steal). */
  cpuS: number;
  ticks: { total: number; steal: number };
}

/** CPU seconds (user + system, 10 ms ticks) of a process so far; NaN when it is gone. */
function cpuSecondsOf(pid: number): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch {
    return NaN;
  }
}

/** The machine's CPU tick counters (/proc/stat): total and steal. */
function cpuTicks(): { total: number; steal: number } {
  try {
    const v = (fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    return { total: v.slice(0, 8).reduce((a, b) => a + b, 0), steal: v[7] ?? 0 };
  } catch {
    return { total: NaN, steal: NaN };
  }
}

function procStatus(pid: number): { rssMB: number; hwmMB: number } {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? NaN);
    return { rssMB: kb('VmRSS') / 1024, hwmMB: kb('VmHWM') / 1024 };
  } catch {
    return { rssMB: NaN, hwmMB: NaN };
  }
}

function fdCount(pid: number): number {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

const METRICS = '127.0.0.1:9464';
const MB = 1024 * 1024;

async function scrapeMetrics(lab: Lab): Promise<Map<string, number>> {
  const r = await lab.exec('online', ['curl', '-s', '--max-time', '5', `http://${METRICS}/metrics`], {
    timeoutMs: 10_000,
  });
  return r.code === 0 ? parseProm(r.stdout) : new Map();
}

function rowOf(minute: number, s: Scrape, prev: Scrape | undefined, events: readonly SoakEvent[]): SoakRow {
  const g = (k: string): number => s.metrics.get(`tcpcopy_${k}`) ?? NaN;
  const lost = Object.entries(s.lost)
    .filter(([k]) => k !== 'inFlight' && k !== 'sampledOut')
    .reduce((a, [, v]) => a + v, 0);
  const captured = g('requests_captured_total') - (s.lost['sampledOut'] ?? 0);
  const replayed = g('requests_replayed_total');
  const inFlight = captured - replayed - lost;
  const letters: Record<string, string> = { interceptRestart: 'I', targetRestart: 'T' };
  const ev = events
    .filter((e) => e.startMs >= (minute - 1) * 60_000 && e.startMs < minute * 60_000)
    .map((e) => letters[e.kind] ?? (e.detail.startsWith('loss') ? 'L' : 'D'))
    .join('');
  return {
    minute,
    rssMB: s.rssMB,
    hwmMB: s.hwmMB,
    heapUsedMB: g('heap_used_bytes') / MB,
    heapTotalMB: g('heap_total_bytes') / MB,
    externalMB: g('external_memory_bytes') / MB,
    fds: s.fds,
    sessions: g('sessions_active'),
    captured,
    replayed,
    lost,
    inFlight,
    // an 'unexplained' remainder (when the report has one) or a negative in-flight count breaks it
    identity: Number.isFinite(inFlight) && inFlight >= 0 && (s.lost['unexplained'] ?? 0) === 0,
    online: s.online,
    target: s.target,
    cpuPct: prev !== undefined ? (100 * (s.cpuS - prev.cpuS)) / Math.max(0.001, (s.tMs - prev.tMs) / 1000) : NaN,
    stealPct:
      prev !== undefined && s.ticks.total > prev.ticks.total
        ? (100 * (s.ticks.steal - prev.ticks.steal)) / (s.ticks.total - prev.ticks.total)
        : NaN,
    events: ev,
  };
}

/** Runs the soak; writes its files; resolves the result (never throws for a failed check). */
export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const totalMs = Math.round(o.minutes * 60_000);
  const cycleMs = o.cycleMs ?? Math.min(300_000, totalMs);
  const scrapeMs = o.scrapeMs ?? 5000;
  const kaRate = o.keepAliveRate ?? 300;
  const shortRate = o.shortRate ?? 100;
  const plan = soakSchedule(totalMs, cycleMs);
  fs.mkdirSync(o.outDir, { recursive: true });
  const files = {
    json: path.join(o.outDir, 'soak.json'),
    table: path.join(o.outDir, 'soak.txt'),
    chart: path.join(o.outDir, 'soak.svg'),
  };
  return withLab({ prefix: o.prefix ?? SOAK_PREFIX, clientAddresses: 50 }, async (lab) => {
    const online = await lab.startNginx('online', { port: 80 });
    let target: NginxServer = await lab.startNginx('target', { port: 8080 });
    let icp: LabProcess = await startIntercept(lab);
    const onCount = new LineCounter(online.accessLog);
    const tgCount = new LineCounter(target.accessLog);
    const tc = await startLiveTcpcopy(lab, [
      '-x',
      '80-198.18.0.2:8080',
      '-s',
      '198.18.0.3',
      '-n',
      '2',
      '-L',
      '--metrics',
      METRICS,
    ]);
    const pid = tc.proc.pid;
    const t0 = Date.now();
    const endAt = t0 + totalMs;
    const since = (): number => Date.now() - t0;
    o.log(
      `soak: ${o.minutes} min, tcpcopy pid ${pid}, load keep-alive ${kaRate}/s + short ${shortRate}/s, ${plan.length} disturbances, out ${o.outDir}`,
    );

    const events: SoakEvent[] = [];
    const scrapes: Scrape[] = [];
    const deltas: LossDelta[] = [];
    const loadErrors: string[] = [];
    const rows: SoakRow[] = [];

    // the load: two loops of bounded chunks (count and time), until the end
    const chunkMs = 30_000;
    const maxChunks = Math.ceil(totalMs / chunkMs) + 1;
    const loadLoop = async (keepAlive: boolean): Promise<void> => {
      for (let i = 0; i < maxChunks; i++) {
        const left = endAt - Date.now();
        if (left < 1000) return;
        const ms = Math.min(chunkMs, left);
        const rate = keepAlive ? kaRate : shortRate;
        const opts: LoadOptions = {
          url: 'http://198.18.1.1:80/',
          requests: Math.round((rate * ms) / 1000),
          durationMs: ms,
          rate,
          concurrency: keepAlive ? 32 : 8,
          keepAlive,
          paths: ['/', '/bytes/100', '/bytes/1000', '/bytes/10000'],
        };
        try {
          const sum = await lab.load('client', opts);
          const errs = Object.values(sum.errors).reduce((a, b) => a + b, 0);
          if (errs > 0)
            loadErrors.push(`${keepAlive ? 'keep-alive' : 'short'} chunk ${i}: ${JSON.stringify(sum.errors)}`);
        } catch (e) {
          loadErrors.push(`${keepAlive ? 'keep-alive' : 'short'} chunk ${i}: ${(e as Error).message}`);
          await sleep(1000);
        }
      }
    };

    let prevLost: Record<string, number> = {};
    let prevT = 0;
    const scrape = async (): Promise<Scrape> => {
      const metrics = await scrapeMetrics(lab);
      const s: Scrape = {
        tMs: since(),
        ...procStatus(pid),
        fds: fdCount(pid),
        metrics,
        lost: lostByReason(metrics),
        online: onCount.count(),
        target: tgCount.count(),
        cpuS: cpuSecondsOf(pid),
        ticks: cpuTicks(),
      };
      if (metrics.size > 0) {
        deltas.push(...lossDeltas(prevLost, s.lost, prevT, s.tMs));
        prevLost = s.lost;
        prevT = s.tMs;
      }
      scrapes.push(s);
      return s;
    };

    // scrapes every scrapeMs, a table row at every minute
    const scrapeLoop = async (): Promise<void> => {
      const maxScrapes = Math.ceil(totalMs / scrapeMs) + 2;
      let minute = 1;
      let rowScrape: Scrape | undefined = scrapes[0];
      for (let i = 0; i < maxScrapes && Date.now() < endAt; i++) {
        await sleep(Math.max(0, t0 + (i + 1) * scrapeMs - Date.now()));
        const s = await scrape();
        if (s.tMs >= minute * 60_000 && s.metrics.size > 0) {
          const row = rowOf(minute, s, rowScrape, events);
          rowScrape = s;
          rows.push(row);
          o.log(
            `soak: minute ${minute}: rss ${row.rssMB.toFixed(1)} MiB (peak ${row.hwmMB.toFixed(1)}), heap ${row.heapUsedMB.toFixed(1)}/${row.heapTotalMB.toFixed(1)} MiB, fds ${row.fds}, sessions ${row.sessions}, ` +
              `captured ${row.captured} replayed ${row.replayed} lost ${row.lost} in flight ${row.inFlight}, online ${row.online} target ${row.target}${row.events ? `, events ${row.events}` : ''}`,
          );
          minute++;
          // the table so far, so an interrupted run still leaves its minutes
          fs.writeFileSync(files.table, `${soakTable(rows)}\n(in progress)\n`);
        }
      }
    };

    const channelUp = async (timeoutMs: number): Promise<boolean> => {
      const until = Date.now() + timeoutMs;
      while (Date.now() < until) {
        if ((await scrapeMetrics(lab)).get('tcpcopy_channel_up') === 1) return true;
        await sleep(200);
      }
      return false;
    };

    const disturb = async (p: PlannedEvent): Promise<void> => {
      const startMs = since();
      let detail = '';
      if (p.kind === 'interceptRestart') {
        await icp.stop('SIGKILL', 1000);
        await sleep(2000);
        // a start that fails (the machine too loaded) is retried: the outage lasts until one works,
        // and the event covers it, so its losses are explained by it
        const failed: string[] = [];
        for (let i = 0; i < 5; i++) {
          try {
            icp = await startIntercept(lab);
            break;
          } catch (e) {
            failed.push((e as Error).message.slice(0, 200));
            await sleep(1000);
          }
        }
        if (failed.length === 5) {
          events.push({ kind: p.kind, startMs, endMs: since(), detail: `SIGKILL, not started again: ${failed[4]}` });
          throw new Error(`intercept not started again: ${failed.join('; ')}`);
        }
        const up = await channelUp(60_000);
        detail = `SIGKILL, 2 s down${failed.length > 0 ? `, ${failed.length} failed starts (${failed.join('; ')})` : ''}${up ? '' : ', channel not up again within 60 s'}`;
      } else if (p.kind === 'targetRestart') {
        await target.stop();
        await sleep(2000);
        target = await lab.startNginx('target', { port: 8080 });
        detail = 'nginx stopped, 2 s down';
      } else {
        const imp =
          p.lossPct !== undefined ? { name: 'loss', lossPct: p.lossPct } : { name: 'delay', delayMs: p.delayMs ?? 20 };
        detail = p.lossPct !== undefined ? `loss ${p.lossPct}%` : `delay ${p.delayMs} ms`;
        let h: ImpairHandle | null = null;
        try {
          h = await impair(lab, imp);
          await sleep(Math.max(0, t0 + p.atMs + p.durationMs - Date.now()));
        } finally {
          const counters = h !== null ? (await h.remove()).text : 'not applied';
          detail += ` (${counters})`;
        }
      }
      const ev: SoakEvent = { kind: p.kind, startMs, endMs: since(), detail };
      events.push(ev);
      o.log(
        `soak: ${(startMs / 1000).toFixed(0)} s: ${p.kind} ${detail} (${((ev.endMs - startMs) / 1000).toFixed(1)} s)`,
      );
    };

    const eventLoop = async (): Promise<void> => {
      for (const p of plan) {
        await sleep(Math.max(0, t0 + p.atMs - Date.now()));
        if (Date.now() >= endAt) return;
        try {
          await disturb(p);
        } catch (e) {
          loadErrors.push(`${p.kind} at ${p.atMs} ms: ${(e as Error).message}`);
        }
      }
    };

    await scrape(); // the baseline of the first minute's CPU figures
    await Promise.all([loadLoop(true), loadLoop(false), scrapeLoop(), eventLoop()]);

    // quiet end: the target catches up (bounded), a last scrape, then tcpcopy's own report
    const want = 2 * onCount.count();
    for (let i = 0, last = -1, still = 0; i < 120 && still < 10; i++) {
      await sleep(500);
      const c = tgCount.count();
      still = c === last && c > 0 ? still + 1 : 0;
      last = c;
      if (c >= want) still = Math.max(still, 4);
    }
    const final = await scrape();
    const stopped = await tc.stop();
    const report = stopped.report;
    const endMs = since();
    if (report !== null) {
      const fin: Record<string, number> = { ...report.accounting.lost };
      deltas.push(...lossDeltas(prevLost, fin, final.tMs, endMs));
    }
    if (rows.length === 0 || (rows[rows.length - 1] as SoakRow).minute < Math.floor(totalMs / 60_000))
      if (final.metrics.size > 0) rows.push(rowOf(rows.length + 1, final, scrapes[scrapes.length - 2], events));

    const warm = warmupMinutes(o.minutes);
    const after = rows.filter((r) => r.minute > warm);
    const rss = flatness(after.map((r) => r.rssMB));
    const fds = flatness(after.map((r) => r.fds));
    const losses = attributeLosses(deltas, events);
    const failures: string[] = [];
    if (!rss.flat)
      failures.push(
        `RSS not flat after ${warm} min of warm-up: median ${rss.firstMedian.toFixed(1)} -> ${rss.lastMedian.toFixed(1)} MiB (${((rss.ratio - 1) * 100).toFixed(1)}%, ${rss.samples} samples)`,
      );
    if (!fds.flat)
      failures.push(
        `fds not flat after warm-up: median ${fds.firstMedian} -> ${fds.lastMedian} (${((fds.ratio - 1) * 100).toFixed(1)}%)`,
      );
    const badRows = rows.filter((r) => !r.identity).map((r) => r.minute);
    if (badRows.length > 0) failures.push(`accounting identity broken in minutes ${badRows.join(', ')}`);
    if (report === null) failures.push('tcpcopy wrote no report');
    else {
      const a = report.accounting;
      const lostSum = Object.values(a.lost).reduce((x, y) => x + y, 0);
      if (!a.balanced) failures.push(`final accounting not balanced: ${JSON.stringify(a)}`);
      if (a.captured !== a.replayed + lostSum)
        failures.push(`final accounting: captured ${a.captured} != replayed ${a.replayed} + lost ${lostSum}`);
    }
    if (losses.unexplained.length > 0)
      failures.push(
        `losses no disturbance explains: ${losses.unexplained.map((d) => `${d.count} ${d.reason} in ${(d.fromMs / 1000).toFixed(0)}-${(d.toMs / 1000).toFixed(0)} s`).join('; ')}`,
      );
    if (stopped.code !== 0) failures.push(`tcpcopy exited with ${stopped.code ?? stopped.signal}`);
    const missed = plan.length - events.length;
    if (missed > 0 && endMs >= totalMs) failures.push(`${missed} planned disturbances did not happen`);

    const result: SoakResult = {
      passed: failures.length === 0,
      failures,
      minutes: o.minutes,
      minutesCompleted: rows.length,
      warmupMinutes: warm,
      rows,
      events,
      rss,
      fds,
      losses,
      lostByReason: report?.accounting.lost ?? final.lost,
      accounting: report?.accounting ?? null,
      totals: {
        online: final.online,
        target: tgCount.count(),
        captured: report?.accounting.captured ?? NaN,
        replayed: report?.accounting.replayed ?? NaN,
      },
      loadErrors,
      series: scrapes
        .filter((s) => s.metrics.size > 0)
        .map((s) => {
          const r = rowOf(0, s, undefined, []);
          return [
            Math.round(s.tMs / 1000),
            Math.round(s.rssMB * 10) / 10,
            s.fds,
            r.sessions,
            r.captured,
            r.replayed,
            r.lost,
            r.inFlight,
          ];
        }),
      files,
    };
    writeResult(result);
    return result;
  });
}

/** The summary printed at the end and written to soak.txt. */
export function soakSummary(r: SoakResult): string {
  const f = (x: Flatness, unit: string): string =>
    `median ${x.firstMedian.toFixed(1)} -> ${x.lastMedian.toFixed(1)} ${unit} (${((x.ratio - 1) * 100).toFixed(1)}%), min ${x.min.toFixed(1)} max ${x.max.toFixed(1)}`;
  const explainedBy = new Map<string, number>();
  for (const d of r.losses.explained) {
    const k = `${d.reason} by ${d.by.split('@')[0]}`;
    explainedBy.set(k, (explainedBy.get(k) ?? 0) + d.count);
  }
  return [
    soakTable(r.rows),
    '',
    `warm-up ${r.warmupMinutes} min; minutes completed ${r.minutesCompleted} of ${r.minutes}`,
    `RSS after warm-up: ${f(r.rss, 'MiB')}`,
    `fds after warm-up: ${f(r.fds, '')}`,
    `disturbances: ${r.events.map((e) => `${(e.startMs / 1000).toFixed(0)}s ${e.kind} ${e.detail.replace(/ \(.*\)$/, '')}`).join('; ') || 'none'}`,
    `final accounting: ${JSON.stringify(r.accounting)}`,
    `access logs since tcpcopy started: online ${r.totals.online}, target ${r.totals.target} (-n 2: ${(r.totals.target / Math.max(1, 2 * r.totals.online)).toFixed(4)} of 2x online)`,
    `losses explained: ${[...explainedBy].map(([k, v]) => `${v} ${k}`).join(', ') || 'none'}; unexplained: ${r.losses.unexplained.length === 0 ? 'none' : r.losses.unexplained.map((d) => `${d.count} ${d.reason}`).join(', ')}`,
    `load errors: ${r.loadErrors.length === 0 ? 'none' : r.loadErrors.slice(0, 10).join('; ')}`,
    r.passed ? 'soak: PASS' : `soak: FAIL\n  ${r.failures.join('\n  ')}`,
  ].join('\n');
}

function writeResult(r: SoakResult): void {
  fs.writeFileSync(r.files.json, JSON.stringify(r, null, 1) + '\n');
  fs.writeFileSync(r.files.table, soakSummary(r) + '\n');
  fs.writeFileSync(
    r.files.chart,
    soakChart(
      r.rows,
      r.events,
      r.warmupMinutes,
      `tcpcopy soak, ${r.minutesCompleted} min, -n 2: ${r.passed ? 'PASS' : 'FAIL'}`,
    ),
  );
}
