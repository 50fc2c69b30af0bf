import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { LoadOptions, LoadSummary } from '../../src/lab/loadgen';
import { percentileUs, wireLatencies } from '../../src/lab/wire-latency';
import { pooled, say, withLatencyLab } from './latency-lab';
import { skipUnlessRoot, processFigures, startLiveTcpcopy, waitSettled } from './replay-helpers';

/**
 * Issue 3: the online server's request latency with tcpcopy copying its traffic, against the
 * same load without tcpcopy. A fixed request rate (not maximum throughput: on a 2-core box that
 * would only measure who wins the CPU), runs alternated (without, with, without, with, ...) so a
 * drift of the shared box hits both sides; the medians over the runs are compared.
 */

const ROUNDS = 8;
const RATE = 2000;
const RUN_MS = 3000;
/** One measured run: the generator's summary and the server's latency on the wire (ms). */
interface Run {
  s: LoadSummary;
  wireP50: number;
  wireP99: number;
  /** Every exchange's latency on the wire, µs, ascending. */
  wireUs: Float64Array;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

test(
  'online latency (p50, p99) with and without tcpcopy at a fixed rate',
  { skip: skipUnlessRoot(), timeout: 300_000 },
  async () => {
    await withLatencyLab('tcq2', { port: 80 }, async (lab, online, target) => {
      const load: LoadOptions = {
        url: 'http://198.18.1.1:80/',
        requests: Math.round((RATE * RUN_MS) / 1000),
        durationMs: RUN_MS + 2000,
        concurrency: 20,
        keepAlive: true,
        rate: RATE,
        paths: ['/', '/bytes/1000'],
      };
      // warm-up (JIT of the load generator, nginx caches)
      await lab.load('client', { ...load, requests: 2000 });
      const without: Run[] = [];
      const withTc: Run[] = [];
      let cpu = 0;
      let rss = 0;
      let copied = 0;
      let offered = 0;
      let n = 0;
      /** One load run with tcpdump on the client's link; latencies from the generator and from the wire. */
      const measured = async (label: string): Promise<Run> => {
        const cap = await lab.capture('client', {
          dev: `${lab.prefix}cl-on`,
          filter: 'tcp port 80',
          file: path.join(lab.dir, `lat-${n++}.pcap`),
          snaplen: 128,
        });
        const s = await lab.load('client', load);
        const c = await cap.stop();
        const w = await wireLatencies(cap.file, { serverPort: 80 });
        const run: Run = {
          s,
          wireP50: percentileUs(w.latenciesUs, 50) / 1000,
          wireP99: percentileUs(w.latenciesUs, 99) / 1000,
          wireUs: w.latenciesUs,
        };
        say(
          `latency run ${label}: ${Math.round(s.requestsPerSec)} req/s; client p50=${s.latencyMs.p50}ms p99=${s.latencyMs.p99}ms; ` +
            `wire p50=${run.wireP50.toFixed(3)}ms p99=${run.wireP99.toFixed(3)}ms (${w.matched} matched, ${w.unmatched} unmatched, tcpdump dropped ${c.droppedByKernel})`,
        );
        assert.ok(w.matched >= s.responsesOk * 0.99, `the capture saw ${w.matched} of ${s.responsesOk} exchanges`);
        return run;
      };
      for (let i = 0; i < ROUNDS; i++) {
        const order = i % 2 === 0 ? ['without', 'with'] : ['with', 'without'];
        for (const mode of order) {
          if (mode === 'without') {
            without.push(await measured(`${i} without tcpcopy`));
            continue;
          }
          const tm = target.readLog().records.length;
          const om = online.readLog().records.length;
          const tc = await startLiveTcpcopy(lab, ['-x', '80-198.18.0.2:8080', '-s', '198.18.0.3']);
          // tcpcopy warms up (V8 compiles its hot path) on a first stretch of load, as it would in
          // its first seconds on a production host; the measured run follows
          await lab.load('client', { ...load, requests: RATE * 2, durationMs: 2000 });
          const run = await measured(`${i} with tcpcopy   `);
          const o = online.readLog().records.length - om;
          const t = await waitSettled(() => target.readLog().records.length - tm, o, 10_000, 500);
          const r = await tc.stop();
          withTc.push(run);
          copied += t;
          offered += o;
          if (r.report !== null) {
            cpu += r.report.process.cpuUserS + r.report.process.cpuSystemS;
            rss = Math.max(rss, r.report.process.maxRssMB);
          }
          say(`  copied ${t}/${o}; ${processFigures(r.report)}`);
        }
      }
      const med = (runs: Run[], f: (r: Run) => number): number => median(runs.map(f));
      const pct = (a: number, b: number): string => `${(((a - b) / b) * 100).toFixed(1)}%`;
      const po = pooled(without.map((r) => r.wireUs));
      const pw = pooled(withTc.map((r) => r.wireUs));
      const fig = {
        wireP50: [percentileUs(po, 50) / 1000, percentileUs(pw, 50) / 1000],
        wireP99: [percentileUs(po, 99) / 1000, percentileUs(pw, 99) / 1000],
        wireP999: [percentileUs(po, 99.9) / 1000, percentileUs(pw, 99.9) / 1000],
        clientP50: [med(without, (r) => r.s.latencyMs.p50), med(withTc, (r) => r.s.latencyMs.p50)],
        clientP99: [med(without, (r) => r.s.latencyMs.p99), med(withTc, (r) => r.s.latencyMs.p99)],
      } as const;
      for (const [k, [o, w]] of Object.entries(fig)) {
        say(
          `latency ${k} at ${RATE} req/s keep-alive, ${k.startsWith('wire') ? `all ${ROUNDS} runs pooled` : `median of ${ROUNDS} runs`}: without=${o.toFixed(3)}ms with=${w.toFixed(3)}ms (${pct(w, o)}): within 5%: ${w <= o * 1.05 ? 'yes' : 'NO'}`,
        );
      }
      say(
        `tcpcopy cpu=${cpu.toFixed(2)}s over ${ROUNDS} runs (warm-up included), peakRss=${rss.toFixed(1)}MB; copied ${copied}/${offered}`,
      );
      for (const r of [...without, ...withTc])
        assert.equal(r.s.responsesOk, r.s.requestsSent, 'every request answered');
      assert.ok(copied / offered >= 0.999, `copied ${copied}/${offered}`);
      // The 5% goal is measured and printed above, not asserted (performance is measured, never
      // asserted on time); the assertions catch real harm. The server's latency on the wire
      // (tcpdump's kernel timestamps on the client's link: from the request leaving the client to
      // the response arriving) leaves out the client's own scheduling, which on this 2-core box
      // shares a CPU with the target, intercept and tcpcopy; the generator's own view keeps it.
      const [w50o, w50w] = fig.wireP50;
      const [w99o, w99w] = fig.wireP99;
      assert.ok(w50w <= w50o * 1.25 + 0.02, `wire p50 with tcpcopy ${w50w}ms vs ${w50o}ms without`);
      assert.ok(w99w <= w99o * 2 + 0.2, `wire p99 with tcpcopy ${w99w}ms vs ${w99o}ms without`);
      const [c50o, c50w] = fig.clientP50;
      const [c99o, c99w] = fig.clientP99;
      assert.ok(c50w <= c50o * 1.25 + 0.05, `client p50 with tcpcopy ${c50w}ms vs ${c50o}ms without`);
      assert.ok(c99w <= Math.max(c99o * 3, c99o + 20), `client p99 with tcpcopy ${c99w}ms vs ${c99o}ms without`);
    });
  },
);
