/**
 * The Redis rows of the lab benchmark (issue 14 part 3): redis-benchmark (every test's 8
 * connections log in with AUTH) against the online redis-server with `requirepass`, copied live
 * by tcpcopy to a redis-server on the target host, measured two ways on the same load, in
 * alternate pairs (plain, module, plain, module ...: BENCH_REPEAT pairs):
 *
 * - `plain`: plain TCP replay (no module) to a target with production's password: the captured
 *   AUTH works as it is;
 * - `module`: `--module redis --redis-auth` to a target with another, longer password: every
 *   AUTH rewritten (the stream changes length), every command framed.
 *
 * For each, a fresh tcpcopy is warmed up with a short run of the load, then measured: tcpcopy
 * and intercept CPU µs per command the target executed (every thread's run time,
 * /proc/PID/task/TID/schedstat; INFO commandstats of the benchmark's commands, before and
 * after), and fidelity (target commands / online commands). Needs root. No assertions.
 */
import * as os from 'node:os';
import { withLab, type Lab } from '../src/lab/lab';
import { redisBenchmarkArgv } from '../src/lab/redis-clients';
import type { RedisServer } from '../src/lab/servers';
import { INTERCEPT, startLiveTcpcopy } from '../test/e2e/replay-helpers';
import { secretFile } from '../test/e2e/postgres-helpers';
import { applyTargetModel, type TargetModel } from './lab';
import { cpuNsOf, cpuTicks, stealPct } from './lab-proc';

const ONLINE = { ip: '198.18.1.1', port: 6379 };
const TARGET_IP = '198.18.0.2';
const PROD_PW = 'prodpw';
/** The module row's target password: longer than production's (the AUTH changes length). */
const TARGET_PW = 'target-password-2';
const TESTS = ['set', 'get', 'incr', 'lpush', 'hset'];

/** One Redis row. */
export interface RedisRow {
  variant: 'plain' | 'module';
  model: TargetModel;
  /** Requests per redis-benchmark test (-n) and the benchmark's connections (-c). */
  requests: number;
  clients: number;
  /** Benchmark commands the online server and the target executed in the measured run. */
  online: number;
  target: number;
  fidelity: number;
  /** Online commands per second over the measured run (redis-benchmark's pace). */
  onlinePerSec: number;
  /** tcpcopy CPU µs per command the target executed. */
  tcpcopyCpuUsPerCmd: number;
  /** intercept CPU µs per command the target executed. */
  interceptCpuUsPerCmd: number;
  stealPct: number;
  moduleCounters: Record<string, number>;
  lost: Record<string, number>;
}

/** Settings of the Redis rows. */
export interface RedisBenchOptions {
  /** Requests per test (redis-benchmark -n; 5 tests). Default 20000. */
  requests?: number;
  /** Requests per test of the warm-up run. Default 2000. */
  warmRequests?: number;
  /** redis-benchmark connections. Default 8. */
  clients?: number;
  /** Pairs of rows (plain, module); the medians are reported. Default 1 (npm run bench asks 3). */
  repeat?: number;
}

async function commands(r: RedisServer): Promise<number> {
  const s = await r.commandStats();
  return TESTS.reduce((a, c) => a + (s[c] ?? 0), 0);
}

/** Polls the target's commands until they reach `want` or stand still for 2 s (bounded: 60 s). */
async function settle(target: RedisServer, want: number): Promise<void> {
  let last = -1;
  let since = Date.now();
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const n = await commands(target);
    if (n >= want) return;
    if (n !== last) {
      last = n;
      since = Date.now();
    } else if (Date.now() - since > 2000) return;
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function measure(
  lab: Lab,
  online: RedisServer,
  target: RedisServer,
  icpPid: number,
  variant: RedisRow['variant'],
  o: Required<RedisBenchOptions>,
): Promise<RedisRow> {
  const model: TargetModel = os.cpus().length >= 2 ? 'remote' : 'inline';
  const args = ['-x', `6379-${TARGET_IP}:${target.port}`, '-s', '198.18.0.3', '--secret-file', secretFile(lab)];
  if (variant === 'module') args.push('--module', 'redis', '--redis-auth', TARGET_PW);
  const tc = await startLiveTcpcopy(lab, [...args, '-i', lab.hosts.online.clientDev as string]);
  await applyTargetModel(lab, model, tc.proc.pid);
  const load = (requests: number): string[] => redisBenchmarkArgv(ONLINE, PROD_PW, { requests, clients: o.clients });
  if (o.warmRequests > 0) {
    const [ow, tw] = [await commands(online), await commands(target)];
    await lab.exec('client', load(o.warmRequests), { timeoutMs: 120_000 });
    await settle(target, tw + (await commands(online)) - ow);
  }
  const [on0, tg0] = [await commands(online), await commands(target)];
  const cpu0 = cpuNsOf(tc.proc.pid);
  const icp0 = cpuNsOf(icpPid);
  const ticks0 = cpuTicks();
  const t0 = Date.now();
  await lab.exec('client', load(o.requests), { timeoutMs: 300_000 });
  const runS = (Date.now() - t0) / 1000;
  const on1 = await commands(online);
  await settle(target, tg0 + on1 - on0);
  const cpuNs = cpuNsOf(tc.proc.pid) - cpu0;
  const icpNs = cpuNsOf(icpPid) - icp0;
  const steal = stealPct(ticks0, cpuTicks());
  const tg1 = await commands(target);
  const stopped = await tc.stop();
  const rep = stopped.report as unknown as {
    engine: { module?: { counters?: Record<string, number> } };
    accounting: { lost: Record<string, number> };
  } | null;
  const targetCmds = tg1 - tg0;
  return {
    variant,
    model,
    requests: o.requests,
    clients: o.clients,
    online: on1 - on0,
    target: targetCmds,
    fidelity: targetCmds / Math.max(1, on1 - on0),
    onlinePerSec: (on1 - on0) / runS,
    tcpcopyCpuUsPerCmd: cpuNs / 1e3 / Math.max(1, targetCmds),
    interceptCpuUsPerCmd: icpNs / 1e3 / Math.max(1, targetCmds),
    stealPct: steal,
    moduleCounters: rep?.engine.module?.counters ?? {},
    lost: rep !== null ? Object.fromEntries(Object.entries(rep.accounting.lost).filter(([, v]) => v > 0)) : {},
  };
}

/** One line per row. */
export function redisRowLine(r: RedisRow): string {
  return (
    `redis[${r.variant}, ${r.model}]: redis-benchmark -n ${r.requests} -c ${r.clients} (${TESTS.join(',')}) ` +
    `${r.onlinePerSec.toFixed(0)} cmd/s, online ${r.online} commands, target ${r.target} (${(r.fidelity * 100).toFixed(2)}%), ` +
    `tcpcopy ${r.tcpcopyCpuUsPerCmd.toFixed(1)} us/cmd, intercept ${r.interceptCpuUsPerCmd.toFixed(1)} us/cmd, ` +
    `steal ${r.stealPct.toFixed(1)}%, lost ${JSON.stringify(r.lost)}, module ${JSON.stringify(r.moduleCounters)}`
  );
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : ((s[(s.length - 1) >> 1] as number) + (s[s.length >> 1] as number)) / 2;
}

/** Runs the Redis rows (plain and module, alternately) and logs them with the module's cost. */
export async function runRedisBench(log: (s: string) => void, opts: RedisBenchOptions = {}): Promise<RedisRow[]> {
  const o: Required<RedisBenchOptions> = {
    requests: opts.requests ?? 20_000,
    warmRequests: opts.warmRequests ?? 2000,
    clients: opts.clients ?? 8,
    repeat: Math.max(1, opts.repeat ?? 1),
  };
  return withLab({ prefix: 'tcs9', clientAddresses: 2 }, async (lab) => {
    const [online, same, other] = await Promise.all([
      lab.startRedis('online', { port: 6379, requirepass: PROD_PW }),
      lab.startRedis('target', { port: 6379, requirepass: PROD_PW }),
      lab.startRedis('target', { port: 6380, requirepass: TARGET_PW }),
    ]);
    const icp = lab.spawn('assistant', [
      process.execPath,
      INTERCEPT,
      '-i',
      lab.hosts.assistant.dev,
      '-F',
      'tcp and (src port 6379 or src port 6380)',
      '--secret-file',
      secretFile(lab),
    ]);
    await icp.waitFor(/listening on/, 60_000);
    const rows: RedisRow[] = [];
    for (let i = 0; i < o.repeat; i++) {
      for (const variant of ['plain', 'module'] as const) {
        const row = await measure(lab, online, variant === 'plain' ? same : other, icp.pid, variant, o);
        log(redisRowLine(row));
        rows.push(row);
      }
    }
    const med = (v: RedisRow['variant'], f: (r: RedisRow) => number): number =>
      median(rows.filter((r) => r.variant === v).map(f));
    const p = med('plain', (r) => r.tcpcopyCpuUsPerCmd);
    const m = med('module', (r) => r.tcpcopyCpuUsPerCmd);
    log(
      `redis: the module costs ${(m - p).toFixed(1)} us of tcpcopy CPU per command (${((m / p - 1) * 100).toFixed(0)}% over plain TCP replay; ` +
        `medians of ${o.repeat} pair${o.repeat === 1 ? '' : 's'}), intercept ${(med('module', (r) => r.interceptCpuUsPerCmd) - med('plain', (r) => r.interceptCpuUsPerCmd)).toFixed(1)} us (reply payloads over channel v2)`,
    );
    return rows;
  });
}
