/**
 * The lab benchmark (issue 7): HTTP load against nginx on online, a live tcpcopy in the online
 * namespace copying it to nginx on target, intercept on the assistant. For each offered load
 * (keep-alive and one request per connection, bounded to `seconds` each) it measures:
 * tcpcopy CPU µs per replayed request (its report's process CPU / requests replayed), intercept
 * CPU µs per reply (/proc CPU delta / replies tcpcopy received), peak RSS of each, replay lag
 * p50/p99 (target $msec minus online $msec, requests matched by client address+port and order
 * on the connection) and fidelity (target requests / online requests). Needs root.
 */
import * as fs from 'node:fs';
import { withLab } from '../src/lab/lab';
import type { AccessRecord } from '../src/lab/access-log';
import { cpuSecondsOf, startIntercept, startLiveTcpcopy, waitSettled, accessLogLines } from '../test/e2e/replay-helpers';

/** One offered load. */
export interface LabLoad {
  /** Keep-alive connections (true) or one request per connection. */
  keepAlive: boolean;
  /** Offered requests per second. */
  rate: number;
  /** Connections in parallel. */
  concurrency: number;
}

/** One row of the lab table. */
export interface LabRow {
  mode: 'keepalive' | 'short';
  offeredRate: number;
  sentRate: number;
  online: number;
  target: number;
  fidelity: number;
  tcpcopyCpuUsPerRequest: number;
  tcpcopyPeakRssMB: number;
  interceptCpuUsPerReply: number;
  interceptPeakRssMB: number;
  lagP50Ms: number;
  lagP99Ms: number;
  matched: number;
  /** Requests tcpcopy's engine saw (captured) and acknowledged by the target (replayed). */
  captured: number;
  replayed: number;
  /** Packets the kernel dropped from tcpcopy's capture ring (its report's capture.dropped). */
  kernelDropped: number;
  lost: Record<string, number>;
}

/** Default loads: keep-alive 2k/5k/10k req/s and short connections 1k/2k/4k req/s. */
export const DEFAULT_LOADS: readonly LabLoad[] = [
  { keepAlive: true, rate: 2000, concurrency: 32 },
  { keepAlive: true, rate: 5000, concurrency: 32 },
  { keepAlive: true, rate: 10_000, concurrency: 32 },
  { keepAlive: false, rate: 1000, concurrency: 16 },
  { keepAlive: false, rate: 2000, concurrency: 16 },
  { keepAlive: false, rate: 4000, concurrency: 16 },
];

function peakRssMB(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Lags (ms) of target records matched to online records by client addr:port and order. */
export function matchLags(online: readonly AccessRecord[], target: readonly AccessRecord[]): number[] {
  const byKey = new Map<string, number[]>();
  for (const r of online) {
    const k = `${r.remoteAddr}:${r.remotePort}`;
    const l = byKey.get(k);
    if (l === undefined) byKey.set(k, [r.msec]);
    else l.push(r.msec);
  }
  const used = new Map<string, number>();
  const lags: number[] = [];
  for (const r of target) {
    const k = `${r.remoteAddr}:${r.remotePort}`;
    const i = used.get(k) ?? 0;
    const at = byKey.get(k)?.[i];
    used.set(k, i + 1);
    if (at !== undefined) lags.push(r.msec - at);
  }
  return lags.sort((a, b) => a - b);
}

function pct(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

/** Runs the lab benchmark; `log` gets progress lines. */
export async function runLabBench(log: (s: string) => void, loads: readonly LabLoad[] = DEFAULT_LOADS, seconds = 10): Promise<LabRow[]> {
  return withLab({ prefix: 'tcs3', clientAddresses: 50 }, async (lab) => {
    const online = await lab.startNginx('online', { port: 80 });
    const target = await lab.startNginx('target', { port: 8080 });
    const icp = await startIntercept(lab);
    const rows: LabRow[] = [];
    for (const l of loads) {
      const om = accessLogLines(online);
      const tm = accessLogLines(target);
      const icpCpu0 = cpuSecondsOf(icp.pid);
      const tc = await startLiveTcpcopy(lab, ['-x', '80-198.18.0.2:8080', '-s', '198.18.0.3']);
      const sum = await lab.load('client', {
        url: 'http://198.18.1.1:80/', requests: l.rate * seconds, durationMs: seconds * 1000, rate: l.rate,
        concurrency: l.concurrency, keepAlive: l.keepAlive, paths: ['/', '/bytes/100', '/bytes/1000'],
      });
      const onlineN = accessLogLines(online) - om;
      await waitSettled(() => accessLogLines(target) - tm, onlineN, 15_000, 1000);
      const r = await tc.stop();
      const icpCpu = cpuSecondsOf(icp.pid) - icpCpu0;
      const onRecs = online.readLog().records.slice(om);
      const tgRecs = target.readLog().records.slice(tm);
      const lags = matchLags(onRecs, tgRecs);
      const rep = r.report;
      const replayed = rep?.engine.requestsReplayed ?? 0;
      const cpu = rep !== null ? rep.process.cpuUserS + rep.process.cpuSystemS : NaN;
      const row: LabRow = {
        mode: l.keepAlive ? 'keepalive' : 'short', offeredRate: l.rate, sentRate: Math.round(sum.requestsPerSec),
        online: onRecs.length, target: tgRecs.length, fidelity: tgRecs.length / Math.max(1, onRecs.length),
        tcpcopyCpuUsPerRequest: (cpu * 1e6) / Math.max(1, replayed), tcpcopyPeakRssMB: rep?.process.maxRssMB ?? NaN,
        interceptCpuUsPerReply: (icpCpu * 1e6) / Math.max(1, rep?.engine.replies ?? 0), interceptPeakRssMB: peakRssMB(icp.pid),
        lagP50Ms: pct(lags, 50), lagP99Ms: pct(lags, 99), matched: lags.length,
        captured: rep?.engine.requestsCaptured ?? 0, replayed,
        kernelDropped: (rep as unknown as { capture?: { dropped?: number } } | null)?.capture?.dropped ?? NaN,
        lost: rep !== null ? Object.fromEntries(Object.entries(rep.engine.requestsLost).filter(([, v]) => v > 0)) : {},
      };
      rows.push(row);
      log(`lab: ${row.mode} ${row.offeredRate}/s: sent ${row.sentRate}/s, online ${row.online}, target ${row.target} (${(row.fidelity * 100).toFixed(2)}%), `
        + `tcpcopy ${row.tcpcopyCpuUsPerRequest.toFixed(1)} us/req rss ${row.tcpcopyPeakRssMB.toFixed(0)} MiB, intercept ${row.interceptCpuUsPerReply.toFixed(1)} us/reply, `
        + `lag p50 ${row.lagP50Ms} ms p99 ${row.lagP99Ms} ms, `
        + `tcpcopy captured ${row.captured} replayed ${row.replayed} kernel-dropped ${row.kernelDropped} lost ${JSON.stringify(row.lost)}`);
    }
    return rows;
  });
}

/** The table printed at the end. */
export function labTable(rows: readonly LabRow[]): string {
  const head = ['mode', 'offered/s', 'sent/s', 'online', 'target', 'fidelity', 'tcpcopy us/req', 'tcpcopy RSS MiB', 'intercept us/reply', 'intercept RSS MiB', 'lag p50 ms', 'lag p99 ms'];
  const lines = rows.map((r) => [r.mode, String(r.offeredRate), String(r.sentRate), String(r.online), String(r.target), `${(r.fidelity * 100).toFixed(2)}%`,
    r.tcpcopyCpuUsPerRequest.toFixed(1), r.tcpcopyPeakRssMB.toFixed(0), r.interceptCpuUsPerReply.toFixed(1), r.interceptPeakRssMB.toFixed(0), String(r.lagP50Ms), String(r.lagP99Ms)]);
  const w = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const fmt = (cells: string[]): string => cells.map((c, i) => c.padStart(w[i] as number)).join('  ');
  return [fmt(head), ...lines.map(fmt)].join('\n');
}
