import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { withLab } from '../../src/lab/lab';
import { skipUnlessRoot, runTcpcopy, startIntercept, waitSettled } from './replay-helpers';

const MB10 = 10 * 1024 * 1024;

/**
 * Issue 4, "windows" and "large replies": a 10 MB upload (POST /upload, counted by nginx in
 * $request_length) and a 10 MB download (GET /bytes/10485760, $body_bytes_sent) replay with the
 * target's log showing the same byte counts as the online server's. The capture uses a 64 MB
 * kernel buffer and must drop nothing.
 */
test('a 10 MB upload and a 10 MB download replay with the right byte counts', { skip: skipUnlessRoot() }, async () => {
  await withLab(
    { prefix: 'tcb3', clientAddresses: 2, keepDir: process.env['TCB_TRACE'] !== undefined },
    async (lab) => {
      const online = await lab.startNginx('online', { port: 80, bodySizes: [MB10] });
      const target = await lab.startNginx('target', { port: 8080, bodySizes: [MB10] });
      const icp = await startIntercept(lab);
      const file = path.join(lab.dir, 'large.pcap');
      const dev = lab.hosts.online.clientDev ?? lab.hosts.online.dev;
      const td = lab.spawn(
        'online',
        [
          'tcpdump',
          '-n',
          '-Z',
          'root',
          '--immediate-mode',
          '-B',
          '65536',
          '-s',
          '0',
          '-i',
          dev,
          '-U',
          '-w',
          file,
          'tcp port 80',
        ],
        { label: 'tcpdump-large', stopSignal: 'SIGINT', graceMs: 5000 },
      );
      await td.waitFor(/listening on/, 10_000);
      const up = await lab.load('client', {
        url: 'http://198.18.1.1:80/upload',
        requests: 1,
        durationMs: 20_000,
        concurrency: 1,
        keepAlive: false,
        bodyBytes: MB10,
        timeoutMs: 20_000,
      });
      const down = await lab.load('client', {
        url: `http://198.18.1.1:80/bytes/${MB10}`,
        requests: 1,
        durationMs: 20_000,
        concurrency: 1,
        keepAlive: false,
        timeoutMs: 20_000,
      });
      await td.stop('SIGINT', 5000);
      const captured = Number(/(\d+) packets? captured/.exec(td.stderr)?.[1] ?? NaN);
      const dropped = Number(/(\d+) packets? dropped by kernel/.exec(td.stderr)?.[1] ?? NaN);
      process.stdout.write(
        `# capture: ${captured} packets, ${dropped} dropped by kernel; load ok: upload ${up.responsesOk} download ${down.responsesOk}\n`,
      );
      assert.equal(dropped, 0, 'the capture dropped nothing');
      assert.equal(up.responsesOk + down.responsesOk, 2);
      const rec = await online.waitForCount(2);
      const onUp = rec.find((x) => x.method === 'POST');
      const onDown = rec.find((x) => x.method === 'GET');
      assert.ok(onUp && onDown);
      assert.ok(onUp.requestLength > MB10, `online upload request_length ${onUp.requestLength}`);
      assert.equal(onDown.bytesSent, MB10);

      const trace = process.env['TCB_TRACE']
        ? await lab.capture('target', { filter: 'tcp', file: path.join(lab.dir, 'target.pcap'), snaplen: 96 })
        : null;
      const t0 = Date.now();
      const r = await runTcpcopy(lab, ['-i', file, '-x', '80-198.18.0.2:8080', '-s', '198.18.0.3']);
      await waitSettled(() => target.readLog().records.length, 2, 20_000, 1000);
      await trace?.stop();
      const got = target.readLog().records;
      const tUp = got.find((x) => x.method === 'POST');
      const tDown = got.find((x) => x.method === 'GET');
      const e = r.report.engine;
      const outcomes = Object.entries(e.outcomes)
        .filter(([, v]) => v > 0)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
      process.stdout.write(
        `# target: upload request_length ${tUp?.requestLength} (online ${onUp.requestLength}) status ${tUp?.status}; ` +
          `download bytes_sent ${tDown?.bytesSent} (online ${onDown.bytesSent}) status ${tDown?.status}; outcomes: ${outcomes}; ` +
          `retransTimeout=${e.retransTimeout} retransFast=${e.retransFast}; wall ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
      );
      process.stdout.write(`# intercept: ${icp.stderr.trim().split('\n').slice(-1).join('')}\n`);
      assert.equal(got.length, 2);
      assert.equal(tUp?.requestLength, onUp.requestLength);
      assert.equal(tUp?.status, 200);
      assert.equal(tDown?.bytesSent, MB10);
      assert.equal(tDown?.status, 200);
    },
  );
});
