import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { withLab, type Lab } from '../../src/lab/lab';
import type { AccessRecord } from '../../src/lab/access-log';
import type { NginxServer } from '../../src/lab/servers';
import type { LoadOptions } from '../../src/lab/loadgen';
import {
  INTERCEPT,
  TCPCOPY as TCPCOPY_JS,
  accessLogLines,
  processFigures,
  requestMultiset,
  runTcpcopy,
  skipUnlessRoot,
  startIntercept,
  startLiveTcpcopy,
  waitSettled,
  type TcpcopyJsonReport,
} from './replay-helpers';

/**
 * Issue 16, IPv6 end to end, in one dual-stack lab (2001:2::/48 next to 198.18.0.0/15): live
 * IPv6 replay into nginx over channel v2 (keep-alive and one request per connection, -n 2, a
 * -c prefix rewrite), dual-stack mixed traffic, offline replay of an IPv6 tcpdump capture, the
 * 1.x channel's notice and loss reason, sessions captured mid-stream, the doctor over IPv6, -o
 * Ethernet frames, and intercept --nfqueue on the target with ip6tables.
 * Every count comes from the servers' own access logs.
 */

const T4 = '198.18.0.2';
const T6 = '2001:2::2';
const A4 = '198.18.0.3';
const URL4 = 'http://198.18.1.1:80/';
const URL6 = 'http://[2001:2:0:1::1]:80/';
const PATHS = ['/', '/bytes/100', '/bytes/1000', '/status/404'];
const X6 = `80-[${T6}]:8080`;

function say(line: string): void {
  process.stdout.write(`# ${line}\n`);
}

const isV6 = (r: AccessRecord): boolean => r.remoteAddr.includes(':');

interface Counted {
  online: AccessRecord[];
  target: AccessRecord[];
  report: TcpcopyJsonReport | null;
  stderr: string;
  code: number | null;
}

/** Live tcpcopy with `args` while `loads` run (in parallel); waits for `factor` x online on the target. */
async function live(
  lab: Lab,
  name: string,
  s: { online: NginxServer; target: NginxServer },
  args: string[],
  loads: LoadOptions[],
  factor = 1,
): Promise<Counted> {
  const om = accessLogLines(s.online);
  const tm = accessLogLines(s.target);
  const tc = await startLiveTcpcopy(lab, args);
  let sent = 0;
  try {
    for (const r of await Promise.all(loads.map((l) => lab.load('client', l)))) sent += r.requestsSent;
  } catch (e) {
    await tc.stop(5000);
    throw e;
  }
  const online = accessLogLines(s.online) - om;
  await waitSettled(() => accessLogLines(s.target) - tm, Math.floor(online * factor), 30_000, 1500);
  const r = await tc.stop();
  const c: Counted = {
    online: s.online.readLog().records.slice(om),
    target: s.target.readLog().records.slice(tm),
    report: r.report,
    stderr: r.stderr,
    code: r.code,
  };
  const e = r.report?.engine;
  say(
    `${name}: sent=${sent} online=${c.online.length} (IPv6 ${c.online.filter(isV6).length}) target=${c.target.length} (IPv6 ${c.target.filter(isV6).length}) ratio=${(c.target.length / Math.max(1, c.online.length * factor)).toFixed(4)}; ${processFigures(r.report)}; sessions=${e?.sessionsCreated} outcomes=${JSON.stringify(e?.outcomes)} lost=${JSON.stringify(r.report?.accounting.lost)}`,
  );
  assert.equal(r.code, 0, `tcpcopy exit ${r.code}: ${r.stderr.slice(-2000)}`);
  return c;
}

function load(url: string, lab: Lab, keepAlive: boolean, requests: number, concurrency: number): LoadOptions {
  const v6 = url.includes('[');
  return {
    url,
    requests,
    durationMs: 15_000,
    concurrency,
    keepAlive,
    paths: PATHS,
    localAddresses: v6 ? (lab.hosts.client.addresses6 ?? []) : lab.hosts.client.addresses,
  };
}

/** target/expected >= 99.9% and not above; the request multiset equal (x factor). */
function assertCopied(name: string, c: Counted, factor = 1): void {
  const want = c.online.length * factor;
  assert.ok(c.online.length > 0, `${name}: online logged nothing`);
  assert.ok(c.target.length >= want * 0.999, `${name}: target ${c.target.length} of ${want}`);
  assert.ok(c.target.length <= want, `${name}: target ${c.target.length} > ${want}`);
  if (c.target.length === want) {
    const m = requestMultiset(c.online);
    for (const [k, v] of m) m.set(k, v * factor);
    assert.deepEqual(requestMultiset(c.target), m, `${name}: requests differ`);
  }
}

test('IPv6 end to end in a dual-stack lab (issue 16)', { skip: skipUnlessRoot(), timeout: 900_000 }, async (t) => {
  await withLab({ prefix: 'tcv6', clientAddresses: 20, ipv6: true }, async (lab) => {
    const h = lab.hosts;
    assert.equal(h.target.ip6, T6);
    const addrs6 = new Set(h.client.addresses6 ?? []);
    const s = {
      online: await lab.startNginx('online', { port: 80 }),
      target: await lab.startNginx('target', { port: 8080 }),
    };
    const secret = path.join(lab.dir, 'secret');
    fs.writeFileSync(secret, 'the IPv6 end-to-end test secret\n');
    const icp = await startIntercept(lab, ['--secret-file', secret]);
    const v2 = ['-s', A4, '--secret-file', secret];

    await t.test('IPv6 only, keep-alive (10 connections) and one request per connection', async () => {
      const c = await live(
        lab,
        'v6',
        s,
        ['-x', X6, ...v2],
        [load(URL6, lab, true, 3000, 10), load(URL6, lab, false, 1000, 10)],
      );
      assert.ok(c.online.every(isV6), 'the load was IPv6 only');
      assertCopied('v6', c);
      const foreign = c.target.filter((r) => !addrs6.has(r.remoteAddr));
      assert.deepEqual(foreign.slice(0, 3), [], 'every replayed request came from an original IPv6 client address');
      assert.equal(c.report?.accounting.balanced, true);
    });

    await t.test('IPv6 -n 2: every session twice', async () => {
      const c = await live(
        lab,
        'v6 -n 2',
        s,
        ['-x', X6, ...v2, '-n', '2'],
        [load(URL6, lab, true, 1500, 10), load(URL6, lab, false, 500, 10)],
        2,
      );
      assertCopied('v6 -n 2', c, 2);
      const ports = new Set(c.target.map((r) => `${r.remoteAddr}:${r.remotePort}`));
      const onlinePorts = new Set(c.online.map((r) => `${r.remoteAddr}:${r.remotePort}`));
      assert.ok(
        ports.size >= onlinePorts.size * 2 * 0.999,
        `${ports.size} client endpoints for ${onlinePorts.size} x 2`,
      );
    });

    await t.test('-c 2001:2:0:2::/64: clients moved to another prefix, interface ids kept', async () => {
      const c = await live(
        lab,
        'v6 -c',
        s,
        ['-x', X6, ...v2, '-c', '2001:2:0:2::/64'],
        [load(URL6, lab, true, 1500, 10)],
      );
      assertCopied('v6 -c', c);
      const want = new Set(c.online.map((r) => r.remoteAddr.replace(/^2001:2:0:1::/, '2001:2:0:2::')));
      assert.deepEqual(new Set(c.target.map((r) => r.remoteAddr)), want);
    });

    await t.test('dual stack: IPv4 and IPv6 clients at once, each to the target of its family', async () => {
      const c = await live(
        lab,
        'dual',
        s,
        ['-x', `80-${T4}:8080,${X6}`, ...v2],
        [
          load(URL4, lab, true, 1500, 10),
          load(URL6, lab, true, 1500, 10),
          load(URL4, lab, false, 500, 5),
          load(URL6, lab, false, 500, 5),
        ],
      );
      assertCopied('dual', c);
      const o6 = c.online.filter(isV6).length;
      const t6 = c.target.filter(isV6).length;
      assert.ok(o6 > 0 && c.online.length - o6 > 0, 'both families in the load');
      assert.ok(t6 >= o6 * 0.999 && t6 <= o6, `IPv6: target ${t6} of ${o6}`);
      const t4 = c.target.length - t6;
      const o4 = c.online.length - o6;
      assert.ok(t4 >= o4 * 0.999 && t4 <= o4, `IPv4: target ${t4} of ${o4}`);
      // no translation: the IPv4 requests reached the IPv4 target address, the IPv6 ones the IPv6 one
      const v4addrs = new Set(h.client.addresses);
      assert.ok(c.target.every((r) => (isV6(r) ? addrs6.has(r.remoteAddr) : v4addrs.has(r.remoteAddr))));
    });

    await t.test('offline replay of an IPv6 tcpdump capture', async () => {
      const file = path.join(lab.dir, 'online6.pcap');
      const cap = await lab.capture('online', {
        dev: h.online.clientDev ?? h.online.dev,
        filter: 'ip6 and tcp port 80',
        file,
      });
      const om = accessLogLines(s.online);
      const ka = await lab.load('client', load(URL6, lab, true, 1200, 8));
      const sc = await lab.load('client', load(URL6, lab, false, 300, 8));
      await cap.stop();
      const recorded = (await s.online.waitForCount(om + ka.requestsSent + sc.requestsSent)).slice(om);
      assert.equal(recorded.length, 1500);
      const tm = accessLogLines(s.target);
      const r = await runTcpcopy(lab, ['-i', file, '-x', X6, ...v2]);
      const got = (await s.target.waitForCount(tm + recorded.length, 10_000)).slice(tm);
      say(
        `offline v6: recorded=${recorded.length} target=${got.length}; ${processFigures(r.report)}; lost=${JSON.stringify(r.report.accounting.lost)}`,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(got.length, recorded.length, `target logged ${got.length} of ${recorded.length}`);
      assert.deepEqual(requestMultiset(got), requestMultiset(recorded));
      assert.deepEqual(new Set(got.map((x) => x.remoteAddr)), new Set(recorded.map((x) => x.remoteAddr)));
    });

    await t.test('a 1.x channel: IPv6 sessions are announced at start-up and lost as noIpv6Channel', async () => {
      // a second, 1.x intercept on another port (the v2 one keeps running)
      const icp1 = await startIntercept(lab, ['-p', '36600']);
      try {
        const c = await live(
          lab,
          'v6 over 1.x',
          s,
          ['-x', `80-${T4}:8080,${X6}`, '-s', `${A4}:36600`],
          [load(URL6, lab, true, 300, 5), load(URL4, lab, true, 300, 5)],
        );
        assert.match(c.stderr, /IPv6 transfer 80-\[2001:2::2\]:8080 over a 1\.x channel.*NOT replayed.*--secret-file/);
        assert.equal(c.target.filter(isV6).length, 0, 'no IPv6 request reached the target');
        const o4 = c.online.filter((r) => !isV6(r)).length;
        assert.equal(c.target.length, o4, 'the IPv4 requests were replayed');
        const lost = c.report?.accounting.lost['noIpv6Channel'] ?? 0;
        assert.equal(lost, c.online.filter(isV6).length, 'every IPv6 request counted under its own reason');
        assert.equal(c.report?.accounting.balanced, true);
      } finally {
        await icp1.stop('SIGTERM', 5000);
      }
    });

    await t.test('IPv6 sessions captured mid-stream (no SYN) are replayed', async () => {
      const file = path.join(lab.dir, 'mid6.pcap');
      const om = accessLogLines(s.online);
      const running = lab.load('client', { ...load(URL6, lab, true, 2400, 5), durationMs: 60_000, rate: 400 });
      await s.online.waitForCount(om + 600, 30_000);
      const cap = await lab.capture('online', {
        dev: h.online.clientDev ?? h.online.dev,
        filter: 'ip6 and tcp port 80',
        file,
      });
      const sum = await running;
      await cap.stop();
      await s.online.waitForCount(om + sum.requestsSent);
      const tm = accessLogLines(s.target);
      const r = await runTcpcopy(lab, ['-i', file, '-x', X6, ...v2]);
      const captured = r.report.accounting.captured;
      const got = await waitSettled(() => accessLogLines(s.target) - tm, captured, 15_000, 1000);
      const e = r.report.engine as TcpcopyJsonReport['engine'] & { sessionsSynthesized?: number };
      say(
        `mid-stream v6: load=${sum.requestsSent} captured=${captured} target=${got} synthesized=${e.sessionsSynthesized}; lost=${JSON.stringify(r.report.accounting.lost)}`,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.ok(captured > 300 && captured < sum.requestsSent, `the capture holds the later part only (${captured})`);
      assert.ok((e.sessionsSynthesized ?? 0) > 0, 'sessions were picked up mid-stream');
      assert.ok(got >= captured * 0.999 && got <= captured, `target ${got} of ${captured} captured requests`);
    });

    await t.test('doctor over IPv6: the probe SYN from an IPv6 client, the target and assistant checks', async () => {
      type Doc = { results: { name: string; verdict: string; detail: string }[] };
      const run = async (
        host: 'online' | 'assistant' | 'target',
        args: string[],
      ): Promise<{ code: number; text: string; doc: Doc }> => {
        const cli = host === 'online' ? TCPCOPY_JS : INTERCEPT;
        const r = await lab.exec(host, [process.execPath, cli, 'doctor', ...args, '--json'], { timeoutMs: 30_000 });
        const doc = JSON.parse(r.stdout) as Doc;
        return { code: r.code, doc, text: doc.results.map((x) => `${x.verdict} ${x.name}: ${x.detail}`).join('\n# ') };
      };
      const tc = await run('online', ['-x', X6, ...v2, '--client', '2001:2:0:1::fe', '--wait', '2000']);
      say(`tcpcopy doctor v6 (exit ${tc.code}):\n# ${tc.text}`);
      assert.equal(tc.doc.results.find((x) => x.name === 'probe')?.verdict, 'ok', tc.text);
      assert.equal(tc.code, 0);
      // over a 1.x channel the IPv6 probe fails, naming channel v2
      const icp1 = await startIntercept(lab, ['-p', '36600']);
      try {
        const v1 = await run('online', ['-x', X6, '-s', `${A4}:36600`, '--client', '2001:2:0:1::fe', '--wait', '500']);
        const p = v1.doc.results.find((x) => x.name === 'probe');
        assert.equal(p?.verdict, 'fail', v1.text);
        assert.match(p?.detail ?? '', /channel v2/);
        assert.notEqual(v1.code, 0);
      } finally {
        await icp1.stop('SIGTERM', 5000);
      }
      const tg = await run('target', [
        '--target',
        '--client-net',
        '2001:2:0:1::/64',
        '--assistant',
        '2001:2::3',
        '--port',
        '8080',
      ]);
      say(`intercept doctor --target v6 (exit ${tg.code}):\n# ${tg.text}`);
      assert.equal(tg.code, 0, tg.text);
      assert.equal(tg.doc.results.find((x) => x.name === 'route')?.verdict, 'ok');
      const as = await run('assistant', ['-i', h.assistant.dev]);
      assert.equal(as.doc.results.find((x) => x.name === 'ipv6-forwarding')?.verdict, 'ok', as.text);
      // a route that bypasses the assistant is named
      await lab.exec('target', [
        'ip',
        '-6',
        'route',
        'replace',
        '2001:2:0:1::/64',
        'via',
        '2001:2::1',
        'dev',
        h.target.dev,
      ]);
      const bad = await run('target', ['--target', '--client-net', '2001:2:0:1::/64', '--assistant', '2001:2::3']);
      await lab.exec('target', [
        'ip',
        '-6',
        'route',
        'replace',
        '2001:2:0:1::/64',
        'via',
        '2001:2::3',
        'dev',
        h.target.dev,
      ]);
      assert.equal(bad.doc.results.find((x) => x.name === 'route')?.verdict, 'fail', bad.text);
      assert.notEqual(bad.code, 0);
    });

    await t.test('-o: IPv6 copies as Ethernet frames (ethertype 86dd) to the target MAC', async () => {
      const mac = (await lab.exec('target', ['cat', `/sys/class/net/${h.target.dev}/address`])).stdout.trim();
      assert.match(mac, /^[0-9a-f:]{17}$/);
      const c = await live(
        lab,
        'v6 -o',
        s,
        ['-x', `80-[${T6}]:8080@${mac}`, ...v2, '-o', h.online.dev],
        [load(URL6, lab, true, 1000, 5)],
      );
      assertCopied('v6 -o', c);
    });

    await icp.stop('SIGTERM', 5000);

    await t.test('intercept --nfqueue on the target with ip6tables (no assistant route)', async () => {
      const dev = h.target.dev;
      const sh = async (argv: string[]): Promise<string> => {
        const r = await lab.exec('target', argv);
        assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
        return r.stdout;
      };
      // the IPv6 client prefix goes to online instead (a plain gateway); replies are queued and dropped
      await sh(['ip', '-6', 'route', 'del', '2001:2:0:1::/64']);
      await sh(['ip', '-6', 'route', 'add', '2001:2:0:1::/64', 'via', '2001:2::1', 'dev', dev]);
      await sh(['ip6tables', '-I', 'OUTPUT', '-p', 'tcp', '--sport', '8080', '-j', 'NFQUEUE', '--queue-num', '0']);
      const rep = path.join(lab.dir, 'icp-nfq6.json');
      const nfq = lab.spawn(
        'target',
        [
          process.execPath,
          INTERCEPT,
          '--nfqueue',
          '-q',
          '4096',
          '-x',
          '2001:2::1',
          '--secret-file',
          secret,
          '--report',
          rep,
        ],
        { stopSignal: 'SIGINT', graceMs: 10_000 },
      );
      try {
        for (let i = 0; i < 600 && !/listening on/.test(nfq.stderr); i++) {
          assert.ok(nfq.running, `intercept exited: ${nfq.stderr}`);
          await new Promise((r) => setTimeout(r, 50));
        }
        const cap = await lab.capture('target', {
          filter: 'ip6 and tcp and src port 8080',
          file: path.join(lab.dir, 'target6.pcap'),
        });
        const c = await live(
          lab,
          'v6 nfqueue',
          s,
          ['-x', X6, '-s', T4, '--secret-file', secret],
          [load(URL6, lab, true, 2000, 10), load(URL6, lab, false, 500, 10)],
        );
        const capStats = await cap.stop();
        assertCopied('v6 nfqueue', c);
        // replies to the clients were taken by the queue: none left the target (but the pass-listed ones)
        say(`v6 nfqueue: replies on the target's wire: ${capStats.packets}`);
        assert.equal(capStats.packets, 0, 'no reply from 8080 left the target');
      } finally {
        await nfq.stop('SIGINT', 10_000);
      }
      const st = JSON.parse(fs.readFileSync(rep, 'utf8')) as { routed: number; capture: { received: number } };
      say(`v6 nfqueue: intercept routed=${st.routed} received=${st.capture.received}`);
      assert.ok(st.routed > 0);
    });
  });
});
