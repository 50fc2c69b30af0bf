import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { withLab } from '../../src/lab/lab';
import { skipUnlessRoot, requestMultiset, runTcpcopy, startIntercept, TCPCOPY } from './replay-helpers';

/**
 * Issue 2's end-to-end proof: real HTTP traffic from client to nginx on online, captured with
 * tcpdump, replayed offline to nginx on target; the target's own access log must show exactly
 * the recorded requests, from the recorded client addresses.
 */
test(
  'offline replay of a tcpdump capture reaches the target nginx with the recorded requests and clients',
  { skip: skipUnlessRoot() },
  async () => {
    await withLab({ prefix: 'tco', clientAddresses: 20 }, async (lab) => {
      const online = await lab.startNginx('online', { port: 80 });
      const target = await lab.startNginx('target', { port: 8080 });
      const file = path.join(lab.dir, 'online.pcap');
      const cap = await lab.capture('online', {
        dev: lab.hosts.online.clientDev ?? lab.hosts.online.dev,
        filter: 'tcp port 80',
        file,
      });
      const paths = ['/', '/bytes/100', '/bytes/1000', '/status/404'];
      const ka = await lab.load('client', {
        url: 'http://198.18.1.1:80/',
        requests: 1500,
        durationMs: 20_000,
        concurrency: 8,
        keepAlive: true,
        paths,
      });
      const sc = await lab.load('client', {
        url: 'http://198.18.1.1:80/',
        requests: 400,
        durationMs: 20_000,
        concurrency: 8,
        keepAlive: false,
        paths,
      });
      const capStats = await cap.stop();
      const recorded = await online.waitForCount(ka.requestsSent + sc.requestsSent);
      assert.equal(recorded.length, 1900, 'online nginx logged every load request');

      const icp = await startIntercept(lab);
      const r = await runTcpcopy(lab, ['-i', file, '-x', '80-198.18.0.2:8080', '-s', '198.18.0.3']);
      const replayed = await target.waitForCount(recorded.length, 10_000);
      process.stdout.write(`# replay: ${r.stdout.trim().split('\n').join('\n# ')}\n`);
      process.stdout.write(`# intercept: ${icp.stderr.trim().split('\n').slice(-2).join(' | ')}\n`);
      assert.equal(replayed.length, recorded.length, `target logged ${replayed.length} of ${recorded.length} requests`);
      assert.deepEqual(requestMultiset(replayed), requestMultiset(recorded));
      assert.deepEqual(new Set(replayed.map((x) => x.remoteAddr)), new Set(recorded.map((x) => x.remoteAddr)));
      assert.equal(r.report.accounting.replayed, r.report.accounting.captured);
      assert.equal(r.code, 0);

      // -T 2 -a 4: the file twice, four times faster; the repetitions use other client ports,
      // so nothing collides on the target and it logs every request twice more
      const r2 = await runTcpcopy(lab, [
        '-i',
        file,
        '-x',
        '80-198.18.0.2:8080',
        '-s',
        '198.18.0.3',
        '-T',
        '2',
        '-a',
        '4',
      ]);
      const after = await target.waitForCount(recorded.length * 3, 10_000);
      process.stdout.write(
        `# -T 2 -a 4: ${r2.report.accounting.replayed}/${r2.report.accounting.captured} replayed in ${r2.report.durationS.toFixed(1)} s\n`,
      );
      assert.equal(after.length, recorded.length * 3);
      const again = after.slice(recorded.length);
      assert.deepEqual(requestMultiset(again), new Map([...requestMultiset(recorded)].map(([k, v]) => [k, v * 2])));

      // inspect agrees with tcpdump about the file
      const ins = await lab.exec('online', [
        process.execPath,
        TCPCOPY,
        'inspect',
        file,
        '-x',
        '80-198.18.0.2:8080',
        '--json',
      ]);
      const j = JSON.parse(ins.stdout) as { packets: number };
      assert.equal(j.packets, capStats.packets);
    });
  },
);
