import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { LoadOptions, LoadSummary } from '../../src/lab/loadgen';
import { percentileUs, wireLatencies } from '../../src/lab/wire-latency';
import { pooled, say, withLatencyLab } from './latency-lab';
import { skipUnlessRoot, processFigures, startLiveTcpcopy, waitSettled } from './replay-helpers';

/**
 * Issue 3, the online server's latency with tcpcopy, measured side by side. On this 2-vCPU VM
 * the tail of identical runs without tcpcopy swings by up to 10x from one run to the next (the
 * hypervisor's steal time and other stalls), far more than the 5% asked, so runs one after the
 * other cannot resolve p99 (online-latency.test.ts prints that comparison). Here one nginx on
 * online listens on two ports at once; tcpcopy copies only one of them; two load generators
 * drive both ports at the same rate at the same time. Every stall hits both equally, so the
 * copied port's latency against the uncopied port's is what copying costs a request: the
 * capture tap in the receive path and tcpcopy's work on the other CPU. Four phases copy the
 * ports in turn (80, 81, 80, 81), so any difference between the ports, and drift, cancel out.
 */

const RATE = 1000;
const RUN_S = 12;
const PORTS = [80, 81] as const;
/** Which port is copied in each phase: alternated, twice, so drift and port differences cancel out. */
const PHASES = [80, 81, 80, 81] as const;

test(
  'online latency side by side: copied port against an uncopied port of the same nginx, same time',
  { skip: skipUnlessRoot(), timeout: 300_000 },
  async () => {
    await withLatencyLab('tcq3', { port: 80, extraServerConfig: 'listen 81;' }, async (lab, online, target) => {
      const load = (port: number, seconds: number): LoadOptions => ({
        url: `http://198.18.1.1:${port}/`,
        requests: RATE * seconds,
        durationMs: seconds * 1000 + 2000,
        concurrency: 10,
        keepAlive: true,
        rate: RATE,
        paths: ['/', '/bytes/1000'],
      });
      const copied: Float64Array[] = [];
      const uncopied: Float64Array[] = [];
      for (const [phase, copiedPort] of PHASES.entries()) {
        const tm = target.readLog().records.length;
        const om = online.readLog().records.filter((r) => r.serverPort === copiedPort).length;
        const tc = await startLiveTcpcopy(lab, ['-x', `${copiedPort}-198.18.0.2:8080`, '-s', '198.18.0.3']);
        // warm-up of tcpcopy (V8 compiles its hot path), the generators and nginx
        await Promise.all(PORTS.map((p) => lab.load('client', load(p, 2))));
        const cap = await lab.capture('client', {
          dev: `${lab.prefix}cl-on`,
          filter: 'tcp port 80 or tcp port 81',
          file: path.join(lab.dir, `ab-${phase}.pcap`),
          snaplen: 128,
        });
        const sums: LoadSummary[] = await Promise.all(PORTS.map((p) => lab.load('client', load(p, RUN_S))));
        const c = await cap.stop();
        const o = online.readLog().records.filter((r) => r.serverPort === copiedPort).length - om;
        const t = await waitSettled(() => target.readLog().records.length - tm, o, 10_000, 500);
        const r = await tc.stop();
        assert.ok(t / o >= 0.999, `phase ${phase}: target ${t} of ${o} copied requests`);
        for (const [i, p] of PORTS.entries()) {
          const s = sums[i] as LoadSummary;
          assert.equal(s.responsesOk, s.requestsSent, `port ${p}: every request answered`);
          const w = await wireLatencies(cap.file, { serverPort: p });
          assert.ok(
            w.matched >= s.responsesOk * 0.99,
            `port ${p}: the capture saw ${w.matched} of ${s.responsesOk} exchanges`,
          );
          (p === copiedPort ? copied : uncopied).push(w.latenciesUs);
          say(
            `phase ${phase} port ${p} ${p === copiedPort ? 'copied  ' : 'uncopied'}: ${Math.round(s.requestsPerSec)} req/s; wire p50=${(percentileUs(w.latenciesUs, 50) / 1000).toFixed(3)}ms ` +
              `p99=${(percentileUs(w.latenciesUs, 99) / 1000).toFixed(3)}ms p99.9=${(percentileUs(w.latenciesUs, 99.9) / 1000).toFixed(3)}ms; client p50=${s.latencyMs.p50}ms p99=${s.latencyMs.p99}ms`,
          );
        }
        say(`phase ${phase}: copied ${t}/${o}; tcpdump dropped ${c.droppedByKernel}; ${processFigures(r.report)}`);
      }
      const a = pooled(copied);
      const b = pooled(uncopied);
      const pct = (x: number, y: number): string => `${(((x - y) / y) * 100).toFixed(1)}%`;
      for (const p of [50, 99, 99.9]) {
        const x = percentileUs(a, p) / 1000;
        const y = percentileUs(b, p) / 1000;
        say(
          `side by side wire p${p}: copied ${x.toFixed(3)}ms, uncopied ${y.toFixed(3)}ms (${pct(x, y)}): within 5%: ${x <= y * 1.05 ? 'yes' : 'NO'}`,
        );
      }
      // the 5% verdicts above are measurements, not assertions (no timed assertions in tests);
      // these catch real harm only
      assert.ok(percentileUs(a, 50) <= percentileUs(b, 50) * 1.25 + 20, 'copied p50 not far above uncopied');
      assert.ok(percentileUs(a, 99) <= percentileUs(b, 99) * 2 + 200, 'copied p99 not far above uncopied');
    });
  },
);
