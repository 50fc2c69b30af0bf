/**
 * Platform benchmark (issue 7): what a wake-up of a Node process costs on this machine, the
 * fixed price tcpcopy pays per event-loop turn whatever it does in the turn. At moderate
 * loads tcpcopy's CPU per request is dominated by it (doc/performance.md, "Where the CPU
 * goes"). Three kinds of wake-up, each `count` times at `rate` per second, CPU of this
 * process per wake-up (process.cpuUsage, user + system):
 * - timer: a setTimeout chain (the kernel's timer interrupt wakes the process);
 * - udp: a datagram from another process (the sender's write wakes it);
 * - ring: our capture ring (native addon, TPACKET_V3, 1 ms block timeout) seeing one
 *   datagram on loopback per wake-up: tcpcopy's own capture path with nothing else to do;
 * - ring-sync: the same ring read by a blocking loop (RingCapture.pollOnce: poll(2) in the
 *   addon, no event loop), which isolates what the Node event loop adds to a wake-up.
 *   The ring kinds need root (CAP_NET_RAW); skipped otherwise.
 * - c-timer, c-udp: the same as timer and udp for a small C program (bench/probe/wake-probe.c,
 *   compiled with the system's cc into a temporary directory; skipped without cc): what the
 *   machine itself charges for a wake-up, without Node's memory footprint.
 * The sender is a child Node process; only loopback is used.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as dgram from 'node:dgram';
import { RingCapture } from '../src/io/ring-capture';

/** CPU per wake-up of one kind. */
export interface WakeFigure {
  kind: 'timer' | 'udp' | 'ring' | 'ring-sync' | 'c-timer' | 'c-udp';
  /** Wake-ups asked for per second. */
  rate: number;
  /** Wake-ups counted. */
  wakeups: number;
  /** CPU of this process per wake-up, µs. */
  cpuUsPerWakeup: number;
}

const cpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** A child Node process sending `count` one-byte datagrams to 127.0.0.1:port at `rate` per second. */
function spawnSender(port: number, rate: number, count: number): ChildProcess {
  const code = `const s=require('dgram').createSocket('udp4');let i=0;const t=setInterval(()=>{s.send('x',${port},'127.0.0.1');if(++i>=${count}){clearInterval(t);setTimeout(()=>process.exit(0),50);}},${1000 / rate});`;
  return spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
}

/** spawnSender, resolving when the sender exits. */
function sendFromChild(port: number, rate: number, count: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawnSender(port, rate, count);
    c.on('error', reject);
    c.on('exit', () => resolve());
  });
}

/** Timer wake-ups: a chain of setTimeout(1000 / rate). */
export function timerWakeups(rate: number, count: number): Promise<WakeFigure> {
  return new Promise((resolve) => {
    let n = 0;
    const c0 = cpuUs();
    const step = (): void => {
      if (++n >= count) {
        resolve({ kind: 'timer', rate, wakeups: n, cpuUsPerWakeup: (cpuUs() - c0) / n });
        return;
      }
      setTimeout(step, 1000 / rate);
    };
    setTimeout(step, 1000 / rate);
  });
}

/** Datagram wake-ups: a UDP socket receiving from a child process. */
export async function udpWakeups(rate: number, count: number): Promise<WakeFigure> {
  const sock = dgram.createSocket('udp4');
  let n = 0;
  sock.on('message', () => {
    n++;
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const c0 = cpuUs();
  await sendFromChild(sock.address().port, rate, count);
  const used = cpuUs() - c0;
  sock.close();
  return { kind: 'udp', rate, wakeups: n, cpuUsPerWakeup: used / Math.max(1, n) };
}

/** Capture-ring wake-ups: RingCapture on lo (1 ms block timeout), one datagram per block. */
export async function ringWakeups(rate: number, count: number): Promise<WakeFigure> {
  const port = 40_000 + Math.floor(Math.random() * 20_000);
  let blocks = 0;
  const cap = new RingCapture({
    device: 'lo',
    filter: `udp dst port ${port}`,
    snaplen: 256,
    bufferMB: 4,
    blockKB: 4,
    blockTimeoutMs: 1,
    direction: 'in',
  });
  await cap.start({
    packet() {
      /* counted per block */
    },
    batchEnd() {
      blocks++;
    },
  });
  try {
    // nothing listens on the port: the datagrams wake only the ring (loopback answers with ICMP
    // port unreachable to the sender, which ignores it)
    const c0 = cpuUs();
    const b0 = blocks;
    await sendFromChild(port, rate, count);
    return { kind: 'ring', rate, wakeups: blocks - b0, cpuUsPerWakeup: (cpuUs() - c0) / Math.max(1, blocks - b0) };
  } finally {
    cap.close();
  }
}

/**
 * The same ring read by a blocking loop (pollOnce blocks in poll(2) inside the addon). The
 * sender runs in a child process while this process blocks; the loop ends when the child
 * has sent `count` datagrams and no block came for 500 ms.
 */
export async function ringSyncWakeups(rate: number, count: number): Promise<WakeFigure> {
  const port = 40_000 + Math.floor(Math.random() * 20_000);
  let blocks = 0;
  let packets = 0;
  const cap = new RingCapture({
    device: 'lo',
    filter: `udp dst port ${port}`,
    snaplen: 256,
    bufferMB: 4,
    blockKB: 4,
    blockTimeoutMs: 1,
    direction: 'in',
  });
  cap.open({
    packet() {
      packets++;
    },
    batchEnd() {
      blocks++;
    },
  });
  try {
    const child = spawnSender(port, rate, count);
    // blocks until the first datagram (child start-up excluded), then until the stream ends
    while (blocks === 0) cap.pollOnce(64, 5000);
    const b0 = blocks;
    const t0 = cpuUs();
    while (packets < count && cap.pollOnce(64, 500) > 0) {
      /* one wake-up per block */
    }
    const used = cpuUs() - t0;
    child.kill('SIGTERM');
    return { kind: 'ring-sync', rate, wakeups: blocks - b0, cpuUsPerWakeup: used / Math.max(1, blocks - b0) };
  } finally {
    cap.close();
  }
}

/** Compiles bench/probe/wake-probe.c with cc into a temporary directory; null when that fails. */
export function buildWakeProbe(): string | null {
  const src = path.join(__dirname, '..', '..', 'bench', 'probe', 'wake-probe.c');
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tcpcopy-probe-')), 'wake-probe');
  try {
    execFileSync('cc', ['-O2', '-o', out, src], { stdio: 'ignore' });
    return out;
  } catch {
    return null;
  }
}

/** Runs the C probe: `timer` wake-ups by itself, or `udp` wake-ups fed by a child Node sender. */
export async function cWakeups(probe: string, kind: 'timer' | 'udp', rate: number, count: number): Promise<WakeFigure> {
  const port = 40_000 + Math.floor(Math.random() * 20_000);
  const p = spawn(
    probe,
    kind === 'timer' ? ['timer', String(rate), String(count)] : ['udp', String(port), String(count)],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (b: Buffer) => {
    stdout += b.toString();
  });
  const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
  if (kind === 'udp') {
    await new Promise<void>((resolve, reject) => {
      p.stderr.on('data', (b: Buffer) => {
        stderr += b.toString();
        if (stderr.includes('ready')) resolve();
      });
      p.on('exit', () => reject(new Error(`wake-probe exited: ${stderr}`)));
    });
    await sendFromChild(port, rate, count);
  }
  const code = await exited;
  if (code !== 0) throw new Error(`wake-probe ${kind} exited with ${code}: ${stderr}`);
  const r = JSON.parse(stdout) as { wakeups: number; cpuUs: number };
  return {
    kind: kind === 'timer' ? 'c-timer' : 'c-udp',
    rate,
    wakeups: r.wakeups,
    cpuUsPerWakeup: r.cpuUs / Math.max(1, r.wakeups),
  };
}

/** The platform suite: each kind at 200 and 1000 wake-ups per second. */
export async function platformSuite(log: (s: string) => void, isRoot: boolean): Promise<WakeFigure[]> {
  const out: WakeFigure[] = [];
  const probe = buildWakeProbe();
  for (const rate of [200, 1000]) {
    const count = rate * 5;
    const figs = [await timerWakeups(rate, count), await udpWakeups(rate, count)];
    if (isRoot) figs.push(await ringWakeups(rate, count), await ringSyncWakeups(rate, count));
    if (probe !== null)
      figs.push(await cWakeups(probe, 'timer', rate, count), await cWakeups(probe, 'udp', rate, count));
    for (const f of figs) {
      out.push(f);
      log(
        `platform: ${f.kind} wake-ups at ${f.rate}/s: ${f.wakeups} counted, ${f.cpuUsPerWakeup.toFixed(1)} us CPU per wake-up`,
      );
    }
  }
  if (!isRoot) log('platform: ring wake-ups skipped (needs root)');
  if (probe === null) log('platform: C baseline skipped (cc could not build bench/probe/wake-probe.c)');
  else fs.rmSync(path.dirname(probe), { recursive: true, force: true });
  return out;
}
