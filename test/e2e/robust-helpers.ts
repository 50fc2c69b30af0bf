/**
 * Network impairments for the robustness e2e tests (issue 4).
 *
 * This kernel has no sch_netem (CONFIG_NET_SCH_NETEM is not set, no modules), so `tc qdisc ...
 * netem` is emulated with netfilter, which the kernel has:
 * - loss: `iptables -m statistic --mode random --probability P -j DROP`;
 * - delay / reordering: `-j NFQUEUE` to a small Python helper (raw AF_NETLINK, no library)
 *   that holds each packet's verdict for the delay; in reorder mode a share of the packets
 *   (with netem-like correlation) is passed at once, so it overtakes the held ones, exactly
 *   what `netem delay D reorder P% C%` does.
 *
 * Where the rules sit (each is the egress of the link the brief names, or the receiver's
 * ingress where the sender bypasses netfilter):
 * - online -> target (tcpcopy's packets): the target's PREROUTING for tcp dport 8080 (tcpcopy
 *   may send through a packet socket, which skips the online host's netfilter);
 * - target -> assistant (the replies intercept captures): the target's POSTROUTING, sport 8080
 *   (intercept captures with a packet socket on the assistant, before its netfilter);
 * - assistant -> online (the intercept channel): the assistant's POSTROUTING, sport 36524.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Lab } from '../../src/lab/lab';
import type { HostName } from '../../src/lab/names';
import type { LabProcess } from '../../src/lab/process';

/** One impairment, applied to all three paths at once. */
export interface Impairment {
  /** Name for the report line. */
  name: string;
  /** Random loss, percent (0..100). */
  lossPct?: number;
  /** Delay of every held packet, ms. */
  delayMs?: number;
  /** Reorder mode: percent of packets passed at once (not delayed), like netem `reorder P%`. */
  reorderPct?: number;
  /** Correlation of the reorder decision, percent, like netem `reorder P% C%`. */
  reorderCorrPct?: number;
}

/** What the impairment did, read when it is removed: so a test can tell it from a clean run. */
export interface ImpairCounters {
  /** Per path (rules() order): packets that took the path, and packets the impairment rule matched (dropped or queued). */
  paths: Array<{ path: string; packets: number; matched: number }>;
  /** Per NFQUEUE helper (delay/reorder): packets it got, passed at once, delayed. */
  helpers: Array<{ host: HostName; packets: number; immediate: number; delayed: number }>;
  /** The same as one line for the test output. */
  text: string;
}

/** What {@link impair} returns. */
export interface ImpairHandle {
  /** Removes the rules and stops the helpers; returns what the impairment matched. */
  remove(): Promise<ImpairCounters>;
}

const NFQ_SCRIPT = String.raw`
import socket, struct, sys, time, heapq, random, signal, select
q = int(sys.argv[1]); delay = float(sys.argv[2]) / 1000.0; imm = float(sys.argv[3]) / 100.0; corr = float(sys.argv[4]) / 100.0
T = lambda x: (3 << 8) | x
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
try: s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)
except OSError: s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
s.bind((0, 0))
seq = [0]
def attr(t, d):
    l = 4 + len(d); return struct.pack('=HH', l, t) + d + b'\0' * ((4 - l % 4) % 4)
def msg(t, flags, body):
    seq[0] += 1; p = struct.pack('!BBH', socket.AF_UNSPEC, 0, q) + body
    return struct.pack('=IHHII', 16 + len(p), t, flags, seq[0], 0) + p
def cfg(body):
    s.send(msg(T(2), 1 | 4, body)); d = s.recv(65536)
    l, t = struct.unpack_from('=IH', d, 0)
    if t == 2 and struct.unpack_from('=i', d, 16)[0] != 0: raise SystemExit('nfq config failed: %d' % struct.unpack_from('=i', d, 16)[0])
cfg(attr(1, struct.pack('!BBH', 1, 0, socket.AF_INET)))
cfg(attr(2, struct.pack('!IB', 0, 1)) + attr(3, struct.pack('!I', 20000)))
held = []; n = [0, 0, 0, 0]; last = [random.random()]; maxh = [0]
def stop(*a):
    sys.stderr.write('nfq%d: packets=%d immediate=%d delayed=%d enobufs=%d maxHeld=%d\n' % (q, n[0], n[1], n[2], n[3], maxh[0])); sys.stderr.flush(); raise SystemExit(0)
signal.signal(signal.SIGTERM, stop); signal.signal(signal.SIGINT, stop)
print('nfq ready', flush=True)
k = 0
while True:
    now = time.monotonic(); out = []
    while held and held[0][0] <= now:
        out.append(msg(T(1), 1, attr(2, struct.pack('!II', 1, heapq.heappop(held)[2]))))
    if out: s.send(b''.join(out))
    to = max(0.0, held[0][0] - time.monotonic()) if held else 1.0
    r, _, _ = select.select([s], [], [], to)
    if not r: continue
    try: d = s.recv(1 << 20)
    except OSError: n[3] += 1; continue
    off = 0; now = time.monotonic(); out = []
    while off + 16 <= len(d):
        l, t = struct.unpack_from('=IH', d, off)
        if l < 16: break
        if t == T(0):
            a = off + 20
            while a + 4 <= off + l:
                al, at = struct.unpack_from('=HH', d, a)
                if al < 4: break
                if at & 0x3fff == 1:
                    pid = struct.unpack_from('!I', d, a + 4)[0]; n[0] += 1
                    u = corr * last[0] + (1 - corr) * random.random(); last[0] = u
                    if u < imm:
                        n[1] += 1; out.append(msg(T(1), 1, attr(2, struct.pack('!II', 1, pid))))
                    else:
                        n[2] += 1; k += 1; heapq.heappush(held, (now + delay, k, pid))
                a += (al + 3) & ~3
        off += (l + 3) & ~3
    maxh[0] = max(maxh[0], len(held))
    if out: s.send(b''.join(out))
`;

interface Rule {
  /** Which link, for the counters. */
  path: string;
  host: HostName;
  table: string;
  chain: string;
  match: string[];
}

function rules(lab: Lab): Rule[] {
  const t = lab.hosts.target.dev;
  const a = lab.hosts.assistant.dev;
  return [
    {
      path: 'online->target',
      host: 'target',
      table: 'mangle',
      chain: 'PREROUTING',
      match: ['-i', t, '-p', 'tcp', '--dport', '8080'],
    },
    {
      path: 'target->assistant',
      host: 'target',
      table: 'mangle',
      chain: 'POSTROUTING',
      match: ['-o', t, '-p', 'tcp', '--sport', '8080'],
    },
    {
      path: 'assistant->online',
      host: 'assistant',
      table: 'mangle',
      chain: 'POSTROUTING',
      match: ['-o', a, '-p', 'tcp', '--sport', '36524'],
    },
  ];
}

async function ipt(lab: Lab, host: HostName, args: string[]): Promise<void> {
  const r = await lab.exec(host, ['iptables', '-w', ...args]);
  if (r.code !== 0) throw new Error(`iptables ${args.join(' ')} on ${host}: ${r.stderr}`);
}

/** How long one NFQUEUE helper may take to bind its queue, ms: generous, a loaded machine (2 cores, 8 labs) has taken more than 10 s. */
export const NFQ_READY_MS = 45_000;
/** Attempts at starting a helper before impair() gives up (a stuck start is killed and retried). */
const NFQ_ATTEMPTS = 2;

/**
 * True once queue `num` is bound in the host's namespace: the kernel lists it in
 * /proc/net/netfilter/nfnetlink_queue (`queue_num peer_portid ...`). The rules jump to the queue
 * without --queue-bypass, so packets sent to an unbound queue would be dropped: this is the
 * readiness that matters, checked on the kernel's side rather than trusted from the helper.
 */
export async function nfqBound(lab: Lab, host: HostName, num: number): Promise<boolean> {
  const r = await lab.exec(host, ['cat', '/proc/net/netfilter/nfnetlink_queue'], { timeoutMs: 10_000 });
  return r.code === 0 && r.stdout.split('\n').some((l) => l.trim().split(/\s+/)[0] === String(num));
}

/**
 * Starts the NFQUEUE delay helper on a host and resolves once it is ready: it printed `nfq ready`
 * (it bound queue 0 and set copy mode and queue length) and the kernel lists queue 0 as bound.
 * A helper that is not ready within NFQ_READY_MS is killed and started again (NFQ_ATTEMPTS in all);
 * the error names every attempt.
 */
async function startNfqHelper(lab: Lab, host: HostName, args: string[]): Promise<{ proc: LabProcess; ready: string }> {
  const failures: string[] = [];
  for (let attempt = 1; attempt <= NFQ_ATTEMPTS; attempt++) {
    const t0 = Date.now();
    const p = lab.spawn(host, ['python3', ...args], { label: `nfq-${host}`, graceMs: 2000 });
    try {
      await p.waitFor(/nfq ready/, NFQ_READY_MS);
      for (;;) {
        if (await nfqBound(lab, host, 0))
          return {
            proc: p,
            ready: `ready in ${Date.now() - t0} ms${attempt > 1 ? ` (attempt ${attempt}: ${failures.join('; ')})` : ''}`,
          };
        if (Date.now() - t0 > NFQ_READY_MS)
          throw p.startError(`printed 'nfq ready' but queue 0 is not bound after ${NFQ_READY_MS} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } catch (e) {
      failures.push(`attempt ${attempt} (${Date.now() - t0} ms): ${(e as Error).message}`);
      await p.stop('SIGKILL', 1000);
    }
  }
  throw new Error(`NFQUEUE helper on ${host} not ready: ${failures.join('; ')}`);
}

/** Applies an impairment to the three paths; remove() undoes it (call it in finally). */
export async function impair(lab: Lab, imp: Impairment): Promise<ImpairHandle> {
  const applied: Array<{ host: HostName; table: string; chain: string; rule: string[] }> = [];
  const helpers: Array<{ host: HostName; proc: LabProcess; ready: string }> = [];
  const undo = async (): Promise<ImpairCounters> => {
    const paths = applied.length > 0 ? await ruleCounters(lab) : [];
    for (const r of applied.reverse())
      await ipt(lab, r.host, ['-t', r.table, '-D', r.chain, ...r.rule]).catch(() => undefined);
    applied.length = 0;
    const hs: ImpairCounters['helpers'] = [];
    let out = paths.map((p) => `${p.path} ${p.matched}/${p.packets}`).join(', ');
    for (const h of helpers) {
      await h.proc.stop('SIGTERM', 2000);
      const line = h.proc.stderr.trim();
      const m = /packets=(\d+) immediate=(\d+) delayed=(\d+)/.exec(line);
      hs.push({
        host: h.host,
        packets: Number(m?.[1] ?? 0),
        immediate: Number(m?.[2] ?? 0),
        delayed: Number(m?.[3] ?? 0),
      });
      out += `; ${line} (${h.ready})`;
    }
    helpers.length = 0;
    return { paths, helpers: hs, text: out };
  };
  try {
    const useQueue = imp.delayMs !== undefined;
    if (useQueue) {
      const script = path.join(lab.dir, 'nfq-delay.py');
      fs.writeFileSync(script, NFQ_SCRIPT);
      const args = [script, '0', String(imp.delayMs), String(imp.reorderPct ?? 0), String(imp.reorderCorrPct ?? 0)];
      for (const host of ['target', 'assistant'] as const)
        helpers.push({ host, ...(await startNfqHelper(lab, host, args)) });
    }
    for (const [i, r] of rules(lab).entries()) {
      const jump = useQueue
        ? ['-j', 'NFQUEUE', '--queue-num', '0']
        : ['-m', 'statistic', '--mode', 'random', '--probability', String((imp.lossPct ?? 0) / 100), '-j', 'DROP'];
      // a rule without a target first: counts every packet of the path (the impairment's share is judged against it)
      const count = [...r.match, '-m', 'comment', '--comment', `tcb-count-${i}`];
      const rule = [...r.match, '-m', 'comment', '--comment', `tcb-impair-${i}`, ...jump];
      for (const x of [count, rule]) {
        await ipt(lab, r.host, ['-t', r.table, '-A', r.chain, ...x]);
        applied.push({ host: r.host, table: r.table, chain: r.chain, rule: x });
      }
    }
  } catch (e) {
    await undo();
    throw e;
  }
  return { remove: undo };
}

/** Packet counters of the rules impair() added: per path, packets seen and packets the impairment matched. */
export async function ruleCounters(lab: Lab): Promise<ImpairCounters['paths']> {
  const pkts = new Map<string, number>();
  for (const host of ['target', 'assistant'] as const) {
    const r = await lab.exec(host, ['iptables', '-w', '-t', 'mangle', '-L', '-v', '-n', '-x']);
    if (r.code !== 0) throw new Error(`iptables -L on ${host}: ${r.stderr}`);
    for (const l of r.stdout.split('\n')) {
      const m = /\/\* (tcb-(?:count|impair)-\d+) \*\//.exec(l);
      if (m !== null) pkts.set(m[1] as string, Number(l.trim().split(/\s+/)[0]));
    }
  }
  return rules(lab).map((r, i) => ({
    path: r.path,
    packets: pkts.get(`tcb-count-${i}`) ?? -1,
    matched: pkts.get(`tcb-impair-${i}`) ?? -1,
  }));
}
