/**
 * Issue 18 item 12: NFQUEUE intercept on the target, one request per connection, run N times in
 * a row in one lab (the layout of test/e2e/intercept-nfqueue.test.ts), with every place a loss
 * could show recorded per run:
 *
 * - the online and target access logs (the ratio, and the client ip:port of each request the
 *   target did not log),
 * - tcpcopy's report (loss reasons, outcomes, replies without session),
 * - intercept's counters (its metrics, differences per run),
 * - the kernel's: the NFQUEUE rule's packet count (`iptables -vx`; packets that found no bound
 *   queue vanish without any other counter), /proc/net/netfilter/nfnetlink_queue (queue_dropped,
 *   user_dropped, the id sequence = packets queued).
 *
 * The target's replies are also logged by an NFLOG rule ahead of the NFQUEUE rule and written
 * with the target's incoming traffic to pcaps per run; a lossy run keeps them and the lab dir.
 * Run under the e2e lock (it builds namespaces):
 *
 *   flock /tmp/tcpcopy-e2e.lock node dist/bench/nfq-short.js [--runs 10] [--requests 2000]
 *     [--concurrency 10] [--addresses N] [--wrk SECONDS] [--stress N] [--restart-intercept] [--prefix tnq18]
 *
 * --wrk S loads with wrk (`Connection: close`, one client address) for S seconds instead of the
 * lab's loadgen; --addresses N uses only N of the client's addresses (more port reuse); --stress N
 * runs N CPU spinners during each run (a loaded machine).
 *
 * No assertions: it prints one line per run and a summary (exit 1 when a run is below 0.999).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Lab } from '../src/lab/lab';
import type { LabProcess } from '../src/lab/process';
import { parseNginxLog, type AccessRecord } from '../src/lab/access-log';

const TARGET = '198.18.0.2';
const PATHS = ['/', '/bytes/100', '/bytes/1000', '/status/404'];
const DIST = path.join(__dirname, '..');
const TCPCOPY = path.join(DIST, 'src', 'cli', 'tcpcopy-main.js');
const INTERCEPT = path.join(DIST, 'src', 'cli', 'intercept-main.js');
const METRICS = '127.0.0.1:9412';

interface Opts {
  runs: number;
  requests: number;
  concurrency: number;
  restartIntercept: boolean;
  prefix: string;
  /** Load with wrk for this many seconds (one client address, `Connection: close`) instead of the lab's loadgen. */
  wrkSeconds: number;
  /** loadgen: client addresses used (0 = all 21). */
  addresses: number;
  /** CPU spinners started for each run (a loaded machine), each bounded to 40 s. */
  stress: number;
}

function parseArgs(argv: string[]): Opts {
  const o: Opts = {
    runs: 10,
    requests: 2000,
    concurrency: 10,
    restartIntercept: false,
    prefix: 'tnq18',
    wrkSeconds: 0,
    addresses: 0,
    stress: 0,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = (): number => Number(argv[++i]);
    if (a === '--runs') o.runs = v();
    else if (a === '--requests') o.requests = v();
    else if (a === '--concurrency') o.concurrency = v();
    else if (a === '--restart-intercept') o.restartIntercept = true;
    else if (a === '--prefix') o.prefix = String(argv[++i]);
    else if (a === '--wrk') o.wrkSeconds = v();
    else if (a === '--addresses') o.addresses = v();
    else if (a === '--stress') o.stress = v();
    else throw new Error(`unknown argument ${a}`);
  }
  return o;
}

const say = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

async function sh(lab: Lab, argv: string[]): Promise<string> {
  const r = await lab.exec('target', argv);
  if (r.code !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Prometheus text -> name{labels} -> value. */
function parseProm(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    m.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return m;
}

/** The kernel's counters: the NFQUEUE rule's packets, and queue 0's line of nfnetlink_queue. */
async function kernelCounters(lab: Lab): Promise<{ rulePkts: number; nflogPkts: number; q: number[] }> {
  const rules = await sh(lab, ['iptables', '-vxnL', 'OUTPUT']);
  let rulePkts = -1,
    nflogPkts = -1;
  for (const line of rules.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (/NFQUEUE/.test(line)) rulePkts = Number(f[0]);
    if (/NFLOG/.test(line)) nflogPkts = Number(f[0]);
  }
  const q = (await lab.exec('target', ['cat', '/proc/net/netfilter/nfnetlink_queue'])).stdout
    .trim()
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number))
    .find((f) => f[0] === 0);
  return { rulePkts, nflogPkts, q: q ?? [] };
}

async function scrape(lab: Lab): Promise<Map<string, number>> {
  const r = await lab.exec('target', ['curl', '-s', '--max-time', '5', `http://${METRICS}/metrics`]);
  return parseProm(r.stdout);
}

function readLog(file: string): AccessRecord[] {
  try {
    return parseNginxLog(fs.readFileSync(file, 'utf8')).records;
  } catch {
    return [];
  }
}

async function startIntercept(lab: Lab, rep: string): Promise<LabProcess> {
  const icp = lab.spawn(
    'target',
    [process.execPath, INTERCEPT, '--nfqueue', '-q', '4096', '-x', '198.18.0.1', '--metrics', METRICS, '--report', rep],
    { stopSignal: 'SIGINT', graceMs: 10_000 },
  );
  await icp.waitFor(/listening on/, 60_000);
  return icp;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const lab = await Lab.up({ prefix: o.prefix, clientAddresses: 20, keepDir: true });
  let keep = false;
  const ratios: number[] = [];
  try {
    say(`lab dir ${lab.dir}`);
    const dev = lab.hosts.target.dev;
    for (const net of ['198.18.1.0/24', '198.18.2.0/24']) {
      await lab.exec('target', ['ip', 'route', 'del', net]);
      await sh(lab, ['ip', 'route', 'add', net, 'via', '198.18.0.1', 'dev', dev]);
    }
    await sh(lab, ['iptables', '-I', 'OUTPUT', '-p', 'tcp', '--sport', '8080', '-j', 'NFQUEUE', '--queue-num', '0']);
    // inserted ahead of the NFQUEUE rule: a copy of every reply for the pcap (group 5)
    await sh(lab, ['iptables', '-I', 'OUTPUT', '-p', 'tcp', '--sport', '8080', '-j', 'NFLOG', '--nflog-group', '5']);
    const on = await lab.startNginx('online', { port: 80 });
    const tg = await lab.startNginx('target', { port: 8080 });
    let icpN = 0;
    let icp = await startIntercept(lab, path.join(lab.dir, `icp-${icpN}.json`));
    for (let run = 1; run <= o.runs; run++) {
      if (o.restartIntercept && run > 1) {
        await icp.stop('SIGINT', 10_000);
        icp = await startIntercept(lab, path.join(lab.dir, `icp-${++icpN}.json`));
      }
      const replies = await lab.capture('target', {
        dev: 'nflog:5',
        filter: '',
        file: path.join(lab.dir, `run${run}-replies.pcap`),
      });
      const incoming = await lab.capture('target', {
        filter: 'tcp port 8080',
        file: path.join(lab.dir, `run${run}-in.pcap`),
      });
      const k0 = await kernelCounters(lab);
      const m0 = await scrape(lab);
      const on0 = readLog(on.accessLog).length,
        tg0 = readLog(tg.accessLog).length;
      const report = path.join(lab.dir, `run${run}-tcpcopy.json`);
      const logFile = path.join(lab.dir, `run${run}-tcpcopy.log`);
      const tc = lab.spawn(
        'online',
        [
          process.execPath,
          TCPCOPY,
          '-x',
          `80-${TARGET}:8080`,
          '-s',
          TARGET,
          '--report',
          `json:${report}`,
          '--status',
          '0',
        ],
        { stopSignal: 'SIGINT', graceMs: 30_000, logFile },
      );
      await tc.waitFor(/capturing on/, 60_000);
      const spin: LabProcess[] = [];
      for (let i = 0; i < o.stress; i++)
        spin.push(
          lab.spawn('client', [process.execPath, '-e', 'const end=Date.now()+40000;while(Date.now()<end);'], {
            label: `spin${i}`,
          }),
        );
      let sent: string;
      if (o.wrkSeconds > 0) {
        const w = await lab.exec(
          'client',
          [
            'wrk',
            '-t2',
            `-c${o.concurrency}`,
            `-d${o.wrkSeconds}s`,
            '-H',
            'Connection: close',
            'http://198.18.1.1/bytes/100',
          ],
          { timeoutMs: o.wrkSeconds * 1000 + 30_000 },
        );
        const m = /(\d+) requests in/.exec(w.stdout);
        const rps = /Requests\/sec:\s+([\d.]+)/.exec(w.stdout);
        sent = `wrk ${m?.[1] ?? '?'} ${rps?.[1] ?? '?'}req/s`;
      } else {
        const sum = await lab.load('client', {
          url: 'http://198.18.1.1/',
          requests: o.requests,
          durationMs: 30_000,
          concurrency: o.concurrency,
          keepAlive: false,
          paths: PATHS,
          ...(o.addresses > 0 ? { localAddresses: lab.hosts.client.addresses.slice(0, o.addresses) } : {}),
        });
        sent = `sent=${sum.requestsSent} ${Math.round(sum.requestsPerSec)}req/s`;
      }
      // settle: the target's log stops growing for 1.5 s (at most 30 s)
      const want = readLog(on.accessLog).length - on0;
      let last = -1,
        since = Date.now();
      const deadline = Date.now() + 30_000;
      for (;;) {
        await new Promise((r) => setTimeout(r, 100));
        const c = readLog(tg.accessLog).length - tg0;
        if (c !== last) {
          last = c;
          since = Date.now();
        }
        if ((c >= want && Date.now() - since >= 1500) || Date.now() > deadline) break;
      }
      for (const p of spin) await p.stop('SIGKILL', 1000);
      await tc.stop('SIGINT', 30_000);
      await replies.stop();
      await incoming.stop();
      const k1 = await kernelCounters(lab);
      const m1 = await scrape(lab);
      const onRecs = readLog(on.accessLog).slice(on0),
        tgRecs = readLog(tg.accessLog).slice(tg0);
      const ratio = tgRecs.length / Math.max(1, onRecs.length);
      ratios.push(ratio);
      const tgKeys = new Set(tgRecs.map((r) => `${r.remoteAddr}:${r.remotePort} ${r.url}`));
      const missing = onRecs.filter((r) => !tgKeys.has(`${r.remoteAddr}:${r.remotePort} ${r.url}`));
      let rp: Record<string, unknown> | null = null;
      try {
        rp = JSON.parse(fs.readFileSync(report, 'utf8')) as Record<string, unknown>;
      } catch {
        rp = null;
      }
      const e = (rp?.['engine'] ?? {}) as Record<string, unknown>;
      const d = (name: string): number => (m1.get(name) ?? 0) - (m0.get(name) ?? 0);
      const nonZero = (r: unknown): string =>
        JSON.stringify(
          Object.fromEntries(Object.entries((r ?? {}) as Record<string, number>).filter(([, v]) => v !== 0)),
        );
      // queue line: queue portid waiting copy_mode copy_range queue_dropped user_dropped id_sequence 1
      const qd = (i: number): number => (k1.q[i] ?? 0) - (k0.q[i] ?? 0);
      say(
        `run ${run}: ${sent} online=${onRecs.length} target=${tgRecs.length} ratio=${ratio.toFixed(4)} missing=${missing.length}`,
      );
      say(
        `  tcpcopy: lost=${nonZero(e['requestsLost'])} outcomes=${nonZero(e['outcomes'])} replies=${String(e['replies'])} noSession=${String(e['repliesNoSession'])} queued=${String(e['sessionsQueued'])} retrans=${String(e['retransTimeout'])}/${String(e['retransFast'])}`,
      );
      say(
        `  intercept: replies=${d('intercept_replies_total')} routed=${d('intercept_replies_routed_total')} noRoute=${d('intercept_replies_no_route_total')} held=${d('intercept_replies_held_total')} heldDelivered=${d('intercept_replies_held_delivered_total')} recordsDropped=${d('intercept_records_dropped_total')} captureDropped=${d('intercept_capture_dropped_total')}`,
      );
      say(
        `  kernel: NFLOG rule=${k1.nflogPkts - k0.nflogPkts} NFQUEUE rule=${k1.rulePkts - k0.rulePkts} queued(id)=${qd(7)} queue_dropped=${qd(5)} user_dropped=${qd(6)} waiting=${k1.q[2] ?? '?'}`,
      );
      if (missing.length > 0 || ratio < 0.999) {
        keep = true;
        say(
          `  missing (first 30): ${missing
            .slice(0, 30)
            .map((r) => `${r.remoteAddr}:${r.remotePort}${r.url}`)
            .join(' ')}`,
        );
      } else {
        for (const f of [replies.file, incoming.file]) fs.rmSync(f, { force: true });
      }
    }
    await icp.stop('SIGINT', 10_000);
  } finally {
    await lab.down();
    if (!keep) fs.rmSync(lab.dir, { recursive: true, force: true });
    else say(`lossy run(s): kept ${lab.dir}`);
  }
  const low = ratios.filter((r) => r < 0.999).length;
  say(
    `summary: ${ratios.length} runs, ratios ${ratios.map((r) => r.toFixed(4)).join(' ')}; min ${Math.min(...ratios).toFixed(4)}; below 0.999: ${low}`,
  );
  process.exitCode = low > 0 ? 1 : 0;
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 2;
});
