/**
 * The comparison's cost (issue 15), parts `compare` and `compare-lab` of `npm run bench`:
 *
 * - compare: the comparison alone (src/compare/, what --compare adds to tcpcopy's work):
 *   keep-alive HTTP sessions with JSON bodies (one in ten differing, every fifth response
 *   chunked) fed as MSS-sized segments, 2000 sessions open at once: CPU per exchange, heap.
 *   Then the memory caps: 10,000 exchanges whose production response (16 KiB) waits for the
 *   target's (1 s of target lag at 10k req/s): the peak held stays under --compare-memory-max
 *   (64 MiB) and what did not fit is counted as skipped `memory`.
 * - compare-lab (root): live tcpcopy with and without `--compare http` in the bench lab
 *   (bench/lab.ts runLabAb; channel v2 on both, intercept --payload-max 65535), keep-alive
 *   2000 req/s in pairs: tcpcopy CPU per request B/A; then keep-alive 10k req/s with --compare
 *   (and --memory-budget 0, so that nothing is shed): RSS and the comparison's peak held bytes.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Comparison } from '../src/compare/comparison';
import { COMPARE_DEFAULTS, compareConfig } from '../src/compare/config';
import { buildRules } from '../src/compare/rules';
import type { CompareCounts } from '../src/compare/summary';
import { type LabBenchOptions, rowLine, runLabAb, runLabBench, type LabAbResult, type LabRow } from './lab';

const MSS = 1448;

function json(i: number, price: number, items: number): string {
  const list = Array.from(
    { length: items },
    (_, k) => `{"n":${k},"name":"item-${i}-${k}","price":${k === 3 ? price : k * 1.5}}`,
  );
  return `{"id":${i},"owner":"user-${i}","items":[${list.join(',')}],"ok":true}`;
}

function response(body: string, chunked: boolean, date: string): Buffer {
  const b = Buffer.from(body);
  if (!chunked)
    return Buffer.concat([
      Buffer.from(
        `HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: ${date}\r\nContent-Type: application/json\r\nContent-Length: ${b.length}\r\n\r\n`,
      ),
      b,
    ]);
  const half = b.length >> 1;
  return Buffer.concat([
    Buffer.from(
      `HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: ${date}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
    ),
    Buffer.from(`${half.toString(16)}\r\n`),
    b.subarray(0, half),
    Buffer.from(`\r\n${(b.length - half).toString(16)}\r\n`),
    b.subarray(half),
    Buffer.from('\r\n0\r\n\r\n'),
  ]);
}

function feed(fn: (d: Buffer) => void, b: Buffer): void {
  for (let o = 0; o < b.length; o += MSS) fn(b.subarray(o, Math.min(b.length, o + MSS)));
}

export interface CompareCostResult {
  sessions: number;
  requestsPerSession: number;
  exchanges: number;
  bodyBytes: number;
  cpuUsPerExchange: number;
  exchangesPerSec: number;
  counts: CompareCounts;
  heapUsedMB: number;
  rssMB: number;
}

/** CPU per exchange of the comparison, `sessions` keep-alive sessions open at once. */
export function runCompareCost(sessions = 2000, requests = 10): CompareCostResult {
  const cmp = new Comparison(compareConfig('http', buildRules()), () => {});
  const reqs: Buffer[] = [];
  const online: Buffer[] = [];
  const target: Buffer[] = [];
  const changed: Buffer[] = [];
  for (let k = 0; k < requests; k++) {
    reqs.push(Buffer.from(`GET /api/items/${k}?page=${k} HTTP/1.1\r\nHost: shop\r\nAccept: application/json\r\n\r\n`));
    online.push(response(json(k, 10, 12), k % 5 === 4, 'Wed, 02 Dec 2026 03:00:00 GMT'));
    target.push(response(json(k, 10, 12), k % 5 === 4, 'Wed, 02 Dec 2026 03:00:01 GMT'));
    changed.push(response(json(k, 12, 12), k % 5 === 4, 'Wed, 02 Dec 2026 03:00:01 GMT'));
  }
  global.gc?.();
  const obs = Array.from({ length: sessions }, (_, i) =>
    cmp.openSession({
      clientIp: `198.18.${(i >> 8) & 255}.${i & 255}`,
      clientPort: 10000 + i,
      serverIp: '198.18.0.1',
      serverPort: 80,
      targetIp: '198.18.0.2',
      targetPort: 8080,
    }),
  );
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let now = 0;
  for (let k = 0; k < requests; k++)
    for (let i = 0; i < sessions; i++) {
      const o = obs[i] as (typeof obs)[number];
      now += 0.01;
      o.clientBytes(reqs[k] as Buffer, now);
      feed((d) => o.onlineBytes(d, 0, now + 1), online[k] as Buffer);
      feed((d) => o.targetBytes(d, 0, now + 2), ((i + k) % 10 === 0 ? changed : target)[k] as Buffer);
    }
  for (const o of obs) o.end(now + 10);
  cmp.finish();
  const s = cmp.summary();
  const cpu = process.cpuUsage(c0);
  const sec = Number(process.hrtime.bigint() - t0) / 1e9;
  const m = process.memoryUsage();
  const ex = sessions * requests;
  return {
    sessions,
    requestsPerSession: requests,
    exchanges: ex,
    bodyBytes: json(0, 10, 12).length,
    cpuUsPerExchange: (cpu.user + cpu.system) / ex,
    exchangesPerSec: ex / sec,
    counts: s.totals,
    heapUsedMB: m.heapUsed / 1048576,
    rssMB: m.rss / 1048576,
  };
}

export interface CompareMemoryResult {
  waiting: number;
  bodyBytes: number;
  memoryMaxMB: number;
  peakHeldMB: number;
  counts: CompareCounts;
  rssMB: number;
  heapUsedMB: number;
}

/** `waiting` exchanges whose production response waits for the target's: held bytes vs the cap. */
export function runCompareMemory(waiting = 10_000, bodyBytes = 16 * 1024): CompareMemoryResult {
  const cfg = compareConfig('http', buildRules());
  const cmp = new Comparison(cfg, () => {});
  const req = Buffer.from('GET /big HTTP/1.1\r\nHost: shop\r\n\r\n');
  const resp = response(`"${'a'.repeat(bodyBytes - 2)}"`, false, 'Wed, 02 Dec 2026 03:00:00 GMT');
  const obs = Array.from({ length: waiting }, (_, i) =>
    cmp.openSession({
      clientIp: `198.18.${(i >> 8) & 255}.${i & 255}`,
      clientPort: 20000 + (i % 40000),
      serverIp: '198.18.0.1',
      serverPort: 80,
      targetIp: '198.18.0.2',
      targetPort: 8080,
    }),
  );
  for (const o of obs) {
    o.clientBytes(req, 0);
    feed((d) => o.onlineBytes(d, 0, 1), resp);
  }
  global.gc?.();
  const m = process.memoryUsage();
  for (const o of obs) feed((d) => o.targetBytes(d, 0, 1000), resp);
  for (const o of obs) o.end(2000);
  cmp.finish();
  const s = cmp.summary();
  return {
    waiting,
    bodyBytes,
    memoryMaxMB: COMPARE_DEFAULTS.memoryMax / 1048576,
    peakHeldMB: cmp.peakHeld / 1048576,
    counts: s.totals,
    rssMB: m.rss / 1048576,
    heapUsedMB: m.heapUsed / 1048576,
  };
}

/** The lines the bench prints for the in-process part. */
export function compareLines(c: CompareCostResult, mem: CompareMemoryResult): string[] {
  return [
    `compare: ${c.exchanges} HTTP exchanges (${c.sessions} keep-alive sessions open, ${c.bodyBytes}-byte JSON bodies, 1 in 10 differing, 1 in 5 chunked): ` +
      `${c.cpuUsPerExchange.toFixed(1)} us CPU per exchange, ${(c.exchangesPerSec / 1000).toFixed(1)}k exchanges/s; identical ${c.counts.identical}, different ${c.counts.different}, skipped ${Object.values(c.counts.skipped).reduce((a, b) => a + b, 0)}; heap ${c.heapUsedMB.toFixed(0)} MiB, RSS ${c.rssMB.toFixed(0)} MiB`,
    `compare memory: ${mem.waiting} exchanges waiting for the target with ${mem.bodyBytes / 1024} KiB bodies (1 s of target lag at 10k req/s): peak held ${mem.peakHeldMB.toFixed(1)} MiB of --compare-memory-max ${mem.memoryMaxMB} MiB; ` +
      `compared ${mem.counts.compared}, skipped as memory ${mem.counts.skipped.memory} (exchanges ${mem.counts.exchanges}); RSS ${mem.rssMB.toFixed(0)} MiB, heap ${mem.heapUsedMB.toFixed(0)} MiB while they waited`,
  ];
}

/** A channel v2 secret for the lab part (tcpcopy and intercept read the same file). */
function secretFile(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tcpcopy-bench-compare-'));
  const f = path.join(dir, 'secret');
  writeFileSync(f, 'tcpcopy-bench-compare-shared-secret\n', { mode: 0o600 });
  return f;
}

export interface CompareLabResult {
  ab: LabAbResult[];
  at10k: LabRow[];
}

/**
 * The lab part: with vs without --compare http at keep-alive 2000 req/s (pairs), then --compare at 10k req/s.
 * `compareOut`: a directory for the 10k run's `--compare-out` (diffs.jsonl, summary.json, report.html), to read
 * what differed (BENCH_COMPARE_OUT); none by default.
 */
export async function runCompareLab(
  log: (s: string) => void,
  o: LabBenchOptions,
  compareOut?: string,
): Promise<CompareLabResult> {
  const secret = secretFile();
  const opts: LabBenchOptions = {
    ...o,
    interceptArgs: [...(o.interceptArgs ?? []), '--secret-file', secret, '--payload-max', '65535'],
  };
  const base = [...(o.tcpcopyArgs ?? []), '--secret-file', secret];
  const a = { tcpcopyArgs: base, nodeArgs: o.nodeArgs ?? [] };
  const b = { tcpcopyArgs: [...base, '--compare', 'http'], nodeArgs: o.nodeArgs ?? [] };
  const ab = await runLabAb(log, a, b, {
    ...opts,
    loads: o.loads ?? [{ keepAlive: true, rate: 2000, concurrency: 32 }],
  });
  const at10k = await runLabBench(log, {
    ...opts,
    repeat: 1,
    loads: [{ keepAlive: true, rate: 10_000, concurrency: 32 }],
    models: o.models ?? (os.cpus().length >= 2 ? ['remote'] : ['inline']),
    // without --memory-budget's shedding (its 120 MiB default sheds new connections at this load
    // with --compare on a 2-CPU VM): what the comparison itself holds and costs
    tcpcopyArgs: [...b.tcpcopyArgs, '--memory-budget', '0', ...(compareOut ? ['--compare-out', compareOut] : [])],
  });
  for (const r of at10k) log(`compare-lab 10k: ${rowLine(r)}`);
  return { ab, at10k };
}
