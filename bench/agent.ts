/**
 * The `agent` part of `npm run bench` (issue 17): the split deployment in the lab. tcpcopy
 * agent on the online host streams to a replayer on the replay host (198.18.0.5), which
 * replays to the target through intercept. At the lab part's loads (keep-alive 2k/5k/10k,
 * short 1k/2k/4k requests/s), after a warm-up, over a measured window: the agent's CPU per
 * request (every thread's schedstat run time / requests the target logged) and peak RSS on the
 * online host, the replayer's CPU per request and peak RSS, fidelity (target / online access
 * log lines) and replay lag (target $msec - online $msec, matched by client address, port and
 * order).
 *
 * The agent is measured as the lab part measures the single-host tcpcopy it replaces: pinned
 * to CPU 0 with the switch's receive processing of the online host's packets on CPU 1 (target
 * model `remote`: the replayer, like the target, is another machine; BENCH_MODELS picks the
 * model, its first one), and by default beside that tcpcopy in the same lab and the same
 * minutes: each load is measured in BENCH_REPEAT pairs (default 1; the order alternates, each
 * pair starts when the VM's steal time is low), a pair being one single-host tcpcopy run
 * (bench/lab.ts measure) and one agent run, and the row reports agent / tcpcopy CPU per
 * request of its pair (the median pair by that ratio). BENCH_AGENT_PAIRED=0 leaves tcpcopy out.
 * BENCH_AGENT_ARGS adds agent arguments (e.g. `--capture-delay 20`); BENCH_AGENT_B_MAIN
 * (another build's tcpcopy-main.js) and BENCH_AGENT_B_ARGS add an agent B to every pair, for
 * A/B comparisons of the agent.
 */
import * as os from 'node:os';
import type { Lab } from '../src/lab/lab';
import { withLab } from '../src/lab/lab';
import { percentile } from '../src/lab/percentile';
import type { NginxServer } from '../src/lab/servers';
import { accessLogLines, startIntercept, TCPCOPY, waitSettled } from '../test/e2e/replay-helpers';
import { REPLAY_IP, startReplayer } from '../test/e2e/agent-helpers';
import { cpuNsOf, cpuTicks, peakRssMB, stealPct, waitQuiet } from './lab-proc';
import {
  applyTargetModel,
  DEFAULT_LOADS,
  type LabBenchOptions,
  type LabLoad,
  type LabRow,
  loadOptions,
  matchLags,
  measure,
  type TargetModel,
} from './lab';

/** One row of the agent table. */
export interface AgentRow {
  mode: 'keepalive' | 'short';
  offeredRate: number;
  sentRate: number;
  /** Which agent: 'A' (this build) or 'B' (BENCH_AGENT_B_MAIN). */
  variant: 'A' | 'B';
  model: TargetModel;
  online: number;
  target: number;
  fidelity: number;
  /** Agent CPU µs per request in the window (warm), and its peak RSS. */
  agentCpuUsPerRequest: number;
  agentPeakRssMB: number;
  /** Replayer CPU µs per request in the window, and its peak RSS. */
  replayerCpuUsPerRequest: number;
  replayerPeakRssMB: number;
  lagP50Ms: number;
  lagP99Ms: number;
  stealPct: number;
  /** What the replayer counted as lost because the agent dropped it. */
  agentDropped: number;
  /** The single-host tcpcopy's CPU µs per request in the same pair (NaN when not paired). */
  tcpcopyCpuUsPerRequest: number;
  /** agentCpuUsPerRequest / tcpcopyCpuUsPerRequest (the done-means: <= 0.2). */
  cpuRatio: number;
  /** Every pair's ratio (the row is the median one). */
  cpuRatios: number[];
}

/** The agent's settings in the bench. */
export interface AgentBenchOptions extends LabBenchOptions {
  /** Measure the single-host tcpcopy in every pair. Default true (BENCH_AGENT_PAIRED=0: false). */
  paired?: boolean;
  /** Extra agent arguments (BENCH_AGENT_ARGS). */
  agentArgs?: readonly string[];
  /** Agent B: another build's tcpcopy-main.js (BENCH_AGENT_B_MAIN) and its extra arguments (BENCH_AGENT_B_ARGS). */
  agentB?: { main: string; args: readonly string[] };
}

interface AgentVariant {
  name: 'A' | 'B';
  main: string;
  args: readonly string[];
}

/** Starts an agent of `main` on online's client-facing device, streaming port 80 to the replayer. */
async function spawnAgent(lab: Lab, v: AgentVariant): Promise<{ pid: number; stop(): Promise<void> }> {
  const dev = lab.host('online').clientDev ?? lab.host('online').dev;
  const proc = lab.spawn(
    'online',
    [
      process.execPath,
      v.main,
      'agent',
      '-i',
      dev,
      '-x',
      '80',
      '--to',
      `${REPLAY_IP}:36525`,
      '--status',
      '0',
      ...v.args,
    ],
    { stopSignal: 'SIGTERM', graceMs: 5000 },
  );
  const deadline = Date.now() + 15_000;
  while (!/streaming to replayer/.test(proc.stderr) || !/capturing on/.test(proc.stderr)) {
    if (!proc.running) throw new Error(`agent exited: ${proc.stderr}`);
    if (Date.now() > deadline) throw new Error(`agent did not start: ${proc.stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    pid: proc.pid,
    async stop() {
      await proc.stop('SIGTERM', 5000);
    },
  };
}

/** One agent run at load `l` (a fresh replayer and agent, warm-up, window). */
async function measureAgent(
  lab: Lab,
  online: NginxServer,
  target: NginxServer,
  l: LabLoad,
  model: TargetModel,
  seconds: number,
  warm: number,
  v: AgentVariant,
): Promise<AgentRow> {
  const rp = await startReplayer(lab, 36525);
  const ag = await spawnAgent(lab, v);
  await applyTargetModel(lab, model, ag.pid);
  if (warm > 0) {
    const o0 = accessLogLines(online);
    const t0 = accessLogLines(target);
    await lab.load('client', loadOptions(l, warm));
    await waitSettled(() => accessLogLines(target) - t0, accessLogLines(online) - o0, 10_000, 500);
  }
  const om = accessLogLines(online);
  const tm = accessLogLines(target);
  const a0 = cpuNsOf(ag.pid);
  const r0 = cpuNsOf(rp.proc.pid);
  const ticks0 = cpuTicks();
  const sum = await lab.load('client', loadOptions(l, seconds));
  const n = accessLogLines(online) - om;
  await waitSettled(() => accessLogLines(target) - tm, n, 15_000, 500);
  const steal = stealPct(ticks0, cpuTicks());
  const aNs = cpuNsOf(ag.pid) - a0;
  const rNs = cpuNsOf(rp.proc.pid) - r0;
  const aRss = peakRssMB(ag.pid);
  const rRss = peakRssMB(rp.proc.pid);
  await ag.stop();
  const r = await rp.stop();
  const onRecs = online.readLog().records.slice(om);
  const tgRecs = target.readLog().records.slice(tm);
  const lags = matchLags(onRecs, tgRecs);
  return {
    mode: l.keepAlive ? 'keepalive' : 'short',
    offeredRate: l.rate,
    sentRate: Math.round(sum.requestsPerSec),
    variant: v.name,
    model,
    online: onRecs.length,
    target: tgRecs.length,
    fidelity: tgRecs.length / Math.max(1, onRecs.length),
    agentCpuUsPerRequest: aNs / 1e3 / Math.max(1, tgRecs.length),
    agentPeakRssMB: aRss,
    replayerCpuUsPerRequest: rNs / 1e3 / Math.max(1, tgRecs.length),
    replayerPeakRssMB: r.report?.process.maxRssMB ?? rRss,
    lagP50Ms: percentile(lags, 50),
    lagP99Ms: percentile(lags, 99),
    stealPct: steal,
    agentDropped: r.report?.capture?.agentDropped ?? 0,
    tcpcopyCpuUsPerRequest: NaN,
    cpuRatio: NaN,
    cpuRatios: [],
  };
}

/** One line per row, for the progress log. */
export function agentRowLine(row: AgentRow): string {
  return (
    `agent${row.variant === 'B' ? ' B' : ''}[${row.model}]: ${row.mode} ${row.offeredRate}/s: sent ${row.sentRate}/s, online ${row.online}, target ${row.target} (${(row.fidelity * 100).toFixed(2)}%), ` +
    `agent ${row.agentCpuUsPerRequest.toFixed(2)} us/req rss ${row.agentPeakRssMB.toFixed(0)} MiB` +
    (Number.isFinite(row.cpuRatio)
      ? ` = ${row.cpuRatio.toFixed(3)} x tcpcopy's ${row.tcpcopyCpuUsPerRequest.toFixed(2)} (pairs ${row.cpuRatios.map((x) => x.toFixed(3)).join(' ')})`
      : '') +
    `, replayer ${row.replayerCpuUsPerRequest.toFixed(1)} us/req rss ${row.replayerPeakRssMB.toFixed(0)} MiB, ` +
    `lag p50 ${row.lagP50Ms} ms p99 ${row.lagP99Ms} ms, steal ${row.stealPct.toFixed(1)}%, agentDropped ${row.agentDropped}`
  );
}

/** Runs the agent table; `log` gets a line per run and per row. */
export async function runAgentBench(log: (s: string) => void, opts: AgentBenchOptions = {}): Promise<AgentRow[]> {
  const loads = opts.loads ?? DEFAULT_LOADS;
  const seconds = opts.seconds ?? 10;
  const warm = opts.warmSeconds ?? 5;
  const pairs = Math.max(1, Math.floor(opts.repeat ?? 1));
  const model: TargetModel = opts.models?.[0] ?? (os.cpus().length >= 2 ? 'remote' : 'inline');
  const paired = opts.paired !== false;
  const maxSteal = opts.maxStealPct ?? 3;
  const variants: AgentVariant[] = [
    { name: 'A', main: TCPCOPY, args: opts.agentArgs ?? [] },
    ...(opts.agentB !== undefined ? [{ name: 'B' as const, main: opts.agentB.main, args: opts.agentB.args }] : []),
  ];
  return withLab({ prefix: 'tcab', clientAddresses: 50, replayHost: true }, async (lab) => {
    const online = await lab.startNginx('online', { port: 80 });
    const target = await lab.startNginx('target', { port: 8080 });
    const icp = await startIntercept(lab, [...(opts.interceptArgs ?? [])]);
    const rows: AgentRow[] = [];
    for (const l of loads) {
      const byVariant = new Map<string, AgentRow[]>(variants.map((v) => [v.name, []]));
      for (let i = 0; i < pairs; i++) {
        if (pairs > 1 || paired) {
          const steal = await waitQuiet(maxSteal, 60_000);
          if (steal > maxSteal) log(`  (pair ${i + 1}/${pairs}: steal still ${steal.toFixed(1)}% after a minute)`);
        }
        // the order rotates from pair to pair so that a drift of the machine cancels
        const runs: Array<'tcpcopy' | AgentVariant> = [...(paired ? ['tcpcopy' as const] : []), ...variants];
        const order = runs.map((_, k) => runs[(k + i) % runs.length] as 'tcpcopy' | AgentVariant);
        let tc: LabRow | null = null;
        const got: AgentRow[] = [];
        for (const what of order) {
          if (what === 'tcpcopy') {
            tc = await measure(lab, online, target, icp.pid, l, model, seconds, warm, {
              tcpcopyArgs: [],
              nodeArgs: [],
            });
            log(
              `  (pair ${i + 1}/${pairs}) tcpcopy[${model}]: ${tc.mode} ${tc.offeredRate}/s: ${tc.tcpcopyCpuUsPerRequest.toFixed(2)} us/req, fidelity ${(tc.fidelity * 100).toFixed(2)}%, lag p99 ${tc.lagP99Ms} ms, rss ${tc.tcpcopyPeakRssMB.toFixed(0)} MiB, steal ${tc.stealPct.toFixed(1)}%`,
            );
          } else {
            got.push(await measureAgent(lab, online, target, l, model, seconds, warm, what));
          }
        }
        for (const r of got) {
          if (tc !== null) {
            r.tcpcopyCpuUsPerRequest = tc.tcpcopyCpuUsPerRequest;
            r.cpuRatio = r.agentCpuUsPerRequest / tc.tcpcopyCpuUsPerRequest;
          }
          log(`  (pair ${i + 1}/${pairs}) ${agentRowLine(r)}`);
          byVariant.get(r.variant)?.push(r);
        }
      }
      for (const v of variants) {
        const tries = byVariant.get(v.name) ?? [];
        const key = (r: AgentRow): number => (paired ? r.cpuRatio : r.agentCpuUsPerRequest);
        const sorted = [...tries].sort((a, b) => key(a) - key(b));
        const row = sorted[(sorted.length - 1) >> 1] as AgentRow;
        row.cpuRatios = tries.map((r) => r.cpuRatio);
        rows.push(row);
        log(agentRowLine(row));
      }
    }
    return rows;
  });
}

/** The agent table (markdown). */
export function agentTable(rows: readonly AgentRow[]): string {
  const lines = [
    '| load | agent | fidelity | agent µs/request | tcpcopy µs/request | agent / tcpcopy | agent peak RSS MiB | replayer µs/request | replayer RSS MiB | lag p50 / p99 ms | steal % |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows)
    lines.push(
      `| ${r.mode === 'keepalive' ? 'keep-alive' : 'short'} ${r.offeredRate / 1000}k/s | ${r.variant} | ${(r.fidelity * 100).toFixed(2)}% | ${r.agentCpuUsPerRequest.toFixed(2)} | ${r.tcpcopyCpuUsPerRequest.toFixed(2)} | ${r.cpuRatio.toFixed(3)} | ${r.agentPeakRssMB.toFixed(0)} | ${r.replayerCpuUsPerRequest.toFixed(1)} | ${r.replayerPeakRssMB.toFixed(0)} | ${r.lagP50Ms} / ${r.lagP99Ms} | ${r.stealPct.toFixed(1)} |`,
    );
  return lines.join('\n');
}
