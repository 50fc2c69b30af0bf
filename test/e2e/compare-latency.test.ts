/**
 * Issue 15 part 6 end to end: latency side by side. Production nginx answers every path at
 * once; the target nginx answers one path (`/slow`) through a slow upstream (the lab's Node
 * server, `/sleep/300`, in the target's namespace) and the others at once. A live tcpcopy
 * --compare http over channel v2 takes production's response times from its capture's time
 * stamps and the target's from intercept's (stamped records). The report must show the
 * target's /slow latency above production's by about the delay, and no such gap on the other
 * endpoint; every latency measured with capture times and stamps; `tcpcopy compare-report`
 * prints the same figures again. The assertions are on the measured relation (>= 0.8 x the
 * delay the upstream adds), never on how fast our own code is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { withLab } from '../../src/lab/lab';
import { wireLatencies } from '../../src/lab/wire-latency';
import type { CompareSummary, DiffLine, EndpointSummary } from '../../src/compare/summary';
import {
  TCPCOPY,
  accessLogLines,
  lagFigures,
  processFigures,
  skipUnlessRoot,
  startIntercept,
  startLiveTcpcopy,
  waitSettled,
} from './replay-helpers';

const TARGET = '198.18.0.2';
const ASSISTANT = '198.18.0.3';
const ONLINE_URL = 'http://198.18.1.1:80/';
/** What the slow upstream waits before it answers, ms. */
const DELAY_MS = 300;
const OUT = path.join(__dirname, 'compare-latency-out');

function say(line: string): void {
  process.stdout.write(`# ${line}\n`);
}

function endpoint(s: CompareSummary, name: string): EndpointSummary {
  const e = s.endpoints.find((x) => x.endpoint === name);
  assert.ok(e, `endpoint ${name} in ${s.endpoints.map((x) => x.endpoint).join(', ')}`);
  return e;
}

const fmt = (e: EndpointSummary): string =>
  `${e.endpoint}: production ${e.latency.online.p50}/${e.latency.online.p90}/${e.latency.online.p99} ms, target ${e.latency.target.p50}/${e.latency.target.p90}/${e.latency.target.p99} ms (p50/p90/p99, ${e.counts.compared} compared)`;

test(
  "--compare latency: a target slow on one path shows it, on intercept's time stamps (issue 15 part 6)",
  { skip: skipUnlessRoot(), timeout: 300_000 },
  async () => {
    fs.rmSync(OUT, { recursive: true, force: true });
    fs.mkdirSync(OUT, { recursive: true });
    await withLab({ prefix: 'tclat', clientAddresses: 8 }, async (lab) => {
      const ok = `default_type text/plain; return 200 "ok\\n";`;
      const online = await lab.startNginx('online', {
        port: 80,
        extraServerConfig: `location = /slow { ${ok} } location = /api/fast { ${ok} }`,
      });
      // the upstream's answer is the same "ok\n" (Content-Type aside): only the time differs
      await lab.startNodeHttp('target', { port: 9100, bind: '127.0.0.1' });
      const target = await lab.startNginx('target', {
        port: 8080,
        extraServerConfig:
          // X-Target (not ignored) makes every exchange a diffs.jsonl line, with its exact latencies
          `location = /slow { proxy_pass http://127.0.0.1:9100/sleep/${DELAY_MS}; add_header X-Target 1; } ` +
          `location = /api/fast { add_header X-Target 1; ${ok} }`,
      });
      const secret = path.join(lab.dir, 'channel-secret');
      fs.writeFileSync(secret, 'tcpcopy-compare-latency-e2e-secret\n', { mode: 0o600 });
      const icp = await startIntercept(lab, ['--secret-file', secret, '--payload-max', '65535']);
      // the target's own view, for the report: request arrival to first response byte on its link
      const wire = await lab.capture('target', {
        filter: 'tcp port 8080',
        file: path.join(lab.dir, 'target.pcap'),
        snaplen: 128,
      });
      const om = accessLogLines(online);
      const tm = accessLogLines(target);
      const dir = path.join(OUT, 'run');
      const tc = await startLiveTcpcopy(lab, [
        '-s',
        ASSISTANT,
        '--secret-file',
        secret,
        '-x',
        `80-${TARGET}:8080`,
        '--compare',
        'http',
        '--compare-out',
        dir,
      ]);
      try {
        const paths = ['/slow', '/api/fast'];
        await Promise.all([
          lab.load('client', {
            url: ONLINE_URL,
            requests: 60,
            durationMs: 20_000,
            concurrency: 4,
            keepAlive: true,
            paths,
          }),
          lab.load('client', {
            url: ONLINE_URL,
            requests: 20,
            durationMs: 20_000,
            concurrency: 2,
            keepAlive: false,
            paths,
          }),
        ]);
      } catch (e) {
        await tc.stop(5000);
        throw e;
      }
      const sent = accessLogLines(online) - om;
      await waitSettled(() => accessLogLines(target) - tm, sent, 30_000, 1500);
      const r = await tc.stop();
      await wire.stop();
      fs.copyFileSync(wire.file, path.join(OUT, 'target.pcap'));
      const w = await wireLatencies(wire.file, { serverPort: 8080 });
      const wms = [...w.latenciesUs].map((x) => x / 1000);
      const slowSent = online
        .readLog()
        .records.slice(om)
        .filter((x) => x.path === '/slow').length;
      say(
        `target's wire latencies (its capture): ${w.matched} matched, ${wms.filter((x) => x >= DELAY_MS * 0.8).length} >= ${DELAY_MS * 0.8} ms; ` +
          `fast ones p50 ${wms.filter((x) => x < DELAY_MS / 3)[Math.floor(wms.filter((x) => x < DELAY_MS / 3).length / 2)] ?? '-'} ms, max ${Math.max(...wms.filter((x) => x < DELAY_MS * 0.8))} ms`,
      );
      say(
        `online logged ${sent}, target ${accessLogLines(target) - tm}; ${processFigures(r.report)}; ${lagFigures(r.report)}; exit ${r.code}`,
      );
      const statuses = new Map<string, number>();
      for (const x of target.readLog().records.slice(tm)) {
        const k = `${x.path} ${x.status}`;
        statuses.set(k, (statuses.get(k) ?? 0) + 1);
      }
      say(`target statuses ${JSON.stringify([...statuses])}; outcomes ${JSON.stringify(r.report?.engine.outcomes)}`);
      assert.equal(r.code, 0, `tcpcopy exit ${r.code}:\n${r.stderr.slice(-3000)}`);
      const section = r.stdout.slice(r.stdout.indexOf('comparison ('));
      say(`report section:\n${section.replace(/^/gm, '#   ')}`);
      assert.match(icp.stderr + icp.stdout, /listening/);

      const s = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8')) as CompareSummary;
      const lines = fs
        .readFileSync(path.join(dir, 'diffs.jsonl'), 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as DiffLine);
      // first exchanges include the replayed handshake (SYN, SYN-ACK through intercept): printed
      for (const l of lines) if (l.index === 0) say(`  ${l.session} #0 ${l.request} ${JSON.stringify(l.latencyMs)}`);
      assert.equal(lines.length, sent, 'X-Target differs on every exchange: one diffs line each');
      // every /slow exchange shows the delay, none of the others does (per exchange, exact figures)
      for (const l of lines)
        if (l.request === 'GET /slow')
          assert.ok(l.latencyMs[1] >= DELAY_MS * 0.8, `${l.session} #${l.index}: ${l.latencyMs[1]}`);
        else assert.ok(l.latencyMs[1] < DELAY_MS * 0.8, `${l.session} #${l.index} ${l.request}: ${l.latencyMs[1]}`);
      // the target's own capture agrees: as many answers took the delay as there were /slow requests
      assert.equal(wms.filter((x) => x >= DELAY_MS * 0.8).length, slowSent, "target's capture: /slow answers delayed");
      const slow = endpoint(s, 'GET /slow');
      const fast = endpoint(s, 'GET /api/fast');
      say(fmt(slow));
      say(fmt(fast));
      say(`latency clocks ${JSON.stringify(s.latencyClocks)}`);
      assert.equal(s.identity, true);
      assert.equal(s.totals.exchanges, sent, 'every request production logged is an exchange');
      assert.equal(s.totals.compared, sent, 'all compared');
      assert.equal(slow.counts.compared + fast.counts.compared, sent);
      assert.ok(slow.counts.compared >= 30 && fast.counts.compared >= 30);
      // every latency from capture times (production) and intercept's stamps (the target)
      assert.deepEqual(s.latencyClocks, { onlineCapture: sent, onlineEngine: 0, targetStamped: sent, targetRead: 0 });
      // the measured relation: the target is slower on /slow by about the upstream's delay ...
      assert.ok(slow.latency.target.p50 >= DELAY_MS * 0.8, `target /slow p50 ${slow.latency.target.p50}`);
      assert.ok(slow.latency.target.p50 - slow.latency.online.p50 >= DELAY_MS * 0.8, 'gap on /slow');
      // ... and production answered /slow as fast as the other path (nginx returns at once)
      assert.ok(slow.latency.online.p90 < DELAY_MS / 3, `production /slow p90 ${slow.latency.online.p90}`);
      // ... while the other endpoint shows no such gap
      assert.ok(fast.latency.target.p50 < DELAY_MS / 3, `target /api/fast p50 ${fast.latency.target.p50}`);
      assert.ok(fast.latency.target.p50 - fast.latency.online.p50 < DELAY_MS / 3, 'no gap on /api/fast');
      assert.ok(
        slow.latency.online.count === slow.counts.compared && slow.latency.target.count === slow.counts.compared,
      );
      // the same figures in the text report, the page, and again from compare-report
      const row = (text: string, e: EndpointSummary): boolean =>
        text.includes(
          `${e.latency.online.p50}/${e.latency.online.p90}/${e.latency.online.p99}`.padStart(26) +
            '  ' +
            `${e.latency.target.p50}/${e.latency.target.p90}/${e.latency.target.p99}`.padStart(22),
        );
      assert.ok(row(section, slow) && row(section, fast), 'text report rows');
      assert.match(section, /latency legend:/);
      const html = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
      assert.match(html, /<ul id="latency-legend">/);
      fs.rmSync(path.join(dir, 'report.html'));
      const again = execFileSync(process.execPath, [TCPCOPY, 'compare-report', dir], { encoding: 'utf8' });
      assert.ok(row(again, slow) && row(again, fast), 'compare-report prints the same figures');
      assert.equal(
        fs.readFileSync(path.join(dir, 'report.html'), 'utf8'),
        html,
        'report.html rendered again, the same',
      );
    });
  },
);
