/**
 * End-to-end test of the lab itself (root: network namespaces). Prefix `tcl`.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseNginxLine, summarise } from '../../src/lab/access-log';
import { Lab, withLab } from '../../src/lab/lab';
import { parseLoadArgs, loadArgs } from '../../src/lab/loadgen-main';
import { allNamespaces } from '../../src/lab/names';
import { listNamespaces } from '../../src/lab/topology';
import { pidAlive } from '../../src/lab/sh';
import { skipUnlessRoot } from './replay-helpers';

const PREFIX = 'tcl';

/** TCP payloads (as latin1 strings) and IP total lengths of the IPv4/TCP packets in an Ethernet pcap. */
function readPcap(file: string): { payloads: string[]; ipLengths: number[]; packets: number } {
  const b = readFileSync(file);
  const payloads: string[] = [];
  const ipLengths: number[] = [];
  if (b.length < 24) return { payloads, ipLengths, packets: 0 };
  const le = b.readUInt32LE(0) === 0xa1b2c3d4 || b.readUInt32LE(0) === 0xa1b23c4d;
  const u32 = (o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  assert.equal(u32(20) & 0xffff, 1, 'link type Ethernet');
  let off = 24;
  let packets = 0;
  while (off + 16 <= b.length) {
    const incl = u32(off + 8);
    const p = b.subarray(off + 16, off + 16 + incl);
    off += 16 + incl;
    packets++;
    if (p.length < 34 || p.readUInt16BE(12) !== 0x0800) continue;
    const ip = p.subarray(14);
    const ihl = (ip[0]! & 0x0f) * 4;
    ipLengths.push(ip.readUInt16BE(2));
    if (ip[9] !== 6) continue;
    const tcp = ip.subarray(ihl);
    const doff = (tcp[12]! >> 4) * 4;
    payloads.push(tcp.subarray(doff, ip.readUInt16BE(2) - ihl).toString('latin1'));
  }
  return { payloads, ipLengths, packets };
}

async function labNamespaces(prefix: string): Promise<string[]> {
  const mine = new Set(allNamespaces(prefix));
  return (await listNamespaces()).filter((n) => mine.has(n));
}

test('access-log and loadgen argument helpers', () => {
  const r = parseNginxLine('198.18.1.7 40000 [1700000000.123] "POST /upload?x=1 HTTP/1.1" 200 9 100140 0.002 17 3');
  assert.ok(r);
  assert.equal(r.remoteAddr, '198.18.1.7');
  assert.equal(r.remotePort, 40000);
  assert.equal(r.method, 'POST');
  assert.equal(r.path, '/upload');
  assert.equal(r.url, '/upload?x=1');
  assert.equal(r.requestLength, 100140);
  assert.equal(r.msec, 1700000000123);
  assert.equal(r.connectionRequests, 3);
  assert.equal(parseNginxLine('garbage "'), null);
  const s = summarise([r, { ...r, remoteAddr: '198.18.1.8', path: '/' }]);
  assert.deepEqual(s.addresses, ['198.18.1.7', '198.18.1.8']);
  assert.equal(s.byPath['/upload'], 1);
  const o = {
    url: 'http://198.18.1.1/',
    requests: 5,
    durationMs: 100,
    keepAlive: false,
    paths: ['/a', '/b'],
    localAddresses: ['198.18.1.2'],
    bodyBytes: 10,
  };
  assert.deepEqual(parseLoadArgs(loadArgs(o)), o);
  assert.throws(() => parseLoadArgs(['--url', 'http://198.18.1.1/']), /required/);
});

test('lab: topology, servers, load, captures, black hole', { skip: skipUnlessRoot(), timeout: 180_000 }, async () => {
  await withLab({ prefix: PREFIX }, async (lab) => {
    assert.deepEqual((await labNamespaces(PREFIX)).sort(), [
      `${PREFIX}assist`,
      `${PREFIX}client`,
      `${PREFIX}online`,
      `${PREFIX}sw`,
      `${PREFIX}target`,
    ]);
    assert.equal(lab.hosts.client.addresses.length, 51);
    assert.equal(lab.hosts.client.addresses[50], '198.18.1.52');
    const online = await lab.startNginx('online', { port: 80 });
    const target = await lab.startNginx('target', { port: 8080 });

    // Capture on online while a small load runs: every request is one segment (offloads off).
    const pcap = path.join(lab.dir, 'online.pcap');
    const cap = await lab.capture('online', {
      dev: lab.hosts.online.clientDev ?? '',
      filter: 'tcp port 80',
      file: pcap,
    });
    const small = await lab.load('client', {
      url: 'http://198.18.1.1:80/',
      requests: 30,
      durationMs: 10_000,
      concurrency: 3,
      paths: ['/', '/bytes/10000'],
    });
    assert.equal(small.responsesOk, 30);
    const capStats = await cap.stop();
    const pk = readPcap(pcap);
    assert.ok(
      (capStats.packets ?? 0) > 0 && pk.packets === capStats.packets,
      `pcap holds ${pk.packets}, tcpdump said ${capStats.packets}`,
    );
    assert.equal(pk.payloads.filter((p) => /^GET \/(bytes\/10000)? HTTP\/1\.1\r\n/.test(p)).length, 30);
    assert.ok(Math.max(...pk.ipLengths) <= 1500, `IP packets within MTU (max ${Math.max(...pk.ipLengths)})`);
    assert.ok(pk.ipLengths.filter((l) => l === 1500).length > 0, 'MTU-sized segments for /bytes/10000');

    // Bounded load, both modes; nginx logs exactly what the loadgen counted.
    let before = online.readLog().records.length;
    const ka = await lab.load('client', {
      url: 'http://198.18.1.1:80/',
      requests: 20_000,
      durationMs: 15_000,
      concurrency: 16,
      paths: ['/', '/bytes/100'],
    });
    process.stdout.write(
      `# keep-alive: ${ka.requestsSent} requests in ${ka.durationMs} ms = ${ka.requestsPerSec} req/s, p50 ${ka.latencyMs.p50} ms p99 ${ka.latencyMs.p99} ms\n`,
    );
    assert.deepEqual(ka.errors, {});
    assert.equal(ka.responsesOk, ka.requestsSent);
    assert.equal(ka.connectionsOpened, 16);
    let recs = (await online.waitForCount(before + ka.responsesOk)).slice(before);
    assert.equal(recs.length, ka.responsesOk);
    let sum = summarise(recs);
    assert.equal(sum.connections, 16);
    assert.equal(sum.byPath['/'], ka.perPath['/']?.ok);
    assert.ok(sum.addresses.every((a) => lab.hosts.client.addresses.includes(a)));
    assert.equal(sum.addresses.length, 16);

    before = online.readLog().records.length;
    const cl = await lab.load('client', {
      url: 'http://198.18.1.1:80/',
      requests: 3000,
      durationMs: 15_000,
      concurrency: 8,
      keepAlive: false,
    });
    process.stdout.write(`# close: ${cl.requestsSent} requests in ${cl.durationMs} ms = ${cl.requestsPerSec} req/s\n`);
    assert.deepEqual(cl.errors, {});
    assert.equal(cl.connectionsOpened, cl.requestsSent);
    recs = (await online.waitForCount(before + cl.responsesOk)).slice(before);
    assert.equal(recs.length, cl.responsesOk);
    sum = summarise(recs);
    // One server connection per request ((addr, port) pairs may repeat: the server closes
    // first, so the client may reuse a port at once).
    assert.equal(new Set(recs.map((r) => r.connection)).size, recs.length);
    assert.ok(recs.every((r) => r.connectionRequests === 1));
    assert.deepEqual(sum.addresses, [...lab.hosts.client.addresses].sort());

    // POST bodies, rate cap and the time bound.
    before = online.readLog().records.length;
    const post = await lab.load('client', {
      url: 'http://198.18.1.1:80/upload',
      requests: 10,
      durationMs: 10_000,
      concurrency: 2,
      bodyBytes: 50_000,
    });
    assert.equal(post.responsesOk, 10);
    recs = (await online.waitForCount(before + 10)).slice(before);
    assert.ok(
      recs.every((r) => r.method === 'POST' && r.requestLength > 50_000),
      'bodies read and counted',
    );
    // the rate cap: 100 requests at 200/s can never be done sooner than the pacing allows (99
    // intervals of 5 ms; the summary clock starts a moment after the pacer: 480); how much longer
    // a busy box takes is a figure, not asserted
    const rated = await lab.load('client', {
      url: 'http://198.18.1.1:80/',
      requests: 100,
      durationMs: 60_000,
      concurrency: 4,
      rate: 200,
    });
    process.stdout.write(`# rate cap 200/s: 100 requests in ${rated.durationMs.toFixed(0)} ms\n`);
    assert.equal(rated.stoppedBy, 'requests');
    assert.equal(rated.requestsSent, 100);
    assert.equal(rated.responsesOk, 100);
    assert.ok(rated.durationMs >= 480, `rate cap not kept: 100 requests in ${rated.durationMs} ms`);

    // The target is reachable on the LAN (from online), its nginx logs online's address.
    const viaLan = await lab.load('online', { url: 'http://198.18.0.2:8080/', requests: 5, durationMs: 5000 });
    assert.equal(viaLan.responsesOk, 5);
    assert.deepEqual(summarise(await target.waitForCount(5)).addresses, ['198.18.0.1']);

    // Routing: the target's replies to client addresses go to the assistant, which drops them.
    const route = await lab.exec('target', ['ip', 'route', 'get', '198.18.1.2']);
    assert.match(route.stdout, /via 198\.18\.0\.3 /);
    const fwd = await lab.exec('assistant', ['sysctl', '-n', 'net.ipv4.ip_forward']);
    assert.equal(fwd.stdout.trim(), '0');
    const aPcap = path.join(lab.dir, 'assist.pcap');
    const cPcap = path.join(lab.dir, 'client.pcap');
    const aCap = await lab.capture('assistant', {
      filter: 'tcp and src host 198.18.0.2 and dst host 198.18.1.2',
      file: aPcap,
    });
    const cCap = await lab.capture('client', { filter: 'src host 198.18.0.2', file: cPcap });
    const probe = await lab.exec(
      'target',
      [
        process.execPath,
        '-e',
        "const s=require('net').connect({host:'198.18.1.2',port:80});s.setTimeout(1000,()=>{console.log('timeout');process.exit(3)});" +
          "s.on('connect',()=>{console.log('connected');process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(4)})",
      ],
      { timeoutMs: 10_000 },
    );
    assert.equal(probe.stdout.trim(), 'timeout', 'the target cannot reach the client');
    const aStats = await aCap.stop();
    const cStats = await cCap.stop();
    assert.ok((aStats.packets ?? 0) >= 1, 'the assistant sees the SYN');
    assert.equal(cStats.packets, 0, 'the client sees nothing from the target');

    // Redis and the Node server.
    const redis = await lab.startRedis('online', { port: 6379 });
    const set = await lab.exec('client', ['redis-cli', '-h', '198.18.1.1', '-p', '6379', 'SET', 'k', 'v']);
    assert.equal(set.stdout.trim(), 'OK');
    assert.equal((await redis.commandStats())['set'], 1);
    const node = await lab.startNodeHttp('online', { port: 8081 });
    const nl = await lab.load('client', {
      url: 'http://198.18.1.1:8081/',
      requests: 50,
      durationMs: 5000,
      concurrency: 5,
      paths: ['/a', '/bytes/5000'],
      bodyBytes: 10,
    });
    assert.equal(nl.responsesOk, 50);
    const nrecs = await node.waitForCount(50);
    assert.equal(nrecs.length, 50);
    assert.ok(
      nrecs.every(
        (r) => r.method === 'POST' && r.requestLength === 10 && lab.hosts.client.addresses.includes(r.remoteAddr),
      ),
    );
    assert.equal(summarise(nrecs).byPath['/bytes/5000'], 25);
  });
  assert.deepEqual(await labNamespaces(PREFIX), []);
});

test('lab: down() cleans up when the body throws', { skip: skipUnlessRoot(), timeout: 60_000 }, async () => {
  let pid = 0;
  let dir = '';
  await assert.rejects(
    withLab({ prefix: PREFIX, clientAddresses: 2 }, async (lab) => {
      dir = lab.dir;
      const p = lab.spawn('target', ['sleep', '1000']);
      pid = p.pid;
      await lab.startNginx('online', { port: 80 });
      assert.equal((await labNamespaces(PREFIX)).length, 5);
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.deepEqual(await labNamespaces(PREFIX), []);
  assert.ok(pid > 0 && !pidAlive(pid), 'spawned process stopped');
  assert.throws(() => readFileSync(path.join(dir, 'x')), /ENOENT/);
});

test('lab: online2/client2, stale cleanup, idempotent down', { skip: skipUnlessRoot(), timeout: 60_000 }, async () => {
  const first = await Lab.up({ prefix: PREFIX, online2: true, clientAddresses: 3 });
  // A second up() with the same prefix removes the first one's namespaces (stale cleanup).
  const lab = await Lab.up({ prefix: PREFIX, online2: true, clientAddresses: 3 });
  try {
    assert.equal((await labNamespaces(PREFIX)).length, 7);
    assert.deepEqual(lab.hosts.client2?.addresses, ['198.18.2.2', '198.18.2.3', '198.18.2.4', '198.18.2.5']);
    assert.equal(lab.hosts.online2?.ip, '198.18.0.4');
    assert.match((await lab.exec('target', ['ip', 'route', 'get', '198.18.2.2'])).stdout, /via 198\.18\.0\.3 /);
    await lab.startNginx('online2', { port: 80 });
    const s = await lab.load('client2', {
      url: 'http://198.18.2.1/',
      requests: 20,
      durationMs: 5000,
      concurrency: 2,
      keepAlive: false,
    });
    assert.equal(s.responsesOk, 20);
    assert.deepEqual(s.sourceAddresses, ['198.18.2.2', '198.18.2.3', '198.18.2.4', '198.18.2.5']);
    // online2 reaches the target over the shared LAN.
    const ping = await lab.exec(
      'online2',
      [
        process.execPath,
        '-e',
        "require('net').connect({host:'198.18.0.1',port:9}).on('error',e=>{console.log(e.code);process.exit(0)}).setTimeout(2000,()=>process.exit(3))",
      ],
      { timeoutMs: 10_000 },
    );
    assert.equal(ping.stdout.trim(), 'ECONNREFUSED', 'online2 reaches online over the bridge (RST from a closed port)');
  } finally {
    await lab.down();
    await lab.down();
    await first.down();
  }
  assert.deepEqual(await labNamespaces(PREFIX), []);
});
