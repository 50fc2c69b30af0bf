/**
 * `npm run bench` (issue 7): runs each benchmark in its own Node process (so memory figures
 * are not polluted by the previous one) and appends one JSON object per run to
 * bench/results/<date>-<git short hash>.json (one object per line). No assertions.
 *
 *   node --expose-gc dist/bench/run.js [--lab | --no-lab] [--only engine,offline,memory,platform,lab,lab6,mysql,postgres,redis,max,latency,latency-ab,agent,ab]
 *
 * Parts: engine (packets/s through ReplayEngine), offline (runner's offline path on a
 * synthesized 100k-session capture), memory (100,000 open sessions, target answering and
 * silent), platform (CPU per wake-up of a Node process: timer, datagram, capture ring), lab
 * (live tcpcopy + intercept + nginx in the lab, warm tcpcopy, both target models; by default
 * only when root), lab6 (the lab table over IPv6 in a dual-stack lab, channel v2, the remote model;
 * with lab), mysql (sysbench oltp_read_write copied live to MariaDB: tcpcopy CPU per replayed
 * statement with --module mysql and with plain TCP replay of the same load, bench/mysql.ts; with
 * lab), postgres (pgbench -M prepared at BENCH_PG_TPS transactions/s, default 200, copied live to
 * PostgreSQL: fidelity and tcpcopy CPU per replayed transaction, plain TCP replay and --module
 * postgres on a trust role, and --module postgres with SCRAM logins, bench/postgres.ts; with lab), redis
 * (redis-benchmark with requirepass, BENCH_REDIS_REQUESTS per test, default 20000, copied live to
 * redis-server: fidelity and tcpcopy CPU per replayed command, plain TCP replay and --module redis
 * rewriting every AUTH, BENCH_REPEAT alternate pairs (default 3), bench/redis.ts; with lab), mysql-fidelity (issue 13's figures: sysbench for BENCH_MYSQL_SECONDS, default 30, at
 * BENCH_MYSQL_TPS transactions/s, default 100, with BENCH_MYSQL_THREADS, default 8: target/online
 * statements live, offline from a pcap, and for connections opened before tcpcopy; only with
 * --only mysql-fidelity), max (the highest offered load replayed at >= 99.9%; with lab), ab (paired
 * comparison of two tcpcopy command lines; only with --only ab), agent (tcpcopy agent on online,
 * the replayer on the replay host: agent and replayer CPU per request, RSS, fidelity, lag, and
 * the agent / single-host tcpcopy CPU ratio of pairs measured in the same minutes; BENCH_AGENT_*
 * in bench/agent.ts; with lab).
 * Also latency and latency-ab (the online server's latency with and without tcpcopy, one after the
 * other and side by side, bench/latency.ts; with lab), compare (the response comparison's CPU per
 * exchange and its memory caps, in process) and compare-lab (tcpcopy CPU per request with and
 * without --compare http at keep-alive 2000 req/s in pairs, RSS at 10k req/s; with lab), bench/compare.ts;
 * BENCH_COMPARE_OUT=DIR keeps the 10k run's --compare-out (diffs.jsonl: what differed).
 * BENCH_SECONDS / BENCH_WARM_SECONDS override the lab's measured and warm-up seconds per load;
 * BENCH_REPEAT=N measures each load N times and keeps the median row. To compare a setting:
 * BENCH_LOADS (e.g. `ka:2000,short:4000`), BENCH_MODELS (`remote`, `inline` or both, comma
 * separated), BENCH_TCPCOPY_ARGS, BENCH_NODE_ARGS and BENCH_INTERCEPT_ARGS (extra arguments,
 * space separated). Part `ab` compares two command lines in pairs (see runLabAb): A is the one
 * above, B adds BENCH_B_TCPCOPY_ARGS / BENCH_B_NODE_ARGS and may run another build's
 * tcpcopy-main.js (BENCH_B_TCPCOPY_MAIN); BENCH_REPEAT pairs per load (default 3); each pair
 * waits (up to a minute) for the hypervisor's steal time to fall to BENCH_MAX_STEAL % (default
 * 3), and pairs above it are marked and left out of the "quiet" median.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { engineSuite } from './engine';
import { labTable, type LabBenchOptions, parseLoads, parseModels, runLabAb, runLabBench } from './lab';
import { runMaxLoad } from './lab-max';
import { agentTable, runAgentBench } from './agent';
import { runMysqlBench } from './mysql';
import { runMysqlFidelity } from './mysql-fidelity';
import { runPostgresBench } from './postgres';
import { runRedisBench } from './redis';
import { latencyLines, runOnlineLatency, runSideBySideLatency } from './latency';
import { platformSuite } from './platform';
import { runMemoryBench, runOfflineBench } from './offline';
import { compareLines, runCompareCost, runCompareLab, runCompareMemory } from './compare';

const RESULT = 'BENCH-RESULT ';
const log = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

/** Splits a space-separated argument list. */
function words(v: string | undefined): string[] {
  return (v ?? '').split(' ').filter((w) => w !== '');
}

/** BENCH_TCPCOPY_DUTY=RUN/STOP (ms) as the max part's duty cycle; null when unset or malformed. */
function dutyOf(v: string | undefined): { runMs: number; stopMs: number } | null {
  const m = /^(\d+)\/(\d+)$/.exec(v ?? '');
  return m ? { runMs: Number(m[1]), stopMs: Number(m[2]) } : null;
}

/** The lab part's settings from the BENCH_* environment (see the file comment). */
function labOptions(defaultRepeat: number): LabBenchOptions {
  const env = process.env;
  const num = (v: string | undefined, d: number): number =>
    v !== undefined && v !== '' && Number.isFinite(Number(v)) ? Number(v) : d;
  return {
    seconds: num(env['BENCH_SECONDS'], 10),
    warmSeconds: num(env['BENCH_WARM_SECONDS'], 5),
    repeat: num(env['BENCH_REPEAT'], defaultRepeat),
    ...(env['BENCH_LOADS'] ? { loads: parseLoads(env['BENCH_LOADS']) } : {}),
    ...(env['BENCH_MODELS'] ? { models: parseModels(env['BENCH_MODELS']) } : {}),
    tcpcopyArgs: words(env['BENCH_TCPCOPY_ARGS']),
    nodeArgs: words(env['BENCH_NODE_ARGS']),
    interceptArgs: words(env['BENCH_INTERCEPT_ARGS']),
    maxStealPct: num(env['BENCH_MAX_STEAL'], 3),
  };
}

/** Runs one part in this process and prints its result as a tagged JSON line. */
async function part(name: string): Promise<void> {
  let r: unknown;
  switch (name) {
    case 'engine':
      r = await engineSuite(log);
      break;
    case 'offline': {
      const x = await runOfflineBench(
        { sessions: 100_000, concurrent: 1000, requests: 3, reqLen: 120, respLen: 300 },
        log,
      );
      log(
        `offline: ${x.records} records in ${x.seconds.toFixed(2)} s: ${(x.recordsPerSec / 1e6).toFixed(2)} M records/s, ` +
          `${(x.requestsPerSec / 1e3).toFixed(0)}k requests/s, ${x.cpuUsPerRequest.toFixed(2)} us CPU per request (cpu ${x.cpuSeconds.toFixed(2)} s), ` +
          `replayed ${x.requestsReplayed}/${x.sessions * x.requestsPerSession}, completed ${x.completed}/${x.sessions}, ` +
          `gc ${x.gc.minor}+${x.gc.major} (${x.gc.pauseMs} ms), peak RSS ${x.peakRssMB.toFixed(0)} MiB`,
      );
      r = x;
      break;
    }
    case 'memory':
    case 'memory-silent': {
      const x = await runMemoryBench(100_000, name === 'memory');
      log(
        `memory: ${x.activeSessions} open sessions (target ${x.targetAnswers ? 'answering: established, idle' : 'silent: SYN-SENT with the request buffered'}): ` +
          `RSS ${x.rssMB.toFixed(0)} MiB, heap ${x.heapUsedMB.toFixed(0)} MiB (${x.heapBytesPerSession.toFixed(0)} heap bytes per session${x.targetAnswers ? ', simulator state included' : ''}), fed in ${x.seconds.toFixed(2)} s`,
      );
      r = x;
      break;
    }
    case 'lab': {
      const rows = await runLabBench(log, labOptions(1));
      log(labTable(rows));
      r = rows;
      break;
    }
    case 'lab6': {
      // the lab table over IPv6 (issue 16), beside part lab's IPv4 rows; the remote model only
      // unless BENCH_MODELS says otherwise
      const o = labOptions(1);
      const rows = await runLabBench(log, {
        ...o,
        ipv6: true,
        ...(o.models === undefined && os.cpus().length >= 2 ? { models: ['remote' as const] } : {}),
      });
      log(labTable(rows));
      r = rows;
      break;
    }
    case 'agent': {
      const bMain = process.env['BENCH_AGENT_B_MAIN'];
      const rows = await runAgentBench(log, {
        ...labOptions(1),
        paired: process.env['BENCH_AGENT_PAIRED'] !== '0',
        agentArgs: words(process.env['BENCH_AGENT_ARGS']),
        ...(bMain !== undefined && bMain !== ''
          ? { agentB: { main: bMain, args: words(process.env['BENCH_AGENT_B_ARGS']) } }
          : {}),
      });
      log(agentTable(rows));
      r = rows;
      break;
    }
    case 'ab': {
      const o = labOptions(3);
      const a = { tcpcopyArgs: o.tcpcopyArgs ?? [], nodeArgs: o.nodeArgs ?? [] };
      const main = process.env['BENCH_B_TCPCOPY_MAIN'];
      const b = {
        tcpcopyArgs: [...a.tcpcopyArgs, ...words(process.env['BENCH_B_TCPCOPY_ARGS'])],
        nodeArgs: [...a.nodeArgs, ...words(process.env['BENCH_B_NODE_ARGS'])],
        ...(main !== undefined && main !== '' ? { main } : {}),
      };
      r = await runLabAb(log, a, b, o);
      break;
    }
    case 'mysql': {
      const o = labOptions(1);
      r = await runMysqlBench(log, {
        ...(o.seconds !== undefined ? { seconds: o.seconds } : {}),
        ...(o.warmSeconds !== undefined ? { warmSeconds: o.warmSeconds } : {}),
      });
      break;
    }
    case 'postgres': {
      const o = labOptions(1);
      const tps = Number(process.env['BENCH_PG_TPS'] ?? '');
      r = await runPostgresBench(log, {
        ...(o.seconds !== undefined ? { seconds: o.seconds } : {}),
        ...(o.warmSeconds !== undefined ? { warmSeconds: o.warmSeconds } : {}),
        ...(Number.isFinite(tps) && tps > 0 ? { tps } : {}),
      });
      break;
    }
    case 'redis': {
      const env = process.env;
      const n = Number(env['BENCH_REDIS_REQUESTS'] ?? '');
      r = await runRedisBench(log, {
        ...(Number.isFinite(n) && n > 0 ? { requests: n } : {}),
        // 3 pairs by default: one pair's order and noise decide which row is cheaper
        repeat: labOptions(3).repeat ?? 3,
      });
      break;
    }
    case 'mysql-fidelity': {
      const env = process.env;
      const n = (v: string | undefined): number | undefined =>
        v !== undefined && v !== '' && Number.isFinite(Number(v)) ? Number(v) : undefined;
      const seconds = n(env['BENCH_MYSQL_SECONDS']);
      const tps = n(env['BENCH_MYSQL_TPS']);
      const threads = n(env['BENCH_MYSQL_THREADS']);
      r = await runMysqlFidelity(log, {
        ...(seconds !== undefined ? { seconds } : {}),
        ...(tps !== undefined ? { tps } : {}),
        ...(threads !== undefined ? { threads } : {}),
      });
      break;
    }
    case 'platform':
      r = await platformSuite(log, process.getuid?.() === 0);
      break;
    case 'compare': {
      const cost = runCompareCost();
      const mem = runCompareMemory();
      for (const l of compareLines(cost, mem)) log(l);
      r = { cost, memory: mem };
      break;
    }
    case 'compare-lab':
      r = await runCompareLab(log, labOptions(3), process.env['BENCH_COMPARE_OUT'] || undefined);
      break;
    case 'max':
      r = await runMaxLoad(log, os.cpus().length >= 2 ? 'remote' : 'inline', {
        nodeArgs: words(process.env['BENCH_NODE_ARGS']),
        tcpcopyArgs: words(process.env['BENCH_TCPCOPY_ARGS']),
        tcpcopyNice: Number(process.env['BENCH_TCPCOPY_NICE'] ?? 0) || 0,
        tcpcopyDuty: dutyOf(process.env['BENCH_TCPCOPY_DUTY']),
        ...(process.env['BENCH_MAX_MODES']
          ? {
              modes: words(process.env['BENCH_MAX_MODES'].replace(/,/g, ' ')).filter(
                (m) => m === 'keepalive' || m === 'short',
              ),
            }
          : {}),
        ...(process.env['BENCH_MAX_STEPS'] ? { maxSteps: Number(process.env['BENCH_MAX_STEPS']) } : {}),
      });
      break;
    case 'latency': {
      const x = await runOnlineLatency({ prefix: 'tcq2', rounds: 8, rate: 2000, runMs: 3000 }, log);
      for (const l of latencyLines('latency at 2000 req/s keep-alive', x)) log(l);
      const c = x.copies.reduce((a, b) => ({ offered: a.offered + b.offered, copied: a.copied + b.copied }), {
        offered: 0,
        copied: 0,
      });
      log(
        `latency: tcpcopy cpu=${x.tcpcopyCpuS.toFixed(2)}s over 8 runs (warm-up included), peakRss=${x.tcpcopyPeakRssMB.toFixed(1)}MB; copied ${c.copied}/${c.offered}`,
      );
      r = x;
      break;
    }
    case 'latency-ab': {
      const x = await runSideBySideLatency({ prefix: 'tcq3', phases: [80, 81, 80, 81], rate: 1000, runS: 12 }, log);
      for (const l of latencyLines('latency-ab at 1000 req/s per port', x)) log(l);
      r = x;
      break;
    }
    default:
      throw new Error(`unknown part ${name}`);
  }
  process.stdout.write(`${RESULT}${JSON.stringify(r)}\n`);
}

/** Runs a part in a child process; echoes its output, returns its result. */
function child(name: string): unknown {
  const p = spawnSync(process.execPath, ['--expose-gc', __filename, '--part', name], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 << 20,
  });
  let result: unknown = { error: `exit ${p.status ?? p.signal}` };
  for (const line of (p.stdout ?? '').split('\n')) {
    if (line.startsWith(RESULT)) result = JSON.parse(line.slice(RESULT.length));
    else if (line !== '') log(line);
  }
  return result;
}

function gitHash(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: path.join(__dirname, '..', '..'),
      encoding: 'utf8',
    }).trim();
  } catch {
    return 'nogit';
  }
}

function main(): void {
  const argv = process.argv.slice(2);
  const pi = argv.indexOf('--part');
  if (pi >= 0) {
    part(argv[pi + 1] ?? '').catch((e: unknown) => {
      process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    });
    return;
  }
  const oi = argv.indexOf('--only');
  const only = oi >= 0 ? new Set((argv[oi + 1] ?? '').split(',')) : null;
  const isRoot = process.getuid?.() === 0;
  const lab = argv.includes('--lab') || (isRoot && !argv.includes('--no-lab'));
  const want = (n: string): boolean => only === null || only.has(n);
  const started = new Date();
  const results: Record<string, unknown> = {};
  if (want('engine')) results['engine'] = child('engine');
  if (want('offline')) results['offline'] = child('offline');
  if (want('memory')) results['memory'] = [child('memory'), child('memory-silent')];
  if (want('platform')) results['platform'] = child('platform');
  if (want('compare')) results['compare'] = child('compare');
  if (want('lab')) {
    if (lab) results['lab'] = child('lab');
    else log('lab: skipped (needs root; run as root or pass --lab)');
  }
  if (want('lab6')) {
    if (lab) results['lab6'] = child('lab6');
    else log('lab6: skipped (needs root; run as root or pass --lab)');
  }
  if (want('mysql')) {
    if (lab) results['mysql'] = child('mysql');
    else log('mysql: skipped (needs root; run as root or pass --lab)');
  }
  if (want('redis')) {
    if (lab) results['redis'] = child('redis');
    else log('redis: skipped (needs root; run as root or pass --lab)');
  }
  if (want('postgres')) {
    if (lab) results['postgres'] = child('postgres');
    else log('postgres: skipped (needs root; run as root or pass --lab)');
  }
  for (const name of ['max', 'latency', 'latency-ab', 'compare-lab']) {
    if (!want(name)) continue;
    if (lab) results[name] = child(name);
    else log(`${name}: skipped (needs root; run as root or pass --lab)`);
  }
  if (want('agent')) {
    if (lab) results['agent'] = child('agent');
    else log('agent: skipped (needs root; run as root or pass --lab)');
  }
  // issue 13's MySQL fidelity figures (about 4 minutes) only when asked for (--only mysql-fidelity)
  if (only?.has('mysql-fidelity') === true) {
    if (lab) results['mysql-fidelity'] = child('mysql-fidelity');
    else log('mysql-fidelity: skipped (needs root; run as root or pass --lab)');
  }
  // the A/B comparison runs only when asked for (--only ab)
  if (only?.has('ab') === true) {
    if (lab) results['ab'] = child('ab');
    else log('ab: skipped (needs root; run as root or pass --lab)');
  }
  const hash = gitHash();
  const dir = path.join(__dirname, '..', '..', 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${started.toISOString().slice(0, 10)}-${hash}.json`);
  const record = {
    date: started.toISOString(),
    git: hash,
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? '',
    loadavg: os.loadavg(),
    seconds: (Date.now() - started.getTime()) / 1000,
    // the BENCH_* settings of this run (loads, extra arguments...), so that rows are comparable
    settings: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('BENCH_'))),
    results,
  };
  appendFileSync(file, `${JSON.stringify(record)}\n`);
  log(`results appended to ${path.relative(process.cwd(), file)}`);
}

main();
