import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { withLab } from '../../src/lab/lab';
import { skipUnlessRoot, runTcpcopy, startIntercept, TCPCOPY, waitSettled } from './replay-helpers';

/**
 * Issue 4, "sessions captured mid-stream": tcpdump starts once a keep-alive load has been served
 * 600 requests (about 1.5 s of it), so
 * no captured connection has its SYN. With -O nothing is replayed; without it every request in
 * the capture (>= 99.9%) must reach the target nginx (synthesized SYN + handshake ACK).
 */
test('a capture started mid-stream replays its requests (and none with -O)', { skip: skipUnlessRoot() }, async () => {
  await withLab({ prefix: 'tcb2', clientAddresses: 10 }, async (lab) => {
    const online = await lab.startNginx('online', { port: 80 });
    const target = await lab.startNginx('target', { port: 8080 });
    const icp = await startIntercept(lab);
    const file = path.join(lab.dir, 'mid.pcap');
    const paths = ['/', '/bytes/100', '/bytes/10000'];
    const load = lab.load('client', {
      url: 'http://198.18.1.1:80/',
      requests: 2400,
      durationMs: 60_000, // bounded by the count: every request is sent however slow the box
      concurrency: 5,
      keepAlive: true,
      rate: 400,
      paths,
    });
    // the capture starts mid-stream: once the online server has answered a quarter of the load
    const early = await online.waitForCount(600, 30_000);
    assert.ok(early.length >= 600, `the online server logged only ${early.length} requests`);
    const cap = await lab.capture('online', {
      dev: lab.hosts.online.clientDev ?? lab.hosts.online.dev,
      filter: 'tcp port 80',
      file,
    });
    const sum = await load;
    const capStats = await cap.stop();
    assert.equal(capStats.droppedByKernel ?? 0, 0);
    await online.waitForCount(sum.requestsSent);
    const ins = await lab.exec('online', [
      process.execPath,
      TCPCOPY,
      'inspect',
      file,
      '-x',
      '80-198.18.0.2:8080',
      '--json',
    ]);
    const j = JSON.parse(ins.stdout) as {
      requestSegments: number;
      transfers?: Array<{ sessions: number; sessionsWithSyn: number; sessionsWithoutSyn: number }>;
    };
    const inCapture = j.requestSegments;
    process.stdout.write(
      `# load: ${sum.requestsSent} requests; capture: ${inCapture} request segments, sessions ${JSON.stringify(j.transfers?.map((t) => [t.sessions, t.sessionsWithSyn, t.sessionsWithoutSyn]))}\n`,
    );
    assert.equal(sum.requestsSent, 2400, 'the whole load was sent');
    assert.ok(inCapture > 300 && inCapture < sum.requestsSent, 'the capture holds only the later part of the load');

    // -O: only sessions whose SYN was captured; there are none
    const r1 = await runTcpcopy(lab, ['-i', file, '-x', '80-198.18.0.2:8080', '-s', '198.18.0.3', '-O']);
    const withO = target.readLog().records.length;
    const e1 = r1.report.engine as typeof r1.report.engine & { sessionsNoSyn: number; requestsNoSyn: number };
    process.stdout.write(
      `# -O: exit ${r1.code}, target logged ${withO}, sessions created ${e1.sessionsCreated}, skipped ${e1.sessionsNoSyn}, packets sent ${e1.packetsSent}, lost ${JSON.stringify(r1.report.accounting.lost)}\n`,
    );
    assert.equal(r1.code, 0, `-O: exit code\n${r1.stderr}`);
    // nothing sent at all (so nothing can reach the target later), every connection skipped,
    // and every request of the capture accounted as lost for want of a SYN
    assert.equal(e1.packetsSent, 0, '-O: packets sent');
    assert.equal(e1.sessionsCreated, 0, '-O: sessions created');
    assert.ok(e1.sessionsNoSyn > 0, '-O: connections skipped');
    assert.ok(r1.report.accounting.captured > 300, `-O: ${r1.report.accounting.captured} requests captured`);
    assert.equal(r1.report.accounting.lost['noSyn'], r1.report.accounting.captured, '-O: every request lost as noSyn');
    assert.equal(r1.report.accounting.replayed, 0, '-O: nothing replayed');
    assert.equal(r1.report.accounting.unexplained, 0, '-O: nothing unexplained');
    assert.equal(withO, 0);

    const t0 = Date.now();
    const r2 = await runTcpcopy(lab, ['-i', file, '-x', '80-198.18.0.2:8080', '-s', '198.18.0.3']);
    const got = await waitSettled(() => target.readLog().records.length, inCapture, 15_000, 1000);
    const e = r2.report.engine;
    const outcomes = Object.entries(e.outcomes)
      .filter(([, v]) => v > 0)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    process.stdout.write(
      `# without -O: target ${got}/${inCapture} = ${((got / inCapture) * 100).toFixed(2)}%, sessions ${e.sessionsCreated}, outcomes: ${outcomes}, wall ${((Date.now() - t0) / 1000).toFixed(1)} s\n`,
    );
    process.stdout.write(`# intercept: ${icp.stderr.trim().split('\n').slice(-1).join('')}\n`);
    assert.ok(got >= Math.ceil(inCapture * 0.999), `${got} of ${inCapture}`);
    assert.ok(got <= inCapture, 'no request twice');
  });
});
