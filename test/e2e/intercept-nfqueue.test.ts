import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { withLab, type Lab } from '../../src/lab/lab';
import type { InterceptStats } from '../../src/intercept/types';
import {
  skipUnlessRoot,
  INTERCEPT,
  startLiveTcpcopy,
  waitSettled,
  type TcpcopyJsonReport,
  accessLogLines,
} from './replay-helpers';

/**
 * Issue 6 part 2: intercept on the target via NFQUEUE. The target has no route via the
 * assistant (deleted; its client routes point at online instead, like a default gateway),
 * `iptables -I OUTPUT -p tcp --sport 8080 -j NFQUEUE` queues its replies, intercept --nfqueue
 * on the target reads them, returns the headers to tcpcopy and drops them. tcpdump on the
 * target's LAN device must see no reply from 8080 to the client range.
 */

const TARGET = '198.18.0.2';
const PATHS = ['/', '/bytes/100', '/bytes/1000', '/status/404'];

function say(line: string): void {
  process.stdout.write(`# ${line}\n`);
}

async function sh(lab: Lab, argv: string[]): Promise<string> {
  const r = await lab.exec('target', argv);
  assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const METRICS = '127.0.0.1:9413';

/**
 * Where a loss on the reply path would show, as numbers that a case's before/after difference
 * names: intercept's counters (its metrics) and the kernel's (the NFQUEUE rule's packets, and
 * queue 0's line of /proc/net/netfilter/nfnetlink_queue: queue_dropped, user_dropped, the id
 * sequence = packets queued to intercept).
 */
async function lossCounters(lab: Lab): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  const text = (await lab.exec('target', ['curl', '-s', '--max-time', '5', `http://${METRICS}/metrics`])).stdout;
  for (const line of text.split('\n')) {
    const r = /^intercept_(\w+)(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (r && !line.includes('peer=')) m.set(r[1] as string, (m.get(r[1] as string) ?? 0) + Number(r[2]));
  }
  for (const line of (await sh(lab, ['iptables', '-vxnL', 'OUTPUT'])).split('\n'))
    if (line.includes('NFQUEUE')) m.set('kernel_rule_packets', Number(line.trim().split(/\s+/)[0]));
  const q = (await sh(lab, ['cat', '/proc/net/netfilter/nfnetlink_queue']))
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number))
    .find((f) => f[0] === 0);
  m.set('kernel_queue_dropped', q?.[5] ?? 0);
  m.set('kernel_user_dropped', q?.[6] ?? 0);
  m.set('kernel_queued', q?.[7] ?? 0);
  return m;
}

/** The non-zero differences of the loss counters, and the packets the rule matched that never reached the queue. */
function lossText(a: Map<string, number>, b: Map<string, number>): string {
  const names = [
    'replies_total',
    'replies_routed_total',
    'replies_no_route_total',
    'replies_held_total',
    'replies_held_delivered_total',
    'replies_held_expired_total',
    'replies_hold_full_total',
    'records_dropped_total',
    'capture_dropped_total',
    'kernel_rule_packets',
    'kernel_queued',
    'kernel_queue_dropped',
    'kernel_user_dropped',
  ];
  const d = (n: string): number => (b.get(n) ?? 0) - (a.get(n) ?? 0);
  // queue-full drops take no id; anything else the rule matched and the queue did not number found no listener
  const unqueued = d('kernel_rule_packets') - d('kernel_queued') - d('kernel_queue_dropped');
  return `${names.map((n) => `${n}=${d(n)}`).join(' ')} kernel_not_queued=${unqueued}`;
}

test(
  'intercept --nfqueue on the target, no assistant route (issue 6)',
  { skip: skipUnlessRoot(), timeout: 600_000 },
  async (t) => {
    await withLab({ prefix: 'tcf2', clientAddresses: 20 }, async (lab) => {
      const dev = lab.hosts.target.dev;
      // no route via the assistant: the client networks go to online (a plain gateway) instead
      for (const net of ['198.18.1.0/24', '198.18.2.0/24']) {
        await lab.exec('target', ['ip', 'route', 'del', net]);
        await sh(lab, ['ip', 'route', 'add', net, 'via', '198.18.0.1', 'dev', dev]);
      }
      const routes = await sh(lab, ['ip', 'route', 'show']);
      assert.ok(!/via 198\.18\.0\.3/.test(routes), `target routes: ${routes}`);
      await sh(lab, ['iptables', '-I', 'OUTPUT', '-p', 'tcp', '--sport', '8080', '-j', 'NFQUEUE', '--queue-num', '0']);

      const on = await lab.startNginx('online', { port: 80 });
      const tg = await lab.startNginx('target', { port: 8080 });
      const rep = path.join(lab.dir, 'icp-nfq.json');
      const icp = lab.spawn(
        'target',
        [
          process.execPath,
          INTERCEPT,
          '--nfqueue',
          '-q',
          '4096',
          '-x',
          '198.18.0.1',
          '--metrics',
          METRICS,
          '--report',
          rep,
        ],
        { stopSignal: 'SIGINT', graceMs: 10_000 },
      );
      for (let i = 0; i < 200 && !/listening on/.test(icp.stderr); i++) {
        assert.ok(icp.running, `intercept exited: ${icp.stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.match(icp.stderr, /reading NFQUEUE 0/);
      const cap = await lab.capture('target', {
        filter: 'tcp and src port 8080',
        file: path.join(lab.dir, 'target-lan.pcap'),
      });

      const cases: { name: string; keepAlive: boolean; requests: number; concurrency: number }[] = [
        { name: 'keep-alive', keepAlive: true, requests: 4000, concurrency: 10 },
        // NFQ_SHORT_REPEAT=N runs the one-request-per-connection case N times in a row (issue 18 item 12)
        ...Array.from({ length: Math.max(1, Number(process.env['NFQ_SHORT_REPEAT'] ?? 1) || 1) }, (_, i) => ({
          name: i === 0 ? 'short' : `short #${i + 1}`,
          keepAlive: false,
          requests: 2000,
          concurrency: 10,
        })),
      ];
      for (const c of cases) {
        await t.test(c.name, async () => {
          const mo = accessLogLines(on),
            mt = accessLogLines(tg);
          const c0 = await lossCounters(lab);
          const tc = await startLiveTcpcopy(lab, ['-x', `80-${TARGET}:8080`, '-s', TARGET]);
          const sum = await lab.load('client', {
            url: 'http://198.18.1.1/',
            requests: c.requests,
            durationMs: 15_000,
            concurrency: c.concurrency,
            keepAlive: c.keepAlive,
            paths: PATHS,
          });
          const online = accessLogLines(on) - mo;
          const got = await waitSettled(() => accessLogLines(tg) - mt, online, 30_000, 1500);
          const r = await tc.stop();
          const rp = r.report as (TcpcopyJsonReport & { engine: { repliesNoSession: number } }) | null;
          // where a loss would show: tcpcopy's loss reasons and capture drops, the kernel's queue drops
          const q = (await lab.exec('target', ['cat', '/proc/net/netfilter/nfnetlink_queue'])).stdout.trim();
          const counters = lossText(c0, await lossCounters(lab));
          // the requests the online server logged and the target did not (client address, port, URL)
          const key = (x: { remoteAddr: string; remotePort: number; url: string }): string =>
            `${x.remoteAddr}:${x.remotePort}${x.url}`;
          const tgKeys = new Set(tg.readLog().records.slice(mt).map(key));
          const missing = on
            .readLog()
            .records.slice(mo)
            .map(key)
            .filter((k) => !tgKeys.has(k));
          const nonZero = (r: Record<string, number> | undefined): string =>
            JSON.stringify(Object.fromEntries(Object.entries(r ?? {}).filter(([, v]) => v !== 0)));
          const diag = `lost=${nonZero(rp?.engine.requestsLost)} captured=${rp?.engine.requestsCaptured} capture=${JSON.stringify(rp?.capture)} retrans=${rp?.engine.retransTimeout}/${rp?.engine.retransFast} queued=${rp?.engine.sessionsQueued}; this case's counters: ${counters}; nfnetlink_queue (queue portid waiting mode range queue_dropped user_dropped id 1): ${q}; missing ${missing.length}: ${missing.slice(0, 20).join(' ')}`;
          say(
            `nfqueue ${c.name}: sent=${sum.requestsSent} ${Math.round(sum.requestsPerSec)}req/s online=${online} target=${got} ratio=${(got / online).toFixed(4)}; tcpcopy replies=${rp?.engine.replies} noSession=${rp?.engine.repliesNoSession} outcomes=${nonZero(rp?.engine.outcomes)}`,
          );
          say(`nfqueue ${c.name}: ${diag}`);
          assert.equal(r.code, 0, r.stderr.slice(-2000));
          assert.ok(got / online >= 0.999, `${c.name}: target ${got} / online ${online}; ${diag}`);
          assert.ok(got <= online, `${c.name}: target ${got} > online ${online}`);
        });
      }

      await t.test('pass list: replies to -x addresses are accepted', async () => {
        const s = await lab.load('online', {
          url: `http://${TARGET}:8080/`,
          requests: 50,
          // an upper bound, not a rate: on a loaded machine 50 requests have taken more than 5 s
          durationMs: 30_000,
          concurrency: 2,
          keepAlive: false,
        });
        say(`pass list: online -> target:8080 direct: ok=${s.responsesOk}/${s.requestsSent}`);
        // replies to a pass-listed address that intercept kept would leave these unanswered
        assert.ok(s.requestsSent > 0, 'requests sent');
        assert.equal(s.responsesOk, s.requestsSent, 'every request to the target answered');
      });

      await cap.stop();
      await icp.stop('SIGINT', 10_000);
      const st = JSON.parse(fs.readFileSync(rep, 'utf8')) as InterceptStats & { capture: Record<string, number> };
      const pcap = fs.readFileSync(cap.file);
      const leaked = await lab.exec('target', [
        'tcpdump',
        '-nn',
        '-r',
        cap.file,
        'src port 8080 and (dst net 198.18.1.0/24 or dst net 198.18.2.0/24)',
      ]);
      const leakedN = leaked.stdout.trim() === '' ? 0 : leaked.stdout.trim().split('\n').length;
      const passedN = (
        await lab.exec('target', ['tcpdump', '-nn', '-r', cap.file, 'src port 8080 and dst host 198.18.0.1'])
      ).stdout
        .trim()
        .split('\n')
        .filter(Boolean).length;
      say(
        `nfqueue intercept: captured=${st.captured} routed=${st.routed} noRoute=${st.noRoute} held=${st.held} heldDelivered=${st.heldDelivered} recordsDropped=${st.recordsDropped} undecodable=${st.undecodable} capture=${JSON.stringify(st.capture)}; target LAN pcap ${pcap.length} bytes: replies to clients=${leakedN}, to pass-listed 198.18.0.1=${passedN}`,
      );
      assert.equal(leakedN, 0, `replies left the target:\n${leaked.stdout.slice(0, 2000)}`);
      assert.ok(passedN > 0, 'pass-listed replies left the target');
      assert.equal(st.capture['verdictErrors'], 0);
      assert.ok((st.capture['droppedByVerdict'] ?? 0) >= st.routed);
    });
  },
);
