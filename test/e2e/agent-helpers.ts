/** Helpers of the agent end-to-end tests: a replayer on the replay host, agents on the online hosts. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Lab } from '../../src/lab/lab';
import type { HostName } from '../../src/lab/names';
import type { LabProcess } from '../../src/lab/process';
import { TCPCOPY, type TcpcopyJsonReport } from './replay-helpers';

export const REPLAY_IP = '198.18.0.5';
export const TARGET_IP = '198.18.0.2';
export const INTERCEPT_IP = '198.18.0.3';

/** The replayer's JSON report, with the stream sources. */
export interface ReplayerReport extends TcpcopyJsonReport {
  capture?: {
    frames: number;
    dropped: number;
    agentDropped?: number;
    sources?: Array<{
      slot: number;
      kind: string;
      name: string;
      packets: number;
      agentDropped: number;
      droppedPackets: number;
      clockSkewMs: number | null;
    }>;
  };
}

async function waitFor(p: LabProcess, re: RegExp, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!re.test(p.stderr + p.stdout)) {
    if (!p.running) throw new Error(`${what} exited: ${p.stderr}${p.stdout}`);
    if (Date.now() > deadline) throw new Error(`${what} did not start: ${p.stderr}${p.stdout}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A replayer (`tcpcopy -i tcp://`) running on the replay host. */
export interface Replayer {
  proc: LabProcess;
  /** Stops it (SIGINT) and reads its JSON report. */
  stop(): Promise<{ code: number | null; report: ReplayerReport | null; stderr: string }>;
}

/** Starts a replayer listening on REPLAY_IP:port, replaying port 80 to the target's 8080 through intercept. */
export async function startReplayer(lab: Lab, port: number, extra: string[] = []): Promise<Replayer> {
  const reportFile = path.join(lab.dir, `replayer-${port}-${Date.now()}.json`);
  const proc = lab.spawn(
    'replay',
    [
      process.execPath,
      TCPCOPY,
      '-i',
      `tcp://${REPLAY_IP}:${port}`,
      '-x',
      `80-${TARGET_IP}:8080`,
      '-s',
      INTERCEPT_IP,
      '-L',
      '--status',
      '0',
      '--report',
      `json:${reportFile}`,
      ...extra,
    ],
    { stopSignal: 'SIGINT', graceMs: 30_000 },
  );
  await waitFor(proc, /listening for agents/, 'replayer');
  return {
    proc,
    async stop() {
      const e = await proc.stop('SIGINT', 30_000);
      let report: ReplayerReport | null = null;
      try {
        report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as ReplayerReport;
      } catch {
        report = null;
      }
      return { code: e.code, report, stderr: proc.stderr };
    },
  };
}

/** An agent on an online host. */
export interface AgentProc {
  proc: LabProcess;
  /** Peak RSS (VmHWM, MiB) and CPU seconds (user+system) so far, from /proc. */
  figures(): { peakRssMB: number; cpuS: number };
  stop(): Promise<string>;
}

/** Starts `tcpcopy agent` on an online host's client-facing device, streaming port 80 to `to`. */
export async function startAgent(lab: Lab, host: HostName, to: string[], extra: string[] = []): Promise<AgentProc> {
  const dev = lab.host(host).clientDev ?? lab.host(host).dev;
  const proc = lab.spawn(
    host,
    [process.execPath, TCPCOPY, 'agent', '-i', dev, '-x', '80', '--to', to.join(','), '--status', '1', ...extra],
    { stopSignal: 'SIGTERM', graceMs: 5000 },
  );
  const n = to.length;
  await waitFor(proc, new RegExp(`capturing on`), 'agent');
  const deadline = Date.now() + 10_000;
  while ((proc.stderr.match(/streaming to replayer/g) ?? []).length < n && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20));
  return {
    proc,
    figures: () => procFigures(proc.pid),
    async stop() {
      await proc.stop('SIGTERM', 5000);
      return proc.stderr;
    },
  };
}

/** Peak RSS (MiB) and CPU seconds of a pid, from /proc. */
export function procFigures(pid: number): { peakRssMB: number; cpuS: number } {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { peakRssMB: hwm, cpuS: (Number(rest[11]) + Number(rest[12])) / 100 };
  } catch {
    return { peakRssMB: NaN, cpuS: NaN };
  }
}
