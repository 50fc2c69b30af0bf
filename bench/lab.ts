/**
 * The lab benchmark (issue 7): HTTP load against nginx on online, a live tcpcopy in the online
 * namespace copying it to nginx on target, intercept on the assistant. For each offered load
 * (keep-alive and one request per connection) a fresh tcpcopy is started, warmed up with
 * `warmSeconds` of the same load (V8 compiles the hot path in the first seconds; a production
 * tcpcopy runs for hours), then measured over `seconds`:
 * tcpcopy CPU µs per replayed request in that window (every thread's exact run time from
 * /proc/PID/task/STAT/schedstat, divided by the requests the target logged in the window),
 * the same over tcpcopy's whole life (start-up and warm-up included), intercept CPU µs per
 * reply, peak RSS of each, replay lag p50/p99 (target $msec minus online $msec, requests matched
 * by client address+port and order on the connection) and fidelity (target / online requests).
 *
 * Two models of where the target's receive path runs ({@link TargetModel}): on veth the
 * receiver's whole stack (bridge, target TCP, nginx wake-up) runs inside the sender's
 * sendmmsg call, so it is charged to tcpcopy, which never happens in a deployment where the
 * target is another machine. 'remote' pins tcpcopy to CPU 0 and steers the switch's receive
 * processing of everything online sends (RPS) to CPU 1, so tcpcopy pays what a NIC transmit
 * costs; 'inline' leaves it as veth does. Needs root.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { withLab, type Lab } from '../src/lab/lab';
import type { AccessRecord } from '../src/lab/access-log';
import type { LoadOptions } from '../src/lab/loadgen';
import type { NginxServer } from '../src/lab/servers';
import { startIntercept, startLiveTcpcopy, waitSettled, accessLogLines } from '../test/e2e/replay-helpers';
import { percentile } from '../src/lab/percentile';
import { cpuNsOf, cpuTicks, peakRssMB, stealPct, waitQuiet } from './lab-proc';

/** One offered load. */
export interface LabLoad {
  /** Keep-alive connections (true) or one request per connection. */
  keepAlive: boolean;
  /** Offered requests per second. */
  rate: number;
  /** Connections in parallel. */
  concurrency: number;
}

/** Where the target's receive path runs: on another CPU, as on another machine, or inline in tcpcopy's send call (veth). */
export type TargetModel = 'remote' | 'inline';

/** One row of the lab table. */
export interface LabRow {
  model: TargetModel;
  /** The replayed traffic's IP family (part `lab6`: IPv6). */
  family: 'ipv4' | 'ipv6';
  mode: 'keepalive' | 'short';
  offeredRate: number;
  sentRate: number;
  /** Requests in the measured window: online's access log, target's access log. */
  online: number;
  target: number;
  fidelity: number;
  /** tcpcopy CPU µs per replayed request in the measured window (warm). */
  tcpcopyCpuUsPerRequest: number;
  /** tcpcopy CPU µs per replayed request over its whole life (start-up, warm-up, window, exit). */
  tcpcopyCpuUsPerRequestWhole: number;
  tcpcopyPeakRssMB: number;
  /** intercept CPU µs per reply in the window (replies in the window estimated from tcpcopy's totals). */
  interceptCpuUsPerReply: number;
  interceptPeakRssMB: number;
  lagP50Ms: number;
  lagP99Ms: number;
  /** Steal time during the window, % of the machine's CPU time: above a few %, the row is noise. */
  stealPct: number;
  matched: number;
  /** tcpcopy's totals over its life: requests captured and replayed, ring drops, losses by reason. */
  captured: number;
  replayed: number;
  kernelDropped: number;
  lost: Record<string, number>;
  /** With --compare: exchanges, compared, different, skipped (all reasons), peak MiB held of the memory cap. */
  compare?: { exchanges: number; compared: number; different: number; skipped: number; peakHeldMB: number };
}

/** Parses a model list such as `remote,inline`. Throws on an unknown name. */
export function parseModels(text: string): TargetModel[] {
  return text
    .split(',')
    .filter((x) => x !== '')
    .map((m) => {
      if (m !== 'remote' && m !== 'inline')
        throw new Error(`target model ${JSON.stringify(m)}: expected remote or inline`);
      return m;
    });
}

/** Benchmark settings. */
export interface LabBenchOptions {
  /** Loads of the table. Default {@link DEFAULT_LOADS}. */
  loads?: readonly LabLoad[];
  /** Measured seconds per load. Default 10. */
  seconds?: number;
  /** Warm-up seconds per load before the window (same load). Default 5. */
  warmSeconds?: number;
  /** Target models, each a full table. Default ['remote', 'inline'] (only 'inline' on one CPU). */
  models?: readonly TargetModel[];
  /** Measurements per load; the row with the median tcpcopy CPU is kept (a VM's steal time makes single runs noisy). Default 1. */
  repeat?: number;
  /** Extra tcpcopy arguments (after {@link BENCH_TCPCOPY_ARGS}), to compare a setting. Default none. */
  tcpcopyArgs?: readonly string[];
  /** Extra intercept arguments. Default none. */
  interceptArgs?: readonly string[];
  /**
   * IPv6 (issue 16, part `lab6`): a dual-stack lab, the load from the IPv6 client addresses to
   * http://[2001:2:0:1::1]/, tcpcopy `-x 80-[2001:2::2]:8080` over channel v2 (a generated
   * `--secret-file` on both sides), so the rows compare with the IPv4 table. Default false.
   */
  ipv6?: boolean;
  /** Node options for tcpcopy (`node OPTIONS tcpcopy-main.js ...`). Default none. */
  nodeArgs?: readonly string[];
  /** A/B: steal time (%) above which a pair counts as measuring the hypervisor, not tcpcopy. Default 3. */
  maxStealPct?: number;
}

/** A variant of tcpcopy's command line, for {@link runLabAb}. */
export interface LabVariant {
  /** Extra tcpcopy arguments. */
  tcpcopyArgs: readonly string[];
  /** Node options. */
  nodeArgs: readonly string[];
  /** Another build's tcpcopy-main.js (a checkout of the change to compare); default this build's. */
  main?: string;
}

/** One load of an A/B comparison: the paired rows and the ratios B/A. */
export interface LabAbResult {
  load: LabLoad;
  model: TargetModel;
  a: LabVariant;
  b: LabVariant;
  rowsA: LabRow[];
  rowsB: LabRow[];
  /** Per pair, B's tcpcopy CPU per request / A's. */
  cpuRatios: number[];
  /** Median of cpuRatios (below 1: B spends less). */
  cpuRatioMedian: number;
  /** Pairs whose two runs both had steal time <= maxStealPct (the others measured the hypervisor). */
  quietPairs: number[];
  /** Median of cpuRatios over the quiet pairs (NaN when none). */
  cpuRatioMedianQuiet: number;
  /** Steal limit of a quiet pair, % (BENCH_MAX_STEAL, default 3). */
  maxStealPct: number;
  /** Per pair, B's lag p99 - A's, ms. */
  lagP99Deltas: number[];
}

/**
 * Parses a load list such as `ka:2000,short:4000` (mode `ka` or `short`, offered requests/s;
 * concurrency 32 for keep-alive, 16 for short, as in {@link DEFAULT_LOADS}). Throws on a bad item.
 */
export function parseLoads(text: string): LabLoad[] {
  return text
    .split(',')
    .filter((x) => x !== '')
    .map((item) => {
      const m = /^(ka|short):(\d+)$/.exec(item.trim());
      if (m === null) throw new Error(`load ${JSON.stringify(item)}: expected ka:RATE or short:RATE`);
      const keepAlive = m[1] === 'ka';
      return { keepAlive, rate: Number(m[2]), concurrency: keepAlive ? 32 : 16 };
    });
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

/** The load generator's options for one offered load lasting `seconds`; `v6`: from these IPv6 client addresses. */
export function loadOptions(l: LabLoad, seconds: number, v6: readonly string[] | null = null): LoadOptions {
  return {
    url: v6 !== null ? 'http://[2001:2:0:1::1]:80/' : 'http://198.18.1.1:80/',
    ...(v6 !== null ? { localAddresses: v6 } : {}),
    requests: Math.round(l.rate * seconds),
    durationMs: seconds * 1000,
    rate: l.rate,
    concurrency: l.concurrency,
    keepAlive: l.keepAlive,
    paths: ['/', '/bytes/100', '/bytes/1000'],
  };
}

/**
 * Puts tcpcopy (every thread of `pid`) and the switch's receive processing of online's packets
 * where `model` says. 'remote' needs two CPUs.
 */
export async function applyTargetModel(lab: Lab, model: TargetModel, pid: number): Promise<void> {
  const n = os.cpus().length;
  const rps = `/sys/class/net/${lab.prefix}sw-on/queues/rx-0/rps_cpus`;
  if (model === 'remote') {
    if (n < 2) throw new Error('target model "remote" needs two CPUs');
    execFileSync('taskset', ['-a', '-pc', '0', String(pid)], { stdio: 'ignore' });
    await lab.exec('switch', ['sh', '-c', `echo 2 > ${rps}`]);
  } else {
    execFileSync('taskset', ['-a', '-pc', `0-${n - 1}`, String(pid)], { stdio: 'ignore' });
    await lab.exec('switch', ['sh', '-c', `echo 0 > ${rps}`]);
  }
}

/** tcpcopy's arguments in the lab benchmark. */
export const BENCH_TCPCOPY_ARGS: readonly string[] = ['-x', '80-198.18.0.2:8080', '-s', '198.18.0.3'];

/** The same over IPv6 (add `--secret-file`: IPv6 needs channel v2). */
export const BENCH_TCPCOPY_ARGS6: readonly string[] = ['-x', '80-[2001:2::2]:8080', '-s', '198.18.0.3'];

/** Measures one load with a fresh tcpcopy; see the file comment. Also the agent part's single-host reference (bench/agent.ts). */
export async function measure(
  lab: Lab,
  online: NginxServer,
  target: NginxServer,
  icpPid: number,
  l: LabLoad,
  model: TargetModel,
  seconds: number,
  warmSeconds: number,
  v: LabVariant,
): Promise<LabRow> {
  const v6 = lab.ipv6 ? (lab.hosts.client.addresses6 ?? []) : null;
  const secret = lab.ipv6 ? ['--secret-file', path.join(lab.dir, BENCH_SECRET)] : [];
  const tc = await startLiveTcpcopy(
    lab,
    [...(v6 !== null ? BENCH_TCPCOPY_ARGS6 : BENCH_TCPCOPY_ARGS), ...secret, ...v.tcpcopyArgs],
    'online',
    ['--status', '0'],
    v.nodeArgs,
    ...(v.main !== undefined ? [v.main] : []),
  );
  const pid = tc.proc.pid;
  await applyTargetModel(lab, model, pid);
  if (warmSeconds > 0) {
    const o0 = accessLogLines(online);
    const t0 = accessLogLines(target);
    await lab.load('client', loadOptions(l, warmSeconds, v6));
    await waitSettled(() => accessLogLines(target) - t0, accessLogLines(online) - o0, 10_000, 500);
  }
  const om = accessLogLines(online);
  const tm = accessLogLines(target);
  const cpu0 = cpuNsOf(pid);
  const icp0 = cpuNsOf(icpPid);
  const ticks0 = cpuTicks();
  const sum = await lab.load('client', loadOptions(l, seconds, v6));
  const onlineN = accessLogLines(online) - om;
  await waitSettled(() => accessLogLines(target) - tm, onlineN, 15_000, 500);
  const steal = stealPct(ticks0, cpuTicks());
  const cpuNs = cpuNsOf(pid) - cpu0;
  const icpNs = cpuNsOf(icpPid) - icp0;
  const tcRss = peakRssMB(pid);
  const r = await tc.stop();
  const onRecs = online.readLog().records.slice(om);
  const tgRecs = target.readLog().records.slice(tm);
  const lags = matchLags(onRecs, tgRecs);
  const rep = r.report;
  const replayed = rep?.engine.requestsReplayed ?? 0;
  const whole = rep !== null ? rep.process.cpuUserS + rep.process.cpuSystemS : NaN;
  const replies = rep?.engine.replies ?? 0;
  const windowReplies = replayed > 0 ? (replies * tgRecs.length) / replayed : 0;
  return {
    model,
    family: v6 !== null ? 'ipv6' : 'ipv4',
    mode: l.keepAlive ? 'keepalive' : 'short',
    offeredRate: l.rate,
    sentRate: Math.round(sum.requestsPerSec),
    online: onRecs.length,
    target: tgRecs.length,
    fidelity: tgRecs.length / Math.max(1, onRecs.length),
    tcpcopyCpuUsPerRequest: cpuNs / 1e3 / Math.max(1, tgRecs.length),
    tcpcopyCpuUsPerRequestWhole: (whole * 1e6) / Math.max(1, replayed),
    tcpcopyPeakRssMB: rep?.process.maxRssMB ?? tcRss,
    interceptCpuUsPerReply: icpNs / 1e3 / Math.max(1, windowReplies),
    interceptPeakRssMB: peakRssMB(icpPid),
    lagP50Ms: percentile(lags, 50),
    lagP99Ms: percentile(lags, 99),
    stealPct: steal,
    matched: lags.length,
    captured: rep?.engine.requestsCaptured ?? 0,
    replayed,
    kernelDropped: rep?.capture?.dropped ?? NaN,
    lost: rep !== null ? Object.fromEntries(Object.entries(rep.engine.requestsLost).filter(([, v]) => v > 0)) : {},
    ...(rep?.compare != null
      ? {
          compare: {
            exchanges: rep.compare.totals.exchanges,
            compared: rep.compare.totals.compared,
            different: rep.compare.totals.different,
            skipped: Object.values(rep.compare.totals.skipped).reduce((a, b) => a + b, 0),
            peakHeldMB: (rep.compare.memory?.peakHeldBytes ?? 0) / 1048576,
          },
        }
      : {}),
  };
}

/** One line per row, for the progress log. */
export function rowLine(row: LabRow): string {
  return (
    `lab[${row.model}${row.family === 'ipv6' ? ', IPv6' : ''}]: ${row.mode} ${row.offeredRate}/s: sent ${row.sentRate}/s, online ${row.online}, target ${row.target} (${(row.fidelity * 100).toFixed(2)}%), ` +
    `tcpcopy ${row.tcpcopyCpuUsPerRequest.toFixed(1)} us/req warm (${row.tcpcopyCpuUsPerRequestWhole.toFixed(1)} over its life), rss ${row.tcpcopyPeakRssMB.toFixed(0)} MiB, ` +
    `intercept ${row.interceptCpuUsPerReply.toFixed(1)} us/reply, lag p50 ${row.lagP50Ms} ms p99 ${row.lagP99Ms} ms, steal ${row.stealPct.toFixed(1)}%, ` +
    `tcpcopy captured ${row.captured} replayed ${row.replayed} kernel-dropped ${row.kernelDropped} lost ${JSON.stringify(row.lost)}` +
    (row.compare !== undefined
      ? `, compare: ${row.compare.exchanges} exchanges, ${row.compare.compared} compared, ${row.compare.different} different, ${row.compare.skipped} skipped, peak held ${row.compare.peakHeldMB.toFixed(1)} MiB`
      : '')
  );
}

/** The bench lab: nginx on online (port 80) and target (8080), intercept on the assistant. */
interface BenchLab {
  lab: Lab;
  online: NginxServer;
  target: NginxServer;
  icp: { pid: number };
}

/** File name (in the lab directory) of the channel v2 secret of an IPv6 bench lab. */
const BENCH_SECRET = 'bench.secret';

/** Builds the bench lab under `prefix` (dual stack with `opts.ipv6`), runs `fn` in it and tears it down. */
function withBenchLab<T>(prefix: string, opts: LabBenchOptions, fn: (b: BenchLab) => Promise<T>): Promise<T> {
  const v6 = opts.ipv6 === true;
  return withLab({ prefix, clientAddresses: 50, ipv6: v6 }, async (lab) => {
    const online = await lab.startNginx('online', { port: 80 });
    const target = await lab.startNginx('target', { port: 8080 });
    const secret = path.join(lab.dir, BENCH_SECRET);
    if (v6) writeFileSync(secret, 'the IPv6 lab benchmark shared secret\n');
    const icp = await startIntercept(lab, [...(v6 ? ['--secret-file', secret] : []), ...(opts.interceptArgs ?? [])]);
    return fn({ lab, online, target, icp });
  });
}

/** Runs the lab benchmark table; `log` gets progress lines. */
export async function runLabBench(log: (s: string) => void, opts: LabBenchOptions = {}): Promise<LabRow[]> {
  const loads = opts.loads ?? DEFAULT_LOADS;
  const seconds = opts.seconds ?? 10;
  const warmSeconds = opts.warmSeconds ?? 5;
  const repeat = Math.max(1, Math.floor(opts.repeat ?? 1));
  const models = opts.models ?? (os.cpus().length >= 2 ? ['remote', 'inline'] : ['inline']);
  return withBenchLab(opts.ipv6 === true ? 'tcs6' : 'tcs3', opts, async ({ lab, online, target, icp }) => {
    const rows: LabRow[] = [];
    for (const model of models) {
      for (const l of loads) {
        const tries: LabRow[] = [];
        for (let i = 0; i < repeat; i++) {
          const r = await measure(lab, online, target, icp.pid, l, model, seconds, warmSeconds, {
            tcpcopyArgs: opts.tcpcopyArgs ?? [],
            nodeArgs: opts.nodeArgs ?? [],
          });
          if (repeat > 1) log(`  (${i + 1}/${repeat}) ${rowLine(r)}`);
          tries.push(r);
        }
        tries.sort((a, b) => a.tcpcopyCpuUsPerRequest - b.tcpcopyCpuUsPerRequest);
        const row = tries[(tries.length - 1) >> 1] as LabRow;
        rows.push(row);
        log(rowLine(row));
      }
    }
    return rows;
  });
}

/**
 * Paired comparison of two tcpcopy command lines (issue 7: single runs on a VM differ by
 * 10-25%, so a change is judged on pairs measured back to back): for each load, `repeat` pairs,
 * the order alternating (AB, BA, AB...) so that drift cancels; reports B/A per pair and the median.
 */
export async function runLabAb(
  log: (s: string) => void,
  a: LabVariant,
  b: LabVariant,
  opts: LabBenchOptions = {},
): Promise<LabAbResult[]> {
  const loads = opts.loads ?? DEFAULT_LOADS;
  const seconds = opts.seconds ?? 10;
  const warmSeconds = opts.warmSeconds ?? 5;
  const pairs = Math.max(1, Math.floor(opts.repeat ?? 3));
  const models = opts.models ?? (os.cpus().length >= 2 ? ['remote'] : ['inline']);
  const maxStealPct = opts.maxStealPct ?? 3;
  return withBenchLab('tcs4', opts, async ({ lab, online, target, icp }) => {
    const out: LabAbResult[] = [];
    for (const model of models) {
      for (const l of loads) {
        const rowsA: LabRow[] = [];
        const rowsB: LabRow[] = [];
        for (let i = 0; i < pairs; i++) {
          // start each pair when the VM is quiet (up to a minute's wait): steal inflates both CPU and lag
          const steal = await waitQuiet(maxStealPct, 60_000);
          if (steal > maxStealPct)
            log(`  (pair ${i + 1}/${pairs}: steal still ${steal.toFixed(1)}% after a minute; measuring anyway)`);
          for (const which of i % 2 === 0 ? ['A', 'B'] : ['B', 'A']) {
            const r = await measure(
              lab,
              online,
              target,
              icp.pid,
              l,
              model,
              seconds,
              warmSeconds,
              which === 'A' ? a : b,
            );
            (which === 'A' ? rowsA : rowsB).push(r);
            log(`  (pair ${i + 1}/${pairs} ${which}) ${rowLine(r)}`);
          }
        }
        const cpuRatios = rowsA.map((ra, i) => (rowsB[i] as LabRow).tcpcopyCpuUsPerRequest / ra.tcpcopyCpuUsPerRequest);
        const lagP99Deltas = rowsA.map((ra, i) => (rowsB[i] as LabRow).lagP99Ms - ra.lagP99Ms);
        const sorted = [...cpuRatios].sort((x, y) => x - y);
        const quietPairs = rowsA
          .map((_, i) => i)
          .filter((i) => Math.max((rowsA[i] as LabRow).stealPct, (rowsB[i] as LabRow).stealPct) <= maxStealPct);
        const quiet = quietPairs.map((i) => cpuRatios[i] as number).sort((x, y) => x - y);
        const res: LabAbResult = {
          load: l,
          model,
          a,
          b,
          rowsA,
          rowsB,
          cpuRatios,
          cpuRatioMedian: percentile(sorted, 50),
          lagP99Deltas,
          quietPairs,
          cpuRatioMedianQuiet: quiet.length > 0 ? percentile(quiet, 50) : NaN,
          maxStealPct,
        };
        out.push(res);
        log(abLine(res));
      }
    }
    return out;
  });
}

/** One line per compared load. */
export function abLine(r: LabAbResult): string {
  const mode = r.load.keepAlive ? 'keepalive' : 'short';
  const med = (xs: number[]): number =>
    percentile(
      [...xs].sort((x, y) => x - y),
      50,
    );
  const cpuA = med(r.rowsA.map((x) => x.tcpcopyCpuUsPerRequest));
  const cpuB = med(r.rowsB.map((x) => x.tcpcopyCpuUsPerRequest));
  const pairs = r.cpuRatios.map((x, i) => `${x.toFixed(2)}${r.quietPairs.includes(i) ? '' : '*'}`).join(' ');
  const quiet =
    r.quietPairs.length > 0
      ? `${r.cpuRatioMedianQuiet.toFixed(2)} over ${r.quietPairs.length} quiet pairs`
      : 'no quiet pair';
  return (
    `ab[${r.model}]: ${mode} ${r.load.rate}/s: tcpcopy us/req A ${cpuA.toFixed(1)} B ${cpuB.toFixed(1)}; B/A per pair ${pairs} ` +
    `(median ${r.cpuRatioMedian.toFixed(2)}; ${quiet}; * = steal over ${r.maxStealPct}%); lag p99 A ${med(r.rowsA.map((x) => x.lagP99Ms))} B ${med(r.rowsB.map((x) => x.lagP99Ms))} ms; ` +
    `fidelity A ${(Math.min(...r.rowsA.map((x) => x.fidelity)) * 100).toFixed(2)}% B ${(Math.min(...r.rowsB.map((x) => x.fidelity)) * 100).toFixed(2)}% (worst)`
  );
}

/** The table printed at the end. */
export function labTable(rows: readonly LabRow[]): string {
  const head = [
    'target',
    'mode',
    'offered/s',
    'sent/s',
    'online',
    'target',
    'fidelity',
    'tcpcopy us/req',
    '(life)',
    'tcpcopy RSS MiB',
    'intercept us/reply',
    'intercept RSS MiB',
    'lag p50 ms',
    'lag p99 ms',
    'steal %',
  ];
  const lines = rows.map((r) => [
    r.family === 'ipv6' ? `${r.model} IPv6` : r.model,
    r.mode,
    String(r.offeredRate),
    String(r.sentRate),
    String(r.online),
    String(r.target),
    `${(r.fidelity * 100).toFixed(2)}%`,
    r.tcpcopyCpuUsPerRequest.toFixed(1),
    r.tcpcopyCpuUsPerRequestWhole.toFixed(1),
    r.tcpcopyPeakRssMB.toFixed(0),
    r.interceptCpuUsPerReply.toFixed(1),
    r.interceptPeakRssMB.toFixed(0),
    String(r.lagP50Ms),
    String(r.lagP99Ms),
    r.stealPct.toFixed(1),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const fmt = (cells: string[]): string => cells.map((c, i) => c.padStart(w[i] as number)).join('  ');
  return [fmt(head), ...lines.map(fmt)].join('\n');
}
