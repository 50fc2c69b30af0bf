import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { withLab, type Lab } from '../../src/lab/lab';
import type { HostName } from '../../src/lab/names';
import { commandsByConnection, readGreetingLog } from '../../src/lab/greeting-server';
import type { GreetingClientSummary } from '../../src/lab/greeting-client';
import { skipUnlessRoot, runTcpcopy, startIntercept, waitSettled } from './replay-helpers';

const SERVER = path.join(__dirname, '..', '..', 'src', 'lab', 'greeting-server.js');
const CLIENT = path.join(__dirname, '..', '..', 'src', 'lab', 'greeting-client.js');

async function startGreeting(lab: Lab, host: HostName, port: number): Promise<string> {
  const log = path.join(lab.dir, `greeting-${host}-${port}.jsonl`);
  const p = lab.spawn(host, [process.execPath, SERVER, '--host', '0.0.0.0', '--port', String(port), '--log', log], {
    label: `greeting-${host}`,
  });
  await p.waitFor(/listening/, 10_000);
  return log;
}

/**
 * Issue 4, "server-first protocols": the server speaks first (220 greeting); the client waits
 * for it, sends commands one at a time, each after the previous answer, then QUIT. A replay
 * must wait for the target's greeting too: the target server's own log must show the same
 * commands, per connection and in the same order, as the online server's log.
 */
test('a server-first protocol replays with every command in order', { skip: skipUnlessRoot() }, async () => {
  await withLab({ prefix: 'tcb4', clientAddresses: 10 }, async (lab) => {
    const onlineLog = await startGreeting(lab, 'online', 25);
    const targetLog = await startGreeting(lab, 'target', 8080);
    const file = path.join(lab.dir, 'greeting.pcap');
    const cap = await lab.capture('online', {
      dev: lab.hosts.online.clientDev ?? lab.hosts.online.dev,
      filter: 'tcp port 25',
      file,
    });
    const locals = lab.hosts.client.addresses.flatMap((a) => ['--local-address', a]);
    const r = await lab.exec(
      'client',
      [
        process.execPath,
        CLIENT,
        '--host',
        '198.18.1.1',
        '--port',
        '25',
        '--connections',
        '40',
        '--commands',
        '20',
        '--concurrency',
        '8',
        ...locals,
      ],
      { timeoutMs: 60_000 },
    );
    const sum = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as GreetingClientSummary;
    await cap.stop();
    assert.equal(sum.completed, 40, `client: ${r.stdout} ${r.stderr}`);
    const online = readGreetingLog(onlineLog);
    assert.equal(online.length, 40 * 21);

    const icp = await startIntercept(lab);
    const t0 = Date.now();
    const rep = await runTcpcopy(lab, ['-i', file, '-x', '25-198.18.0.2:8080', '-s', '198.18.0.3']);
    await waitSettled(() => readGreetingLog(targetLog).length, online.length, 15_000, 1000);
    const target = readGreetingLog(targetLog);
    const e = rep.report.engine;
    const outcomes = Object.entries(e.outcomes)
      .filter(([, v]) => v > 0)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    process.stdout.write(
      `# server-first: target logged ${target.length}/${online.length} commands, outcomes: ${outcomes}, ` +
        `requests ${e.requestsReplayed}/${e.requestsCaptured}, wall ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
    );
    process.stdout.write(`# intercept: ${icp.stderr.trim().split('\n').slice(-1).join('')}\n`);
    assert.equal(target.length, online.length);
    assert.deepEqual(commandsByConnection(target), commandsByConnection(online));
    assert.equal(rep.code, 0);
  });
});
