import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { withLab } from '../../src/lab/lab';
import { skipUnlessRoot, runTcpcopy, startIntercept, waitSettled } from './replay-helpers';
import { type ImpairCounters, impair, type Impairment } from './robust-helpers';

/**
 * Issue 4, "loss, reordering and delay": for each impairment a fresh capture (1000 keep-alive
 * requests over 20 connections + 300 one-request connections, each case from its own client
 * addresses so no 4-tuple meets a TIME_WAIT of an earlier case) is replayed offline while the
 * impairment is on the tcpcopy->target, target->assistant and assistant->tcpcopy paths; at
 * least 99.9% of the recorded requests must reach the target nginx's log.
 */
const CASES: readonly Impairment[] = [
  ...(process.env['TCB_BASELINE'] ? [{ name: 'none', lossPct: 0 }] : []),
  { name: 'loss 1%', lossPct: 1 },
  { name: 'loss 5%', lossPct: 5 },
  { name: 'delay 10ms reorder 25% 50%', delayMs: 10, reorderPct: 25, reorderCorrPct: 50 },
  { name: 'delay 50ms', delayMs: 50 },
];

test(
  'replay survives loss, reordering and delay on the target and assistant links',
  { skip: skipUnlessRoot() },
  async () => {
    await withLab(
      { prefix: 'tcb1', clientAddresses: 50, keepDir: process.env['TCB_TRACE'] !== undefined },
      async (lab) => {
        const online = await lab.startNginx('online', { port: 80 });
        const target = await lab.startNginx('target', { port: 8080 });
        const icp = await startIntercept(lab);
        const paths = ['/', '/bytes/100', '/bytes/1000', '/bytes/10000', '/status/404'];
        const addrs = lab.hosts.client.addresses;
        const failures: string[] = [];
        const only = process.env['TCB_CASES'];
        for (const [i, c] of CASES.entries()) {
          if (only !== undefined && !only.split(',').includes(String(i))) continue;
          const localAddresses = addrs.slice(i * 12, i * 12 + 12);
          const file = path.join(lab.dir, `case${i}.pcap`);
          const before = online.readLog().records.length;
          const cap = await lab.capture('online', {
            dev: lab.hosts.online.clientDev ?? lab.hosts.online.dev,
            filter: 'tcp port 80',
            file,
          });
          await lab.load('client', {
            url: 'http://198.18.1.1:80/',
            requests: 1000,
            durationMs: 20_000,
            concurrency: 20,
            keepAlive: true,
            rate: 250,
            paths,
            localAddresses,
          });
          await lab.load('client', {
            url: 'http://198.18.1.1:80/',
            requests: 300,
            durationMs: 20_000,
            concurrency: 8,
            keepAlive: false,
            rate: 100,
            paths,
            localAddresses,
          });
          const capStats = await cap.stop();
          const recorded = (await online.waitForCount(before + 1300)).length - before;
          assert.equal(capStats.droppedByKernel ?? 0, 0, 'the capture dropped nothing');

          const tBefore = target.readLog().records.length;
          const trace = process.env['TCB_TRACE']
            ? await lab.capture('target', { filter: 'tcp', file: path.join(lab.dir, `target${i}.pcap`) })
            : null;
          const h = await impair(lab, c);
          let counters: ImpairCounters | null = null;
          const t0 = Date.now();
          let r: Awaited<ReturnType<typeof runTcpcopy>>;
          let got: number;
          try {
            r = await runTcpcopy(lab, ['-i', file, '-x', '80-198.18.0.2:8080', '-s', '198.18.0.3'], 'online', 120_000);
            got =
              (await waitSettled(() => target.readLog().records.length, tBefore + recorded, 20_000, 1500)) - tBefore;
          } finally {
            counters = await h.remove();
            await trace?.stop();
          }
          const wallS = (Date.now() - t0) / 1000;
          const ic = counters as ImpairCounters | null;
          const e = r.report.engine;
          const ratio = got / recorded;
          const outcomes = Object.entries(e.outcomes)
            .filter(([, v]) => v > 0)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ');
          const lost = Object.entries(e.requestsLost ?? {})
            .filter(([, v]) => v > 0)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ');
          process.stdout.write(
            `# ${c.name}: target ${got}/${recorded} = ${(ratio * 100).toFixed(2)}% retransTimeout=${e.retransTimeout} retransFast=${e.retransFast} ` +
              `outcomes: ${outcomes} lost: ${lost || 'none'} replay wall ${wallS.toFixed(1)} s (tcpcopy ${r.report.durationS.toFixed(1)} s) exit=${r.code}\n#   impairment counters (matched/packets): ${ic?.text ?? 'none'}\n`,
          );
          if (ratio < 0.999) failures.push(`${c.name}: ${got}/${recorded}`);
          if (r.code !== 0) failures.push(`${c.name}: tcpcopy exit code ${r.code}`);
          if (!r.report.accounting.balanced)
            failures.push(`${c.name}: accounting unexplained ${r.report.accounting.unexplained}`);
          // the impairment really happened: a case whose rules matched nothing is a clean run, not a pass
          for (const p of ic?.paths ?? []) {
            if (p.packets <= 0) failures.push(`${c.name}: no packet took the ${p.path} path`);
            const impaired = (c.lossPct ?? 0) > 0 || c.delayMs !== undefined;
            if (impaired && p.matched <= 0)
              failures.push(`${c.name}: the impairment rule on ${p.path} matched nothing`);
          }
          if ((ic?.paths.length ?? 0) !== 3) failures.push(`${c.name}: impairment counters missing`);
          if (c.delayMs !== undefined) {
            for (const hc of ic?.helpers ?? []) {
              if (hc.delayed <= 0) failures.push(`${c.name}: the delay helper on ${hc.host} delayed nothing`);
              if ((c.reorderPct ?? 0) > 0 && hc.immediate <= 0)
                failures.push(`${c.name}: the reorder helper on ${hc.host} reordered nothing`);
            }
            if ((ic?.helpers.length ?? 0) !== 2) failures.push(`${c.name}: delay helper counters missing`);
          }
          if (!icp.running) throw new Error(`intercept exited: ${icp.stderr}${icp.stdout}`);
        }
        process.stdout.write(`# intercept: ${icp.stderr.trim().split('\n').slice(-2).join(' | ')}\n`);
        assert.deepEqual(failures, [], 'every case delivered >= 99.9% of the recorded requests');
      },
    );
  },
);
