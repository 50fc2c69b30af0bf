/**
 * Benchmark of the native packet I/O (root): in namespace A a RawSender sends up to 1,000,000
 * small TCP packets (batches of 256, bounded to 20 s) over a veth pair to namespace B, where a
 * RingCapture counts them. Prints packets/s sent, CPU µs per packet for send and capture
 * (process.cpuUsage of each process), loss and the ring drop counter.
 *
 *   node dist/bench/native-io.js [--count 1000000] [--rate 0 (packets/s, 0 = as fast as possible)]
 */
import { execFileSync, spawn } from 'node:child_process';
import { RingCapture } from '../src/io/ring-capture';
import { RawSender } from '../src/io/raw-sender';
import { emitIpv4Tcp, newTcpRepr } from '../src/core/wire/build';
import { parseIpv4, TCP_ACK } from '../src/core/wire/segment';

const ROLE = process.env['TCN_BENCH_ROLE'];
const NS_A = 'tcnbenchA';
const NS_B = 'tcnbenchB';
const IF_A = 'tcnbencha';
const IF_B = 'tcnbenchb';
const IP_A = '198.18.201.1';
const IP_B = '198.18.201.2';
const MAX_MS = 20000;

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : dflt;
  return Number.isFinite(v) ? v : dflt;
}

/** 40-byte IPv4/TCP ACK from IP_A:sport to IP_B:80 with correct checksums. */
function packet(sport: number): Buffer {
  const r = newTcpRepr();
  r.srcIp = parseIpv4(IP_A);
  r.dstIp = parseIpv4(IP_B);
  r.srcPort = sport;
  r.dstPort = 80;
  r.flags = TCP_ACK;
  r.window = 65535;
  r.ipId = sport;
  const p = Buffer.alloc(40);
  emitIpv4Tcp(r, null, 0, 0, p, 0);
  return p;
}

function sender(count: number, rate: number): void {
  const pkts = Array.from({ length: 1024 }, (_, i) => packet(20000 + i));
  const s = new RawSender({ slots: 256 });
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let i = 0;
  while (i < count && performance.now() - t0 < MAX_MS) {
    for (let k = 0; k < 256 && i < count; k++, i++) {
      const p = pkts[i & 1023] ?? pkts[0];
      if (p !== undefined) s.send(p, 0, 40);
    }
    s.flush();
    if (rate > 0) {
      const ahead = (i / rate) * 1000 - (performance.now() - t0);
      if (ahead > 1) Atomics.wait(sleeper, 0, 0, ahead);
    }
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  const st = s.stats();
  s.close();
  process.stdout.write(`${JSON.stringify({ ...st, queued: i, ms, cpuUs: cpu.user + cpu.system, userUs: cpu.user })}\n`);
}

async function capture(): Promise<void> {
  let n = 0;
  let sum = 0;
  let last = Date.now();
  const cap = new RingCapture({ device: IF_B, filter: 'tcp dst port 80', direction: 'in', snaplen: 128, bufferMB: 64 });
  let c0 = process.cpuUsage();
  await cap.start({
    packet(_lt, buf, off) {
      n++;
      sum += buf[off + 14 + 20 + 1] ?? 0; // touch the TCP source port like a decoder would
    },
    batchEnd(now) {
      last = now;
    },
  });
  process.stdout.write('READY\n');
  c0 = process.cpuUsage();
  const t0 = Date.now();
  await new Promise<void>((res) => {
    const timer = setInterval(() => {
      if (Date.now() - t0 > MAX_MS + 5000 || (n > 0 && Date.now() - last > 1500)) {
        clearInterval(timer);
        res();
      }
    }, 100);
  });
  const cpu = process.cpuUsage(c0);
  const st = cap.stats();
  await cap.stop();
  process.stdout.write(`${JSON.stringify({ ...st, cpuUs: cpu.user + cpu.system, userUs: cpu.user, checksum: sum })}\n`);
}

function sh(...args: string[]): void {
  execFileSync(args[0] ?? 'true', args.slice(1), { stdio: 'ignore' });
}

function run(
  ns: string,
  role: string,
  argv: string[],
): { ready: Promise<void>; done: Promise<Record<string, number | string>> } {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, __filename, ...argv], {
    env: { ...process.env, TCN_BENCH_ROLE: role },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let text = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => (onReady = r));
  child.stdout.on('data', (d: Buffer) => {
    text += d.toString();
    if (text.includes('READY\n')) onReady();
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), MAX_MS + 15000);
  const done = new Promise<Record<string, number | string>>((res) => {
    child.on('close', () => {
      clearTimeout(killer);
      onReady();
      res(JSON.parse(text.trim().split('\n').pop() ?? '{}') as Record<string, number | string>);
    });
  });
  return { ready, done };
}

async function main(): Promise<void> {
  const count = Math.min(arg('count', 1_000_000), 1_000_000);
  const rate = arg('rate', 0);
  const del = (): void => {
    for (const ns of [NS_A, NS_B]) {
      try {
        sh('ip', 'netns', 'del', ns);
      } catch {
        // not there
      }
    }
  };
  del();
  try {
    sh('ip', 'netns', 'add', NS_A);
    sh('ip', 'netns', 'add', NS_B);
    sh('ip', 'link', 'add', IF_A, 'netns', NS_A, 'type', 'veth', 'peer', 'name', IF_B, 'netns', NS_B);
    sh('ip', '-n', NS_A, 'addr', 'add', `${IP_A}/24`, 'dev', IF_A);
    sh('ip', '-n', NS_B, 'addr', 'add', `${IP_B}/24`, 'dev', IF_B);
    sh('ip', '-n', NS_A, 'link', 'set', IF_A, 'up');
    sh('ip', '-n', NS_B, 'link', 'set', IF_B, 'up');
    const mac =
      (
        JSON.parse(execFileSync('ip', ['-n', NS_B, '-j', 'link', 'show', IF_B], { encoding: 'utf8' })) as Array<{
          address: string;
        }>
      )[0]?.address ?? '';
    sh('ip', '-n', NS_A, 'neigh', 'replace', IP_B, 'lladdr', mac, 'dev', IF_A, 'nud', 'permanent');
    try {
      // B's IP stack would answer each packet with a RST: drop them after the capture tap.
      sh(
        'ip',
        'netns',
        'exec',
        NS_B,
        'iptables',
        '-t',
        'raw',
        '-A',
        'PREROUTING',
        '-p',
        'tcp',
        '--dport',
        '80',
        '-j',
        'DROP',
      );
    } catch {
      process.stderr.write('(iptables unavailable: B answers with RSTs)\n');
    }
    const cap = run(NS_B, 'capture', []);
    await cap.ready;
    const snd = await run(NS_A, 'send', ['--count', String(count), '--rate', String(rate)]).done;
    const c = await cap.done;
    const sent = Number(snd['sent']);
    const got = Number(c['received']);
    const kernel = Number(c['kernelPackets']);
    const f = (x: number, d = 2): string => x.toFixed(d);
    console.log(JSON.stringify({ sender: snd, capture: c }));
    console.log(
      `sent ${sent} packets in ${f(Number(snd['ms']), 0)} ms = ${f(sent / (Number(snd['ms']) / 1000), 0)} packets/s (target rate ${rate || 'unlimited'}), failed ${snd['failed']}, retried ${snd['retried']}`,
    );
    console.log(
      `send CPU ${f(Number(snd['cpuUs']) / sent, 3)} µs/packet (user ${f(Number(snd['userUs']) / sent, 3)}; includes the kernel's veth/IP path)`,
    );
    console.log(
      `captured ${got} (${f(((sent - got) / sent) * 100, 3)}% loss; ring drops ${c['dropped']}, lost before the ring ${sent - kernel}), blocks ${c['blocks']}, capture CPU ${f(Number(c['cpuUs']) / Math.max(got, 1), 3)} µs/packet (user ${f(Number(c['userUs']) / Math.max(got, 1), 3)})`,
    );
  } finally {
    del();
  }
}

if (ROLE === 'send') sender(Math.min(arg('count', 1_000_000), 1_000_000), arg('rate', 0));
else if (ROLE === 'capture') void capture();
else if (process.getuid?.() !== 0) console.error('bench/native-io needs root (network namespaces, raw sockets)');
else void main();
