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
 * Ethernet frames, -M splitting (no packet above the MTU, no IPv6 fragment on the target's wire),
 * -H for ::1 clients, and intercept --nfqueue on the target with ip6tables.
 * Every count comes from the servers' own access logs (and tcpdump's reading of the captures);
 * every replayed request is checked to come from an expected client address.
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
  loadHost: 'client' | 'online' = 'client',
): Promise<Counted> {
  const om = accessLogLines(s.online);
  const tm = accessLogLines(s.target);
  const tc = await startLiveTcpcopy(lab, args);
  let sent = 0;
  try {
    for (const r of await Promise.all(loads.map((l) => lab.load(loadHost, l)))) sent += r.requestsSent;
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

/** Every record came from one of `from` (the expected client addresses). */
function assertFrom(name: string, recs: readonly AccessRecord[], from: ReadonlySet<string>): void {
  const foreign = recs.filter((r) => !from.has(r.remoteAddr));
  assert.deepEqual(
    foreign.slice(0, 3).map((r) => r.remoteAddr),
    [],
    `${name}: ${foreign.length} of ${recs.length} requests from unexpected client addresses`,
  );
}

/** Per family: target within [99.9%, 100%] of `factor` x online. */
function assertPerFamily(name: string, c: Counted, factor = 1): void {
  const o6 = c.online.filter(isV6).length;
  const o4 = c.online.length - o6;
  const t6 = c.target.filter(isV6).length;
  const t4 = c.target.length - t6;
  assert.ok(o6 > 0 && o4 > 0, `${name}: both families in the load (IPv4 ${o4}, IPv6 ${o6})`);
  assert.ok(t6 >= o6 * factor * 0.999 && t6 <= o6 * factor, `${name}: IPv6 target ${t6} of ${o6 * factor}`);
  assert.ok(t4 >= o4 * factor * 0.999 && t4 <= o4 * factor, `${name}: IPv4 target ${t4} of ${o4 * factor}`);
}

/** Lines of `tcpdump -nn -r file [filter]` on `host`. */
async function tcpdumpLines(lab: Lab, host: 'online' | 'target', file: string, filter?: string): Promise<string[]> {
  const r = await lab.exec(host, ['tcpdump', '-nn', '-r', file, ...(filter === undefined ? [] : [filter])], {
    timeoutMs: 60_000,
  });
  assert.equal(r.code, 0, `tcpdump -r ${file} ${filter ?? ''}: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.trim() !== '');
}

test('IPv6 end to end in a dual-stack lab (issue 16)', { skip: skipUnlessRoot(), timeout: 900_000 }, async (t) => {
  await withLab({ prefix: 'tcv6', clientAddresses: 20, ipv6: true }, async (lab) => {
    const h = lab.hosts;
    assert.equal(h.target.ip6, T6);
    const addrs6 = new Set(h.client.addresses6 ?? []);
    const addrs4 = new Set(h.client.addresses);
    const addrsBoth = new Set([...addrs4, ...addrs6]);
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
      assertFrom('v6', c.target, addrs6);
      assert.equal(c.report?.accounting.balanced, true);
    });

    await t.test('-n 2, IPv6 only and dual stack: every session twice', async () => {
      const c = await live(
        lab,
        'v6 -n 2',
        s,
        ['-x', X6, ...v2, '-n', '2'],
        [load(URL6, lab, true, 1500, 10), load(URL6, lab, false, 500, 10)],
        2,
      );
      assert.ok(c.online.every(isV6), 'the load was IPv6 only');
      assertCopied('v6 -n 2', c, 2);
      assertFrom('v6 -n 2', c.target, addrs6);
      const d = await live(
        lab,
        'dual -n 2',
        s,
        ['-x', `80-${T4}:8080,${X6}`, ...v2, '-n', '2'],
        [
          load(URL6, lab, true, 1000, 5),
          load(URL4, lab, true, 1000, 5),
          load(URL6, lab, false, 300, 5),
          load(URL4, lab, false, 300, 5),
        ],
        2,
      );
      assertCopied('dual -n 2', d, 2);
      assertPerFamily('dual -n 2', d, 2);
      assertFrom('dual -n 2', d.target, addrsBoth);
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
        [load(URL6, lab, true, 1500, 10), load(URL6, lab, false, 300, 5)],
      );
      assertCopied('v6 -c', c);
      const want = new Set(c.online.map((r) => r.remoteAddr.replace(/^2001:2:0:1::/, '2001:2:0:2::')));
      assert.ok([...want].every((a) => a.startsWith('2001:2:0:2::')));
      assert.deepEqual(new Set(c.target.map((r) => r.remoteAddr)), want);
      // dual stack: the IPv6 item applies to IPv6 clients only, IPv4 clients keep their addresses
      const d = await live(
        lab,
        'dual -c',
        s,
        ['-x', `80-${T4}:8080,${X6}`, ...v2, '-c', '2001:2:0:2::/64'],
        [load(URL6, lab, true, 1000, 5), load(URL4, lab, true, 1000, 5), load(URL4, lab, false, 300, 5)],
      );
      assertCopied('dual -c', d);
      assertPerFamily('dual -c', d);
      const wantD = new Set(d.online.map((r) => r.remoteAddr.replace(/^2001:2:0:1::/, '2001:2:0:2::')));
      assert.deepEqual(new Set(d.target.map((r) => r.remoteAddr)), wantD);
      assertFrom(
        'dual -c',
        d.target,
        new Set([...addrs4, ...[...addrs6].map((a) => a.replace(/^2001:2:0:1::/, '2001:2:0:2::'))]),
      );
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
      // no translation: each request kept its family's original client address
      assertFrom('dual', c.target, addrsBoth);
      assert.deepEqual(new Set(c.target.map((r) => r.remoteAddr)), new Set(c.online.map((r) => r.remoteAddr)));
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
      assertFrom('offline v6', got, addrs6);
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
      const onlineRecs = s.online.readLog().records.slice(om);
      // the requests in the capture, counted by tcpdump (not by tcpcopy): each GET is one client
      // segment with payload; the same segment seen twice in the file (src, dst, seq) counts once
      const segs = (await tcpdumpLines(lab, 'online', file, 'tcp dst port 80')).filter((l) => / length [1-9]/.test(l));
      const inCapture = new Set(segs.map((l) => l.slice(l.indexOf(' ') + 1))).size;
      const r = await runTcpcopy(lab, ['-i', file, '-x', X6, ...v2]);
      const captured = r.report.accounting.captured;
      await waitSettled(() => accessLogLines(s.target) - tm, inCapture, 15_000, 1000);
      const got = s.target.readLog().records.slice(tm);
      const e = r.report.engine as TcpcopyJsonReport['engine'] & { sessionsSynthesized?: number };
      say(
        `mid-stream v6: load=${sum.requestsSent} online=${onlineRecs.length} client segments with payload in the capture (tcpdump)=${segs.length}, distinct=${inCapture} tcpcopy captured=${captured} target=${got.length} synthesized=${e.sessionsSynthesized}; lost=${JSON.stringify(r.report.accounting.lost)}`,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(onlineRecs.length, sum.requestsSent);
      assert.ok(
        inCapture > 300 && inCapture < sum.requestsSent,
        `the capture holds the later part only (${inCapture})`,
      );
      assert.ok((e.sessionsSynthesized ?? 0) > 0, 'sessions were picked up mid-stream');
      assert.ok(
        got.length >= inCapture * 0.999 && got.length <= inCapture,
        `target ${got.length} of ${inCapture} captured requests`,
      );
      assertFrom('mid-stream v6', got, addrs6);
      // each connection's replayed requests are the last ones the online server logged for it
      const byConn = (recs: readonly AccessRecord[]): Map<string, string[]> => {
        const m = new Map<string, string[]>();
        for (const x of recs) {
          const k = `[${x.remoteAddr}]:${x.remotePort}`;
          const l = m.get(k) ?? [];
          l.push(x.path);
          m.set(k, l);
        }
        return m;
      };
      const on = byConn(onlineRecs);
      for (const [k, paths] of byConn(got)) {
        const all = on.get(k) ?? [];
        assert.ok(paths.length <= all.length, `${k}: ${paths.length} replayed of ${all.length}`);
        assert.deepEqual(
          paths,
          all.slice(all.length - paths.length),
          `${k}: the replayed requests are the online tail`,
        );
      }
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
      assertFrom('v6 -o', c.target, addrs6);
    });

    await t.test('-M 1280: large IPv6 requests split to the MTU, no IPv6 fragment, bodies whole', async () => {
      const file = path.join(lab.dir, 'mtu6-target.pcap');
      const cap = await lab.capture('target', { dev: h.target.dev, filter: 'ip6 and tcp dst port 8080', file });
      const c = await live(
        lab,
        'v6 -M 1280',
        s,
        ['-x', X6, ...v2, '-M', '1280'],
        [
          {
            url: 'http://[2001:2:0:1::1]:80/upload',
            requests: 200,
            durationMs: 15_000,
            concurrency: 10,
            keepAlive: true,
            bodyBytes: 20_000,
            localAddresses: h.client.addresses6 ?? [],
          },
        ],
      );
      await cap.stop();
      const all = await tcpdumpLines(lab, 'target', file);
      // 14-byte Ethernet header + at most 1280 bytes of IPv6 packet
      const big = await tcpdumpLines(lab, 'target', file, 'greater 1295');
      // a fragment header right after the IPv6 header (our packets carry no other extension header)
      const frag = await tcpdumpLines(lab, 'target', file, 'ip6[6] == 44');
      const bytes = (recs: AccessRecord[]): number => recs.reduce((a, b) => a + b.requestLength, 0);
      say(
        `v6 -M 1280: packets to 8080 on the target=${all.length}, above 1280 bytes=${big.length}, IPv6 fragments=${frag.length}; request bytes online=${bytes(c.online)} target=${bytes(c.target)}`,
      );
      assert.ok(all.length > 200 * Math.ceil(20_000 / 1220), `${all.length} packets captured on the target`);
      assert.deepEqual(big.slice(0, 3), [], 'packets above -M reached the target');
      assert.deepEqual(frag.slice(0, 3), [], 'IPv6 fragments reached the target');
      assert.equal(c.online.length, 200);
      assert.equal(c.target.length, c.online.length);
      assert.ok(c.target.every((r) => r.method === 'POST' && r.status === 200));
      assert.equal(bytes(c.target), bytes(c.online), 'the target read every body byte');
      assertFrom('v6 -M 1280', c.target, addrs6);
    });

    await t.test('-H: ::1 clients (the online server talking to itself) replayed from an IPv6 address', async () => {
      const H6 = '2001:2:0:1::99';
      const c = await live(
        lab,
        'v6 -H',
        s,
        ['-x', X6, ...v2, '-H', H6],
        [
          { url: 'http://[::1]:80/', requests: 600, durationMs: 15_000, concurrency: 5, keepAlive: true, paths: PATHS },
          {
            url: 'http://[::1]:80/',
            requests: 200,
            durationMs: 15_000,
            concurrency: 5,
            keepAlive: false,
            paths: PATHS,
          },
        ],
        1,
        'online',
      );
      assert.ok(
        c.online.every((r) => r.remoteAddr === '::1'),
        'the online server logged ::1 clients',
      );
      assertCopied('v6 -H', c);
      assertFrom('v6 -H', c.target, new Set([H6]));
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
        assertFrom('v6 nfqueue', c.target, addrs6);
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
