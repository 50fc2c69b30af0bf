import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withLab } from '../../src/lab/lab';
import { skipUnlessRoot, processFigures, startIntercept, startLiveTcpcopy, waitSettled } from './replay-helpers';

/**
 * Issue 3, part 8: client-port reuse. One client opens N connections one after the other from
 * the SAME address and port (the server closes each first, `Connection: close`, so the port is
 * free again at once on the client and the server's TIME_WAIT accepts the next SYN). The next
 * SYN reaches tcpcopy while the replay of the previous connection is often still closing on
 * the target: it must be queued, not lost. The target's own access log must show every
 * request from that address and port.
 */

const N = 150;
const PORT = 47001;

/** Runs in the client namespace: N sequential requests from one local address and port. */
const CLIENT = `
const net = require('net');
const [host, port, local, lport, n] = process.argv.slice(1);
let i = 0, ok = 0, retries = 0;
function one() {
  if (i >= Number(n)) { process.stdout.write(JSON.stringify({ ok, retries }) + '\\n'); return; }
  const s = net.connect({ host, port: Number(port), localAddress: local, localPort: Number(lport) });
  let got = '';
  s.setEncoding('latin1');
  s.on('connect', () => s.write('GET /?reuse=' + i + ' HTTP/1.1\\r\\nHost: online\\r\\nConnection: close\\r\\n\\r\\n'));
  s.on('data', (d) => { got += d; });
  s.on('error', (e) => {
    // the port not free yet (EADDRINUSE) or the old 4-tuple still known: try the same request again
    retries++;
    if (retries > 5 * Number(n)) { process.stdout.write(JSON.stringify({ ok, retries, error: e.message }) + '\\n'); process.exit(1); }
    s.destroy();
    setTimeout(one, 20);
  });
  s.on('close', (hadError) => {
    if (hadError) return;
    if (got.startsWith('HTTP/1.1 200')) ok++;
    i++;
    setImmediate(one);
  });
}
one();
`;

test(
  'client-port reuse: new connections from a port whose replay is still closing are replayed, none lost',
  { skip: skipUnlessRoot(), timeout: 180_000 },
  async () => {
    await withLab({ prefix: 'tcpr', clientAddresses: 4 }, async (lab) => {
      const online = await lab.startNginx('online', { port: 80 });
      const target = await lab.startNginx('target', { port: 8080 });
      await startIntercept(lab);
      const tc = await startLiveTcpcopy(lab, ['-x', '80-198.18.0.2:8080', '-s', '198.18.0.3']);
      const local = lab.hosts.client.addresses[0] as string;
      const r = await lab.exec(
        'client',
        [process.execPath, '-e', CLIENT, '198.18.1.1', '80', local, String(PORT), String(N)],
        { timeoutMs: 120_000 },
      );
      const res = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { ok: number; retries: number };
      process.stdout.write(`# client: ${res.ok}/${N} answered from ${local}:${PORT}, ${res.retries} connect retries\n`);
      assert.equal(res.ok, N, `online answered ${res.ok} of ${N}: ${r.stderr}`);
      const onlineRecs = online.readLog().records.filter((x) => x.remoteAddr === local && x.remotePort === PORT);
      assert.equal(onlineRecs.length, N, 'online logged every request from the one port');
      await waitSettled(() => target.readLog().records.filter((x) => x.remotePort === PORT).length, N, 20_000, 1000);
      const stop = await tc.stop();
      const rep = stop.report;
      assert.ok(rep !== null, 'tcpcopy wrote its report');
      const targetRecs = target.readLog().records.filter((x) => x.remoteAddr === local && x.remotePort === PORT);
      const seen = new Set(targetRecs.map((x) => x.url));
      process.stdout.write(
        `# target: ${targetRecs.length}/${N} requests from ${local}:${PORT} (${seen.size} distinct); ` +
          `sessions ${rep.engine.sessionsCreated}, queued behind a closing replay ${rep.engine.sessionsQueued}; outcomes ${JSON.stringify(Object.fromEntries(Object.entries(rep.engine.outcomes).filter(([, v]) => v > 0)))}; ${processFigures(rep)}\n`,
      );
      assert.equal(targetRecs.length, N, 'the target got every request, from the same client address and port');
      assert.equal(seen.size, N, 'each request exactly once');
      for (let i = 0; i < N; i++) assert.ok(seen.has(`/?reuse=${i}`), `request ${i} replayed`);
      assert.equal(rep.engine.sessionsCreated, N, 'one replayed session per connection');
      assert.equal(rep.engine.outcomes.completed, N, 'every session completed');
    });
  },
);
