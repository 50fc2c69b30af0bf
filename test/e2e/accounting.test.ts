import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { withLab, type Lab } from '../../src/lab/lab';
import {
  requestMultiset,
  runTcpcopy,
  skipUnlessRoot,
  startIntercept,
  TCPCOPY,
  type TcpcopyJsonReport,
} from './replay-helpers';

/**
 * Issue 5's accounting proof: a replay with deliberate losses (sampling -r 50, 5% netem loss on
 * the target, the target nginx stopped midway; then a target port nobody listens on) must
 * explain every captured request: replayed + lost by reason = captured, nothing in flight and
 * nothing unexplained. The figures are checked against the servers' own logs: captured = what the
 * online nginx logged; replayed = what the target nginx logged (exactly on the clean replay;
 * within one request per session the target broke off on the lossy one).
 * Also shows the live status line in a terminal (tmux) during an offline replay.
 */

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The identity, from the JSON report: captured = replayed + lost, nothing in flight or unexplained; captured = what the online server logged. */
function checkIdentity(name: string, r: { code: number; report: TcpcopyJsonReport }, onlineLogged: number): number {
  const acc = r.report.accounting;
  const lostSum = Object.values(acc.lost).reduce((a, b) => a + b, 0);
  process.stdout.write(
    `# ${name}: captured=${acc.captured} replayed=${acc.replayed} lost=${JSON.stringify(acc.lost)} outcomes=${JSON.stringify(Object.fromEntries(Object.entries(r.report.engine.outcomes).filter(([, v]) => v > 0)))} retrans=${r.report.engine.retransTimeout + r.report.engine.retransFast}\n`,
  );
  assert.equal(acc.unexplained, 0, `${name}: nothing unexplained`);
  assert.equal(acc.balanced, true, `${name}: balanced`);
  assert.equal(acc.inFlight, 0, `${name}: nothing in flight after the end`);
  assert.equal(acc.lost['inFlight'], undefined, `${name}: nothing in flight`);
  assert.equal(acc.captured, onlineLogged, `${name}: captured = requests the online server logged`);
  assert.equal(acc.captured, acc.replayed + lostSum, `${name}: captured = replayed + lost`);
  const outcomes = Object.values(r.report.engine.outcomes).reduce((a, b) => a + b, 0);
  assert.equal(outcomes, r.report.engine.sessionsCreated, `${name}: every session has one outcome`);
  assert.equal(r.code, 0, `${name}: exit code`);
  return lostSum;
}

/**
 * Runs tcpcopy in a tmux terminal (its own tmux server) and captures the screen every 1.5 s
 * while it runs, until its JSON report file exists (it is written at exit; bounded by `maxMs`).
 */
async function statusInTmux(lab: Lab, args: string[], reportFile: string, maxMs: number): Promise<string[]> {
  const sock = `tcm${process.pid}`;
  const cmd = ['ip', 'netns', 'exec', lab.hosts.online.ns, process.execPath, TCPCOPY, ...args].join(' ');
  const shots: string[] = [];
  await lab.exec('online', ['true']); // the namespace exists
  const { run } = await import('../../src/lab/sh');
  await run(['tmux', '-L', sock, 'new-session', '-d', '-s', 'tcm', '-x', '160', '-y', '24', `${cmd}; sleep 60`], {
    timeoutMs: 10_000,
  });
  try {
    const t0 = Date.now();
    let done = false;
    while (!done && Date.now() - t0 < maxMs) {
      done = fs.existsSync(reportFile); // one more shot after it exists: the report below the status line
      await sleep(done ? 200 : 1500);
      const c = await run(['tmux', '-L', sock, 'capture-pane', '-p', '-t', 'tcm'], { timeoutMs: 5000 });
      shots.push(c.stdout.replace(/\s+$/, ''));
    }
    assert.ok(done, `tcpcopy in tmux wrote no report within ${maxMs} ms`);
  } finally {
    await run(['tmux', '-L', sock, 'kill-server'], { timeoutMs: 5000 }).catch(() => undefined);
  }
  return shots;
}

test(
  'every captured request is replayed or lost for a stated reason',
  { skip: skipUnlessRoot(), timeout: 300_000 },
  async () => {
    await withLab({ prefix: 'tcm', clientAddresses: 20 }, async (lab) => {
      const online = await lab.startNginx('online', { port: 80 });
      let target = await lab.startNginx('target', { port: 8080 });
      const file = path.join(lab.dir, 'online.pcap');
      const cap = await lab.capture('online', {
        dev: lab.hosts.online.clientDev ?? lab.hosts.online.dev,
        filter: 'tcp port 80',
        file,
      });
      const paths = ['/', '/bytes/100', '/bytes/1000', '/status/404'];
      // about 8 s of traffic: keep-alive connections and one connection per request
      await Promise.all([
        lab.load('client', {
          url: 'http://198.18.1.1:80/',
          requests: 800,
          rate: 100,
          durationMs: 8000,
          concurrency: 4,
          keepAlive: true,
          paths,
        }),
        lab.load('client', {
          url: 'http://198.18.1.1:80/',
          requests: 400,
          rate: 50,
          durationMs: 8000,
          concurrency: 4,
          keepAlive: false,
          paths,
        }),
      ]);
      const capStats = await cap.stop();
      const onlineLogged = online.readLog().records.length;
      process.stdout.write(
        `# online nginx logged ${onlineLogged} requests; capture: ${capStats.packets} packets, ${capStats.droppedByKernel} dropped\n`,
      );
      assert.equal(capStats.droppedByKernel, 0, 'the capture is complete');
      const icp = await startIntercept(lab);

      // 1) -r 50, 5% loss on the target's egress, the target nginx stopped halfway through
      const dev = lab.hosts.target.dev;
      // netem when the kernel has it; otherwise the same 5% random loss with iptables' statistic match
      const tc = await lab.exec('target', ['tc', 'qdisc', 'add', 'dev', dev, 'root', 'netem', 'loss', '5%']);
      const dropRule = [
        'OUTPUT',
        '-o',
        dev,
        '-p',
        'tcp',
        '--sport',
        '8080',
        '-m',
        'statistic',
        '--mode',
        'random',
        '--probability',
        '0.05',
        '-j',
        'DROP',
      ];
      if (tc.code !== 0) {
        const ipt = await lab.exec('target', ['iptables', '-A', ...dropRule]);
        assert.equal(ipt.code, 0, `tc: ${tc.stderr}; iptables: ${ipt.stderr}`);
        process.stdout.write(`# netem unavailable (${tc.stderr.trim()}): 5% loss with iptables -m statistic instead\n`);
      }
      const running = runTcpcopy(lab, [
        '-i',
        file,
        '-x',
        '80-198.18.0.2:8080',
        '-s',
        '198.18.0.3',
        '-r',
        '50',
        '-t',
        '5',
        '-k',
        '5',
      ]);
      // stop the target once it has logged a third of the ~50% sampled requests
      const stopAt = Math.floor(onlineLogged / 6);
      const seen = await target.waitForCount(stopAt, 120_000);
      assert.ok(seen.length >= stopAt, `the target logged ${seen.length} < ${stopAt} requests`);
      await target.stop();
      const r1 = await running;
      const targetLogged1 = target.readLog().records.length;
      if (tc.code === 0) await lab.exec('target', ['tc', 'qdisc', 'del', 'dev', dev, 'root']);
      else await lab.exec('target', ['iptables', '-D', ...dropRule]);
      checkIdentity('-r 50, netem 5%, nginx stopped', r1, onlineLogged);
      const lost1 = r1.report.accounting.lost;
      // each session the stop broke off may differ by its one request in progress (acknowledged
      // but not logged, or logged but its ACK lost): never by more
      const broken = Object.entries(r1.report.engine.outcomes)
        .filter(([o]) => o !== 'completed')
        .reduce((a, [, n]) => a + n, 0);
      process.stdout.write(
        `# target nginx logged ${targetLogged1}, tcpcopy replayed ${r1.report.accounting.replayed}, ${broken} sessions not completed\n`,
      );
      assert.ok(
        Math.abs(targetLogged1 - r1.report.accounting.replayed) <= broken,
        `replayed ${r1.report.accounting.replayed} vs target logged ${targetLogged1}: more apart than the ${broken} broken sessions explain`,
      );
      assert.ok((lost1['sampledOut'] ?? 0) > 0, 'sampling lost some');
      assert.ok((lost1['targetRefused'] ?? 0) + (lost1['targetReset'] ?? 0) > 0, 'the stopped nginx lost some');
      assert.ok(r1.report.accounting.replayed > 0, 'some were replayed');
      assert.ok(
        r1.report.engine.retransTimeout + r1.report.engine.retransFast > 0,
        'netem loss caused retransmissions',
      );

      // 2) the target port nobody listens on now (nginx stays stopped): every request lost as targetRefused
      const r2 = await runTcpcopy(lab, ['-i', file, '-x', '80-198.18.0.2:8080', '-s', '198.18.0.3', '-a', '0']);
      checkIdentity('closed target port', r2, onlineLogged);
      assert.equal(r2.report.accounting.replayed, 0);
      assert.equal(target.readLog().records.length, targetLogged1, 'nobody on the target logged anything');
      assert.equal(r2.report.accounting.lost['targetRefused'], r2.report.accounting.captured);

      // 3) the status line in a terminal during a replay (-a 1: about 8 s), and the metrics endpoint
      target = await lab.startNginx('target', { port: 8080 });
      const base3 = target.readLog().records.length; // the restarted nginx appends to the same log
      const reportFile = path.join(lab.dir, 'tmux-report.json');
      const shots = await statusInTmux(
        lab,
        ['-i', file, '-x', '80-198.18.0.2:8080', '-s', '198.18.0.3', '-a', '1', '--report', `json:${reportFile}`],
        reportFile,
        120_000,
      );
      process.stdout.write(
        `# tmux capture-pane during the replay:\n${shots
          .map((s) =>
            s
              .split('\n')
              .map((l) => `#   ${l}`)
              .join('\n'),
          )
          .join('\n# ---\n')}\n`,
      );
      assert.ok(
        shots.some((s) =>
          /\] +[\d.]+% ETA [\d:?]+ \| sessions \d+ active\/\d+ replayed\/\d+ completed \| requests \d+\/\d+ replayed \| [\d.]+ req\/s/.test(
            s,
          ),
        ),
        'a status line with a progress bar was shown',
      );
      assert.ok(
        shots.some((s) => /tcpcopy report/.test(s)),
        'the report follows the status line',
      );
      const j = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as TcpcopyJsonReport;
      checkIdentity('clean replay in tmux', { code: 0, report: j }, onlineLogged);
      // the clean replay: every captured request replayed, and the target logged exactly those
      const logged3 = (await target.waitForCount(base3 + j.accounting.replayed, 10_000)).slice(base3);
      assert.equal(j.accounting.replayed, onlineLogged, 'clean replay: everything replayed');
      assert.equal(logged3.length, onlineLogged, 'the target logged every replayed request');
      assert.deepEqual(
        requestMultiset(logged3),
        requestMultiset(online.readLog().records),
        'the same requests (method, path) as online',
      );
      process.stdout.write(`# intercept: ${icp.stderr.trim().split('\n').slice(-1).join('')}\n`);
      void target;
    });
  },
);
