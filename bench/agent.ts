/**
 * The `agent` part of `npm run bench` (issue 17): the split deployment in the lab. tcpcopy
 * agent on the online host streams to a replayer on the replay host (198.18.0.5), which
 * replays to the target through intercept. At the lab part's loads (keep-alive 2k/5k/10k,
 * short 1k/2k/4k requests/s), after a warm-up, over a measured window: the agent's CPU per
 * request (every thread's schedstat run time / requests the target logged) and peak RSS on the
 * online host, the replayer's CPU per request and peak RSS, fidelity (target / online access
 * log lines) and replay lag (target $msec - online $msec, matched by client address, port and
 * order). Compare the agent's figure with the lab part's tcpcopy row at the same load.
 */
import { withLab } from '../src/lab/lab';
import { percentile } from '../src/lab/percentile';
import { accessLogLines, startIntercept, waitSettled } from '../test/e2e/replay-helpers';
import { REPLAY_IP, startAgent, startReplayer } from '../test/e2e/agent-helpers';
import { cpuNsOf, cpuTicks, peakRssMB, stealPct } from './lab-proc';
import { DEFAULT_LOADS, type LabBenchOptions, loadOptions, matchLags } from './lab';

/** One row of the agent table. */
export interface AgentRow {
  mode: 'keepalive' | 'short';
  offeredRate: number;
  sentRate: number;
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
}

/** Runs the agent table; `log` gets a line per row. */
export async function runAgentBench(log: (s: string) => void, opts: LabBenchOptions = {}): Promise<AgentRow[]> {
  const loads = opts.loads ?? DEFAULT_LOADS;
  const seconds = opts.seconds ?? 10;
  const warm = opts.warmSeconds ?? 5;
  return withLab({ prefix: 'tcab', clientAddresses: 50, replayHost: true }, async (lab) => {
    const online = await lab.startNginx('online', { port: 80 });
    const target = await lab.startNginx('target', { port: 8080 });
    await startIntercept(lab, [...(opts.interceptArgs ?? [])]);
    const rows: AgentRow[] = [];
    for (const l of loads) {
      const rp = await startReplayer(lab, 36525);
      const ag = await startAgent(lab, 'online', [`${REPLAY_IP}:36525`], ['--status', '0']);
      if (warm > 0) {
        const o0 = accessLogLines(online);
        const t0 = accessLogLines(target);
        await lab.load('client', loadOptions(l, warm));
        await waitSettled(() => accessLogLines(target) - t0, accessLogLines(online) - o0, 10_000, 500);
      }
      const om = accessLogLines(online);
      const tm = accessLogLines(target);
      const a0 = cpuNsOf(ag.proc.pid);
      const r0 = cpuNsOf(rp.proc.pid);
      const ticks0 = cpuTicks();
      const sum = await lab.load('client', loadOptions(l, seconds));
      const n = accessLogLines(online) - om;
      await waitSettled(() => accessLogLines(target) - tm, n, 15_000, 500);
      const steal = stealPct(ticks0, cpuTicks());
      const aNs = cpuNsOf(ag.proc.pid) - a0;
      const rNs = cpuNsOf(rp.proc.pid) - r0;
      const aRss = peakRssMB(ag.proc.pid);
      const rRss = peakRssMB(rp.proc.pid);
      await ag.stop();
      const r = await rp.stop();
      const onRecs = online.readLog().records.slice(om);
      const tgRecs = target.readLog().records.slice(tm);
      const lags = matchLags(onRecs, tgRecs);
      const row: AgentRow = {
        mode: l.keepAlive ? 'keepalive' : 'short',
        offeredRate: l.rate,
        sentRate: Math.round(sum.requestsPerSec),
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
      };
      log(
        `agent: ${row.mode} ${row.offeredRate}/s: sent ${row.sentRate}/s, online ${row.online}, target ${row.target} (${(row.fidelity * 100).toFixed(2)}%), ` +
          `agent ${row.agentCpuUsPerRequest.toFixed(2)} us/req rss ${row.agentPeakRssMB.toFixed(0)} MiB, replayer ${row.replayerCpuUsPerRequest.toFixed(1)} us/req rss ${row.replayerPeakRssMB.toFixed(0)} MiB, ` +
          `lag p50 ${row.lagP50Ms} ms p99 ${row.lagP99Ms} ms, steal ${row.stealPct.toFixed(1)}%, agentDropped ${row.agentDropped}`,
      );
      rows.push(row);
    }
    return rows;
  });
}

/** The agent table (markdown). */
export function agentTable(rows: readonly AgentRow[]): string {
  const lines = [
    '| load | fidelity | agent µs/request | agent peak RSS MiB | replayer µs/request | replayer RSS MiB | lag p50 / p99 ms | steal % |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows)
    lines.push(
      `| ${r.mode === 'keepalive' ? 'keep-alive' : 'short'} ${r.offeredRate / 1000}k/s | ${(r.fidelity * 100).toFixed(2)}% | ${r.agentCpuUsPerRequest.toFixed(2)} | ${r.agentPeakRssMB.toFixed(0)} | ${r.replayerCpuUsPerRequest.toFixed(1)} | ${r.replayerPeakRssMB.toFixed(0)} | ${r.lagP50Ms} / ${r.lagP99Ms} | ${r.stealPct.toFixed(1)} |`,
    );
  return lines.join('\n');
}
