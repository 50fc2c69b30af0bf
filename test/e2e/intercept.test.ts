/**
 * End-to-end test of the `intercept` program (root, network namespaces, prefix tci-e2):
 *
 *   tci-e2c (tcpcopy side) 198.18.31.2 --- 198.18.31.1 tci-e2a (assistant: intercept -i tci-e2at)
 *   tci-e2c                198.18.32.2 --- 198.18.32.1 tci-e2t (target: HTTP on 8080)
 *   tci-e2a                198.18.30.1 --- 198.18.30.2 tci-e2t  (route 198.18.1.0/24 via 198.18.30.1)
 *
 * A ChannelClient in tci-e2c registers 198.18.1.5:40000, raw SYNs from 198.18.1.5:40000 and
 * (unregistered) 198.18.1.6:40001 go to the target; its SYN-ACKs are routed to the assistant
 * (ip_forward off: a black hole), captured by the real intercept CLI and sent back over the
 * channel. Child processes run this same file in child mode (TCI_E2E_CHILD = JSON job).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { skipUnlessRoot } from './replay-helpers';

const CHILD = process.env['TCI_E2E_CHILD'];
const NS_A = 'tci-e2a';
const NS_T = 'tci-e2t';
const NS_C = 'tci-e2c';
const ROOT = join(__dirname, '..', '..', '..');
const INTERCEPT = join(ROOT, 'dist', 'src', 'cli', 'intercept-main.js');

type Job =
  | { mode: 'client'; server: string; port: number; clients: [string, number, string, number][]; ms: number }
  | { mode: 'syn'; packets: [string, number, string, number][] };

function sh(...args: string[]): string {
  return execFileSync(args[0] ?? 'true', args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function cleanup(): void {
  for (const line of sh('ip', 'netns', 'list').split('\n')) {
    const name = line.split(' ')[0] ?? '';
    if (name.startsWith('tci-e2')) execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  }
}

function link(nsX: string, ifX: string, ipX: string, nsY: string, ifY: string, ipY: string): void {
  sh('ip', 'link', 'add', ifX, 'netns', nsX, 'type', 'veth', 'peer', 'name', ifY, 'netns', nsY);
  sh('ip', '-n', nsX, 'addr', 'add', `${ipX}/24`, 'dev', ifX);
  sh('ip', '-n', nsY, 'addr', 'add', `${ipY}/24`, 'dev', ifY);
  sh('ip', '-n', nsX, 'link', 'set', ifX, 'up');
  sh('ip', '-n', nsY, 'link', 'set', ifY, 'up');
}

function setup(): void {
  cleanup();
  for (const ns of [NS_A, NS_T, NS_C]) {
    sh('ip', 'netns', 'add', ns);
    sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
    sh(
      'ip',
      'netns',
      'exec',
      ns,
      'sysctl',
      '-qw',
      'net.ipv6.conf.all.disable_ipv6=1',
      'net.ipv6.conf.default.disable_ipv6=1',
    );
  }
  link(NS_A, 'tci-e2at', '198.18.30.1', NS_T, 'tci-e2ta', '198.18.30.2');
  link(NS_A, 'tci-e2ac', '198.18.31.1', NS_C, 'tci-e2ca', '198.18.31.2');
  link(NS_C, 'tci-e2ct', '198.18.32.2', NS_T, 'tci-e2tc', '198.18.32.1');
  sh('ip', 'netns', 'exec', NS_A, 'sysctl', '-qw', 'net.ipv4.ip_forward=0');
  sh(
    'ip',
    'netns',
    'exec',
    NS_T,
    'sysctl',
    '-qw',
    'net.ipv4.conf.all.rp_filter=0',
    'net.ipv4.conf.default.rp_filter=0',
    'net.ipv4.conf.tci-e2tc.rp_filter=0',
  );
  sh('ip', '-n', NS_T, 'route', 'add', '198.18.1.0/24', 'via', '198.18.30.1');
}

/** Spawns `argv` inside `ns`; collects stdout lines. */
function spawnIn(
  ns: string,
  argv: string[],
  env: Record<string, string> = {},
): { child: ChildProcess; lines: string[]; exited: Promise<number | null> } {
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let buf = '';
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    lines.push(...parts);
  });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((res) =>
    child.on('close', (code) => {
      if (code !== 0 && code !== null && err) process.stderr.write(`[${ns} ${argv[1] ?? ''}] ${err}`);
      res(code);
    }),
  );
  return { child, lines, exited };
}

function runChild(ns: string, job: Job): ReturnType<typeof spawnIn> {
  return spawnIn(ns, [process.execPath, __filename], { TCI_E2E_CHILD: JSON.stringify(job) });
}

/**
 * Waits for an event, at most `ms` (an upper bound for a machine whose 2 CPUs are shared by
 * several labs: a node start has taken more than 5 s there; nothing is judged by how long it took).
 */
async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** intercept's metrics endpoint inside the assistant namespace. */
const METRICS = '127.0.0.1:9465';

/** One sample of intercept's metrics (e.g. `intercept_routes`), or NaN when the endpoint does not answer. */
async function metric(name: string): Promise<number> {
  const out = await new Promise<string>((res) =>
    execFile(
      'ip',
      ['netns', 'exec', NS_A, 'curl', '-s', '--max-time', '2', `http://${METRICS}/metrics`],
      { encoding: 'utf8' },
      (_e, stdout) => res(stdout ?? ''),
    ),
  );
  const line = out.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.slice(name.length + 1));
}

function kill(c: ChildProcess | undefined): void {
  if (c?.pid !== undefined && c.exitCode === null) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

async function childMain(job: Job): Promise<void> {
  const { parseIpv4, newSegment, ipToString } = await import('../../src/core/wire/segment');
  if (job.mode === 'client') {
    const { ChannelClient } = await import('../../src/io/channel-client');
    const { parseIpv4Tcp } = await import('../../src/core/wire/decode');
    const seg = newSegment();
    const c = new ChannelClient(
      { servers: [{ host: job.server, port: job.port }], connections: 2, reconnect: false, recordBytes: 64 },
      (b, off, len) => {
        const st = parseIpv4Tcp(b, off, len, seg, true);
        process.stdout.write(
          `${JSON.stringify({ st, src: ipToString(seg.srcIp), dst: ipToString(seg.dstIp), sport: seg.srcPort, dport: seg.dstPort, flags: seg.flags, mss: seg.mss })}\n`,
        );
      },
      { warn: (m) => process.stderr.write(`${m}\n`), info: () => {} },
    );
    await c.connect();
    for (const [ci, cp, ti, tp] of job.clients) c.addClient(parseIpv4(ci), cp, parseIpv4(ti), tp);
    c.flush();
    process.stdout.write('READY\n');
    // runs until the test says it has seen what it waits for (SIGINT), at most job.ms
    await new Promise<void>((r) => {
      const t = setTimeout(r, job.ms);
      process.once('SIGINT', () => {
        clearTimeout(t);
        r();
      });
    });
    process.stdout.write(`${JSON.stringify({ stats: c.stats() })}\n`);
    await c.close();
    return;
  }
  const { RawSender } = await import('../../src/io/raw-sender');
  const { fillIpv4TcpChecksums } = await import('../../src/core/wire/checksum');
  const tx = new RawSender();
  for (const [src, sport, dst, dport] of job.packets) {
    const p = Buffer.alloc(40);
    p[0] = 0x45;
    p.writeUInt16BE(40, 2);
    p.writeUInt16BE(0x4000, 6);
    p[8] = 64;
    p[9] = 6;
    p.writeUInt32BE(parseIpv4(src), 12);
    p.writeUInt32BE(parseIpv4(dst), 16);
    p.writeUInt16BE(sport, 20);
    p.writeUInt16BE(dport, 22);
    p.writeUInt32BE(12345, 24);
    p[32] = 0x50;
    p[33] = 0x02;
    p.writeUInt16BE(65535, 34);
    fillIpv4TcpChecksums(p, 0);
    tx.send(p, 0, p.length);
  }
  tx.flush();
  process.stdout.write(`${JSON.stringify({ sent: tx.stats() })}\n`);
  tx.close();
}

if (CHILD) {
  childMain(JSON.parse(CHILD) as Job).then(
    () => process.exit(0),
    (e: Error) => {
      process.stderr.write(`${e.stack}\n`);
      process.exit(1);
    },
  );
} else {
  test(
    'intercept CLI captures a SYN-ACK and returns it over the channel; unregistered replies are no-route',
    { skip: skipUnlessRoot(), timeout: 180_000 },
    async (t) => {
      const log = join(tmpdir(), `tci-e2e-intercept-${process.pid}.log`);
      const pid = join(tmpdir(), `tci-e2e-intercept-${process.pid}.pid`);
      rmSync(log, { force: true });
      let icp: ReturnType<typeof spawnIn> | undefined;
      let srv: ReturnType<typeof spawnIn> | undefined;
      let cli: ReturnType<typeof runChild> | undefined;
      try {
        setup();
        srv = spawnIn(NS_T, [
          process.execPath,
          '-e',
          "require('http').createServer((q,s)=>s.end('ok')).listen(8080,()=>console.log('LISTENING'))",
        ]);
        icp = spawnIn(NS_A, [
          process.execPath,
          INTERCEPT,
          '-i',
          'tci-e2at',
          '-F',
          'tcp and src port 8080',
          '-p',
          '36524',
          '-l',
          log,
          '-P',
          pid,
          '--log-format',
          'json',
          '--metrics',
          METRICS,
        ]);
        await until(() => srv!.lines.includes('LISTENING'), 30_000, 'the target server');
        await until(
          () => existsSync(log) && readFileSync(log, 'utf8').includes('listening on'),
          30_000,
          'intercept to start',
        );
        assert.equal(readFileSync(pid, 'utf8').trim(), String(icp.child.pid));
        cli = runChild(NS_C, {
          mode: 'client',
          server: '198.18.31.1',
          port: 36524,
          clients: [['198.18.1.5', 40000, '198.18.32.1', 8080]],
          ms: 30_000,
        });
        await until(() => cli!.lines.includes('READY'), 30_000, 'the channel client');
        // the CLIENT_ADD has reached intercept once its route table holds the route
        await until(async () => (await metric('intercept_routes')) === 1, 30_000, 'the route in intercept');
        const syn = runChild(NS_C, {
          mode: 'syn',
          packets: [
            ['198.18.1.5', 40000, '198.18.32.1', 8080],
            ['198.18.1.6', 40001, '198.18.32.1', 8080],
          ],
        });
        assert.equal(await syn.exited, 0);
        await until(() => cli!.lines.some((l) => l.includes('"sport":8080')), 30_000, 'the SYN-ACK record');
        const rec = JSON.parse(cli.lines.find((l) => l.includes('"sport":8080')) as string) as Record<string, unknown>;
        assert.deepEqual(
          { ...rec, mss: undefined },
          { st: 'ok', src: '198.18.32.1', dst: '198.18.1.5', sport: 8080, dport: 40000, flags: 0x12, mss: undefined },
        );
        assert.ok((rec['mss'] as number) > 0, 'TCP options survive');
        // the unregistered client's SYN-ACK is held (2 s) for a CLIENT_ADD that never comes, then counted as no-route
        await until(
          async () => (await metric('intercept_replies_no_route_total')) >= 1,
          15_000,
          'the unregistered reply counted as no-route',
        );
        cli.child.kill('SIGINT');
        assert.equal(await cli.exited, 0);
        const cstats = JSON.parse(cli.lines.find((l) => l.startsWith('{"stats"')) as string) as {
          stats: { recordsReceived: number; protocolErrors: number };
        };
        assert.ok(cstats.stats.recordsReceived >= 1);
        assert.equal(cstats.stats.protocolErrors, 0);
        assert.ok(
          cli.lines.filter((l) => l.includes('"dport"')).every((l) => l.includes('"dport":40000')),
          'no record for the unregistered client',
        );
        icp.child.kill('SIGTERM');
        assert.equal(await icp.exited, 0);
        const lines = readFileSync(log, 'utf8')
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, unknown>);
        const fin = lines.find((l) => l['msg'] === 'final counters');
        assert.ok(fin, 'final counters logged');
        t.diagnostic(`intercept final counters: ${JSON.stringify(fin)}`);
        assert.equal(fin['routesAdded'], 1);
        assert.ok((fin['routed'] as number) >= 1);
        assert.ok((fin['noRoute'] as number) >= 1, `noRoute ${String(fin['noRoute'])}`);
        assert.ok((fin['held'] as number) >= 1);
        assert.equal(fin['peersTotal'], 2);
        assert.ok((fin['framesSent'] as number) >= 1);
        assert.equal(existsSync(pid), false, 'pid file removed');
      } finally {
        kill(cli?.child);
        kill(icp?.child);
        kill(srv?.child);
        cleanup();
        rmSync(log, { force: true });
        rmSync(pid, { force: true });
      }
    },
  );
}
