/**
 * End-to-end test of the native packet I/O addon (root): two network namespaces joined by a
 * veth pair (198.18.200.1/24 <-> 198.18.200.2/24). Capture and send run in child processes
 * under `ip netns exec` (this same file in child mode: TCN_NATIVE_IO_CHILD names a JSON job file).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RingCapture } from '../../src/io/ring-capture';
import { RawSender } from '../../src/io/raw-sender';
import { FrameSender } from '../../src/io/frame-sender';
import { TcpcopyError } from '../../src/core/errors';
import { LINKTYPE_ETHERNET, LINKTYPE_RAW } from '../../src/core/wire/link';
import { emitIpv4Tcp, newTcpRepr } from '../../src/core/wire/build';
import { parseIpv4, TCP_ACK, TCP_PSH } from '../../src/core/wire/segment';
import { skipUnlessRoot } from './replay-helpers';

const CHILD = process.env['TCN_NATIVE_IO_CHILD'];
const ID = `${process.pid % 10000}`;
const NS_A = `tcnA${ID}`;
const NS_B = `tcnB${ID}`;
const IF_A = `tcn${ID}a`;
const IF_B = `tcn${ID}b`;
const IP_A = '198.18.200.1';
const IP_B = '198.18.200.2';

/** What a child process does. */
type Job =
  | {
      mode: 'capture';
      device: string;
      filter: string;
      direction: 'in' | 'out' | 'both';
      expect: number;
      timeoutMs: number;
      selfSend?: string[];
      stopInside?: boolean;
    }
  | { mode: 'send'; kind: 'raw' | 'frame'; device?: string; dstMac?: string; altMac?: string; packets: string[] }
  | { mode: 'perm' }
  | { mode: 'unref' };

/** One IPv4/TCP packet with correct checksums, `tag` in the 4-byte payload (and the seq). */
function tcpPacket(src: string, dst: string, sport: number, dport: number, tag: number): Buffer {
  const r = newTcpRepr();
  r.srcIp = parseIpv4(src);
  r.dstIp = parseIpv4(dst);
  r.srcPort = sport;
  r.dstPort = dport;
  r.seq = tag >>> 0;
  r.flags = TCP_PSH | TCP_ACK;
  r.window = 65535;
  r.ipId = 0x1000 + (tag & 0xfff); // non-zero id: the kernel keeps it
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(tag >>> 0, 0);
  const out = Buffer.alloc(64);
  return Buffer.from(out.subarray(0, emitIpv4Tcp(r, payload, 0, 4, out, 0)));
}

function sh(...args: string[]): string {
  return execFileSync(args[0] ?? 'true', args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function macOf(ns: string, dev: string): string {
  const j = JSON.parse(sh('ip', '-n', ns, '-j', 'link', 'show', dev)) as Array<{ address: string }>;
  return j[0]?.address ?? '';
}

function cleanup(): void {
  for (const line of sh('ip', 'netns', 'list').split('\n')) {
    const name = line.split(' ')[0] ?? '';
    if (name.startsWith('tcn')) execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  }
}

function setup(): { macA: string; macB: string } {
  cleanup();
  sh('ip', 'netns', 'add', NS_A);
  sh('ip', 'netns', 'add', NS_B);
  for (const ns of [NS_A, NS_B])
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
  sh('ip', 'link', 'add', IF_A, 'netns', NS_A, 'type', 'veth', 'peer', 'name', IF_B, 'netns', NS_B);
  sh('ip', '-n', NS_A, 'addr', 'add', `${IP_A}/24`, 'dev', IF_A);
  sh('ip', '-n', NS_B, 'addr', 'add', `${IP_B}/24`, 'dev', IF_B);
  for (const [ns, dev] of [
    [NS_A, IF_A],
    [NS_B, IF_B],
  ] as const) {
    sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
    sh('ip', '-n', ns, 'link', 'set', dev, 'up');
  }
  const macA = macOf(NS_A, IF_A);
  const macB = macOf(NS_B, IF_B);
  sh('ip', '-n', NS_A, 'neigh', 'replace', IP_B, 'lladdr', macB, 'dev', IF_A, 'nud', 'permanent');
  sh('ip', '-n', NS_B, 'neigh', 'replace', IP_A, 'lladdr', macA, 'dev', IF_B, 'nud', 'permanent');
  return { macA, macB };
}

interface ChildRun {
  ready: Promise<void>;
  done: Promise<{ code: number | null; out: Record<string, unknown> }>;
}

let jobSeq = 0;

/** Runs this file in child mode inside `ns` (or as `nobody` in the root namespace). */
function runChild(ns: string | null, job: Job, asNobody = false): ChildRun {
  const node = process.execPath;
  const argv = asNobody
    ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', node, __filename]
    : ['ip', 'netns', 'exec', ns ?? '', node, __filename];
  const jobFile = join(tmpdir(), `tcn-job-${process.pid}-${jobSeq++}.json`);
  writeFileSync(jobFile, JSON.stringify(job), { mode: 0o644 });
  const child = spawn(argv[0] ?? '', argv.slice(1), {
    env: { ...process.env, TCN_NATIVE_IO_CHILD: jobFile },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let text = '';
  let readyResolve: () => void = () => undefined;
  const ready = new Promise<void>((res) => (readyResolve = res));
  child.stdout.on('data', (d: Buffer) => {
    text += d.toString();
    if (text.includes('READY\n')) readyResolve();
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 20000);
  const done = new Promise<{ code: number | null; out: Record<string, unknown> }>((res) => {
    child.on('close', (code) => {
      clearTimeout(killer);
      rmSync(jobFile, { force: true });
      readyResolve();
      const last = text.trim().split('\n').pop() ?? '{}';
      let out: Record<string, unknown> = {};
      try {
        out = JSON.parse(last) as Record<string, unknown>;
      } catch {
        out = { unparsed: text };
      }
      res({ code, out });
    });
  });
  return { ready, done };
}

/** Child side: does one job and prints READY then one JSON line. */
async function child(job: Job): Promise<void> {
  const print = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
  if (job.mode === 'perm') {
    const codes: Record<string, string> = {};
    const tries: Array<[string, () => void]> = [
      ['ring', () => new RingCapture({ device: 'lo', filter: '' }).open({ packet() {}, batchEnd() {} })],
      ['raw', () => new RawSender().close()],
      ['frame', () => new FrameSender({ device: 'lo', dstMac: '02:00:00:00:00:01' }).close()],
    ];
    for (const [name, fn] of tries) {
      try {
        fn();
        codes[name] = 'ok';
      } catch (err) {
        codes[name] = err instanceof TcpcopyError ? `${err.code}: ${err.message}` : String(err);
      }
    }
    print(codes);
    return;
  }
  if (job.mode === 'unref') {
    const cap = new RingCapture({ device: 'lo', filter: '' });
    await cap.start({ packet() {}, batchEnd() {} });
    cap.unref();
    process.stdout.write('READY\n');
    process.on('exit', () => print({ exited: true }));
    return; // the process must now exit by itself
  }
  if (job.mode === 'send') {
    const s =
      job.kind === 'raw'
        ? new RawSender(job.device === undefined ? {} : { device: job.device })
        : new FrameSender({ device: job.device ?? '', dstMac: job.dstMac ?? '' });
    job.packets.forEach((hex, i) => {
      const p = Buffer.from(hex, 'hex');
      if (s instanceof FrameSender && job.altMac !== undefined && i % 2 === 1) s.sendTo(job.altMac, p, 0, p.length);
      else s.send(p, 0, p.length);
    });
    s.flush();
    const st = s.stats();
    s.close();
    print(st);
    return;
  }
  const frames: string[] = [];
  let linkType = 0;
  const cap = new RingCapture({ device: job.device, filter: job.filter, direction: job.direction });
  const finish = (): void => {
    void cap.stop();
    print({ linkType, frames, stats: cap.stats() });
  };
  const timer = setTimeout(finish, job.timeoutMs);
  await cap.start({
    packet(lt, buf, off, capLen) {
      linkType = lt;
      frames.push(buf.toString('hex', off, off + capLen));
      if (job.stopInside === true) {
        void cap.stop();
        void cap.stop();
        clearTimeout(timer);
        print({ linkType, frames, stats: cap.stats() }); // the process must exit by itself now
      }
    },
    batchEnd() {
      if (frames.length >= job.expect && job.expect > 0) {
        clearTimeout(timer);
        setTimeout(finish, 200); // linger: duplicates would show up
      }
    },
  });
  process.stdout.write('READY\n');
  if (job.selfSend !== undefined) {
    const s = new RawSender();
    for (const hex of job.selfSend) s.send(Buffer.from(hex, 'hex'), 0, hex.length / 2);
    s.close();
  }
}

if (CHILD !== undefined) {
  child(JSON.parse(readFileSync(CHILD, 'utf8')) as Job).catch((err: unknown) => {
    process.stdout.write(`${JSON.stringify({ error: err instanceof TcpcopyError ? err.code : String(err) })}\n`);
    process.exitCode = 1;
  });
} else {
  const skip = skipUnlessRoot();
  test('native packet I/O across a veth pair', { skip, timeout: 120000 }, async (t) => {
    try {
      const { macA, macB } = setup();
      const want = Array.from({ length: 2000 }, (_, i) =>
        tcpPacket(IP_A, IP_B, 40000 + (i % 1000), 80, i).toString('hex'),
      );
      const other = Array.from({ length: 200 }, (_, i) => tcpPacket(IP_A, IP_B, 40000, 81, 9000 + i).toString('hex'));

      await t.test(
        'RawSender -> RingCapture: every packet exactly once, exact bytes; filter excludes port 81',
        async () => {
          const cap = runChild(NS_B, {
            mode: 'capture',
            device: IF_B,
            filter: 'tcp dst port 80',
            direction: 'in',
            expect: want.length,
            timeoutMs: 8000,
          });
          await cap.ready;
          const send = await runChild(NS_A, {
            mode: 'send',
            kind: 'raw',
            packets: [...want.slice(0, 1000), ...other, ...want.slice(1000)],
          }).done;
          assert.equal(send.out['sent'], want.length + other.length, JSON.stringify(send.out));
          assert.equal(send.out['failed'], 0);
          const { out } = await cap.done;
          assert.equal(out['linkType'], LINKTYPE_ETHERNET);
          const frames = out['frames'] as string[];
          assert.equal(frames.length, want.length, 'each packet exactly once, none of port 81');
          const seen = new Set<string>();
          for (const f of frames) {
            assert.equal(f.slice(0, 12), macB.replaceAll(':', ''));
            assert.equal(f.slice(12, 24), macA.replaceAll(':', ''));
            seen.add(f.slice(28));
          }
          assert.deepEqual([...seen].sort(), [...want].sort());
          assert.equal((out['stats'] as { dropped: number }).dropped, 0);
        },
      );

      await t.test("device 'any' delivers IP-layer frames (LINKTYPE_RAW)", async () => {
        const cap = runChild(NS_B, {
          mode: 'capture',
          device: 'any',
          filter: 'tcp dst port 80',
          direction: 'in',
          expect: 100,
          timeoutMs: 8000,
        });
        await cap.ready;
        await runChild(NS_A, { mode: 'send', kind: 'raw', device: IF_A, packets: want.slice(0, 100) }).done;
        const { out } = await cap.done;
        assert.equal(out['linkType'], LINKTYPE_RAW);
        assert.deepEqual(out['frames'], want.slice(0, 100));
      });

      await t.test("direction 'in' never sees this host's own sends; 'out' sees only them", async () => {
        const self = want.slice(0, 300);
        const inOnly = await runChild(NS_A, {
          mode: 'capture',
          device: IF_A,
          filter: 'tcp dst port 80',
          direction: 'in',
          expect: 0,
          timeoutMs: 800,
          selfSend: self,
        }).done;
        assert.deepEqual(inOnly.out['frames'], []);
        const outOnly = await runChild(NS_A, {
          mode: 'capture',
          device: IF_A,
          filter: 'tcp dst port 80',
          direction: 'out',
          expect: 300,
          timeoutMs: 5000,
          selfSend: self,
        }).done;
        assert.deepEqual(
          (outOnly.out['frames'] as string[]).map((f) => f.slice(28)),
          self,
        );
      });

      await t.test('FrameSender frames arrive with the right MACs', async () => {
        const alt = '02:00:5e:10:00:99';
        const pk = want.slice(0, 200);
        const cap = runChild(NS_B, {
          mode: 'capture',
          device: IF_B,
          filter: 'tcp dst port 80',
          direction: 'in',
          expect: pk.length,
          timeoutMs: 8000,
        });
        await cap.ready;
        const send = await runChild(NS_A, {
          mode: 'send',
          kind: 'frame',
          device: IF_A,
          dstMac: macB,
          altMac: alt,
          packets: pk,
        }).done;
        assert.equal(send.out['sent'], pk.length, JSON.stringify(send.out));
        const frames = (await cap.done).out['frames'] as string[];
        assert.equal(frames.length, pk.length);
        frames.forEach((f, i) => {
          assert.equal(f.slice(0, 12), (i % 2 === 1 ? alt : macB).replaceAll(':', ''));
          assert.equal(f.slice(12, 24), macA.replaceAll(':', ''));
          assert.equal(f.slice(24, 28), '0800');
          assert.equal(f.slice(28), pk[i]);
        });
      });

      await t.test('stop() inside the callback, and unref(), let the process exit', async () => {
        const cap = runChild(NS_B, {
          mode: 'capture',
          device: IF_B,
          filter: 'tcp',
          direction: 'in',
          expect: 5,
          timeoutMs: 15000,
          stopInside: true,
        });
        await cap.ready;
        await runChild(NS_A, { mode: 'send', kind: 'raw', packets: want.slice(0, 5) }).done;
        // the child exits by itself (code 0); runChild kills a child that hangs (code != 0)
        const { code, out } = await cap.done;
        assert.equal(code, 0, 'process exited after stop');
        assert.equal((out['frames'] as string[]).length, 1);
        const un = await runChild(NS_B, { mode: 'unref' }).done;
        assert.deepEqual(un.out, { exited: true });
      });

      await t.test('without root: ERR_NO_RAW_PERMISSION with the setcap hint', async () => {
        const { out } = await runChild(null, { mode: 'perm' }, true).done;
        for (const k of ['ring', 'raw', 'frame']) {
          const v = String(out[k]);
          assert.match(v, /^ERR_NO_RAW_PERMISSION: .*CAP_NET_RAW.*setcap cap_net_raw,cap_net_admin=ep/, `${k}: ${v}`);
        }
      });

      await t.test('unknown device and bad filter', () => {
        assert.throws(
          () => new RingCapture({ device: 'tcnnope0', filter: '' }).open({ packet() {}, batchEnd() {} }),
          (e: unknown) => e instanceof TcpcopyError && e.code === 'ERR_NO_DEVICE' && e.message.includes('tcnnope0'),
        );
        assert.throws(
          () => new RingCapture({ device: 'lo', filter: 'tcp port' }).open({ packet() {}, batchEnd() {} }),
          (e: unknown) =>
            e instanceof TcpcopyError &&
            e.code === 'ERR_BAD_FILTER' &&
            e.message.includes('tcp port') &&
            e.message.includes('syntax'),
        );
        assert.throws(
          () => new RawSender({ device: 'tcnnope0' }),
          (e: unknown) => e instanceof TcpcopyError && e.code === 'ERR_NO_DEVICE',
        );
      });
    } finally {
      for (const ns of [NS_A, NS_B]) {
        try {
          execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
        } catch {
          // already gone
        }
      }
    }
  });
}
