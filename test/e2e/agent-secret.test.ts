import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { withLab, type Lab } from '../../src/lab/lab';
import { accessLogLines, skipUnlessRoot, startIntercept, waitSettled } from './replay-helpers';
import { REPLAY_IP, startAgent, startReplayer } from './agent-helpers';

/**
 * Issue 17, part 3: with --secret-file the agent's stream is authenticated (channel v2 scheme).
 * Two agents capture the same online traffic into one replayer: one with the replayer's secret,
 * one with another. If the second were accepted the target would log every request twice.
 * A plain pcap stream (no agent handshake) is refused as well. Counted in nginx's own logs.
 */

function say(line: string): void {
  process.stdout.write(`# ${line}\n`);
}

test(
  'agent --secret-file: the right secret replays, a wrong one and a plain pcap stream are refused (issue 17)',
  { skip: skipUnlessRoot(), timeout: 300_000 },
  async () => {
    await withLab({ prefix: 'tcas', clientAddresses: 10, replayHost: true }, async (lab: Lab) => {
      const online = await lab.startNginx('online', { port: 80 });
      const target = await lab.startNginx('target', { port: 8080 });
      const secret = path.join(lab.dir, 'secret');
      const wrong = path.join(lab.dir, 'wrong-secret');
      fs.writeFileSync(secret, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
      fs.writeFileSync(wrong, `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
      // the replayer's channel to intercept uses the same file (channel v2)
      await startIntercept(lab, ['--secret-file', secret]);
      const rp = await startReplayer(lab, 36525, ['--secret-file', secret]);
      const good = await startAgent(lab, 'online', [`${REPLAY_IP}:36525`], ['--secret-file', secret, '--name', 'good']);
      const bad = await startAgent(lab, 'online', [`${REPLAY_IP}:36525`], ['--secret-file', wrong, '--name', 'bad']);
      const dev = lab.host('online').clientDev ?? '';
      const pcap = lab.spawn('online', [
        'sh',
        '-c',
        `exec tcpdump -i ${dev} -U -s 0 -w - 'tcp dst port 80' 2>/dev/null | socat -u - TCP:${REPLAY_IP}:36525`,
      ]);
      const om = accessLogLines(online);
      const tm = accessLogLines(target);
      await lab.load('client', {
        url: 'http://198.18.1.1/',
        requests: 2000,
        durationMs: 15_000,
        concurrency: 10,
        keepAlive: true,
        paths: ['/', '/bytes/100'],
      });
      const sent = accessLogLines(online) - om;
      const replayed = await waitSettled(() => accessLogLines(target) - tm, sent, 20_000, 1500);
      await pcap.stop('SIGTERM', 2000);
      const badLog = await bad.stop();
      await good.stop();
      const r = await rp.stop();
      const refusals = r.stderr.split('\n').filter((l) => /closed:/.test(l));
      say(
        `online=${sent} target=${replayed}; sources=${JSON.stringify(r.report?.capture?.sources?.map((x) => [x.kind, x.name, x.packets]))}; refusals: ${refusals.slice(0, 3).join(' | ')}`,
      );
      say(
        `bad agent: ${badLog
          .split('\n')
          .filter((l) => /refus|auth|secret|closed|lost/i.test(l))
          .slice(-2)
          .join(' | ')}`,
      );
      assert.equal(r.code, 0, r.stderr.slice(-1500));
      assert.ok(sent >= 1990, `online logged ${sent}`);
      assert.ok(replayed / sent >= 0.999, `target/online = ${replayed}/${sent}`);
      assert.ok(replayed <= sent, `target ${replayed} > online ${sent}: a refused stream was replayed`);
      const sources = r.report?.capture?.sources ?? [];
      assert.deepEqual(
        sources.map((x) => x.kind),
        ['agent'],
        'only the agent with the secret became a source',
      );
      assert.ok(
        refusals.some((l) => /wrong shared secret/.test(l)),
        `the wrong secret was refused: ${refusals.join(' | ')}`,
      );
      assert.ok(
        refusals.some((l) => /only authenticated agents may send/.test(l)),
        `the plain pcap stream was refused: ${refusals.join(' | ')}`,
      );
      assert.equal(r.report?.accounting.unexplained, 0);
    });
  },
);
