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

/** Starts intercept on the assistant and waits until it listens. */
export async function startIntercept(lab: Lab, args: string[] = [], host: HostName = 'assistant'): Promise<LabProcess> {
  const dev = lab.hosts[host as 'assistant'].dev;
  const p = lab.spawn(host, [process.execPath, INTERCEPT, '-i', dev, '-F', 'tcp and src port 8080', ...args]);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (/listening on/.test(p.stderr + p.stdout)) return p;
    if (!p.running) throw new Error(`intercept exited: ${p.stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`intercept did not start: ${p.stderr}`);
}

/** Runs tcpcopy to completion in a host's namespace; returns its output and JSON report. */
export async function runTcpcopy(lab: Lab, args: string[], host: HostName = 'online', timeoutMs = 300_000): Promise<{ code: number; stdout: string; stderr: string; report: TcpcopyJsonReport }> {
  const reportFile = path.join(lab.dir, `report-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  const r = await lab.exec(host, [process.execPath, TCPCOPY, ...args, '--report', `json:${reportFile}`, '--status', '0'], { timeoutMs });
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
  engine: { requestsCaptured: number; requestsReplayed: number; sessionsCreated: number; outcomes: Record<string, number>; requestsLost: Record<string, number>; packetsSent: number; replies: number; retransTimeout: number; retransFast: number };
  accounting: { captured: number; replayed: number; lost: Record<string, number>; balanced: boolean };
  process: { cpuUserS: number; cpuSystemS: number; maxRssMB: number };
  durationS: number;
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
