import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { withLab, type Lab } from '../../src/lab/lab';
import type { LoadOptions } from '../../src/lab/loadgen';
import type { InterceptStats } from '../../src/intercept/types';
import type { LabProcess } from '../../src/lab/process';
import {
  skipUnlessRoot,
  startIntercept,
  startLiveTcpcopy,
  waitSettled,
  type TcpcopyJsonReport,
  accessLogLines,
} from './replay-helpers';

/**
 * Issue 6 part 1: distributed copying. Two online hosts, each with its own nginx and live
 * tcpcopy (-f 0 / -f 1), one target, one intercept on the assistant; then one tcpcopy using two
 * intercepts (-s ip:p1,ip:p2) with -C 4 connections each.
 */

const TARGET = '198.18.0.2';
const ASSIST = '198.18.0.3';
const PATHS = ['/', '/bytes/100', '/bytes/1000', '/status/404'];

function say(line: string): void {
  process.stdout.write(`# ${line}\n`);
}

type Report = TcpcopyJsonReport & { engine: { repliesNoSession: number }; channel: Record<string, number> };

/** Stops an intercept started with --report and reads its final counters. */
async function stopIntercept(p: LabProcess, file: string): Promise<InterceptStats> {
  await p.stop('SIGINT', 10_000);
  return JSON.parse(fs.readFileSync(file, 'utf8')) as InterceptStats;
}

/** Every peer (connected or gone) of an intercept whose label starts with `ip:`. */
function peersOf(s: InterceptStats, ip: string): InterceptStats['perPeer'] {
  return [...s.perPeer, ...s.pastPeers].filter((p) => p.peer.startsWith(`${ip}:`));
}

const load = (url: string, keepAlive: boolean, requests: number, concurrency: number): LoadOptions => ({
  url,
  requests,
  durationMs: 15_000,
  concurrency,
  keepAlive,
  paths: PATHS,
});

test(
  'distributed copying: two tcpcopy, one intercept; one tcpcopy, two intercepts (issue 6)',
  { skip: skipUnlessRoot(), timeout: 600_000 },
  async (t) => {
    await withLab({ prefix: 'tcf1', clientAddresses: 20, online2: true }, async (lab: Lab) => {
      const on1 = await lab.startNginx('online', { port: 80 });
      const on2 = await lab.startNginx('online2', { port: 80 });
      const tg = await lab.startNginx('target', { port: 8080 });

      await t.test('two online hosts (-f 0, -f 1) share one intercept', async () => {
        const rep = path.join(lab.dir, 'icp-shared.json');
        const icp = await startIntercept(lab, ['--report', rep]);
        const cap = await lab.capture('assistant', {
          filter: 'tcp and src port 8080',
          file: path.join(lab.dir, 'assist.pcap'),
        });
        const m1 = accessLogLines(on1),
          m2 = accessLogLines(on2),
          mt = accessLogLines(tg);
        const x = ['-x', `80-${TARGET}:8080`, '-s', ASSIST];
        const tc1 = await startLiveTcpcopy(lab, [...x, '-f', '0'], 'online');
        const tc2 = await startLiveTcpcopy(lab, [...x, '-f', '1'], 'online2');
        const sums = await Promise.all([
          lab.load('client', load('http://198.18.1.1/', true, 3000, 10)),
          lab.load('client', load('http://198.18.1.1/', false, 1000, 10)),
          lab.load('client2', load('http://198.18.2.1/', true, 3000, 10)),
          lab.load('client2', load('http://198.18.2.1/', false, 1000, 10)),
        ]);
        const o1 = accessLogLines(on1) - m1,
          o2 = accessLogLines(on2) - m2;
        const got = await waitSettled(() => accessLogLines(tg) - mt, o1 + o2, 30_000, 1500);
        const r1 = await tc1.stop();
        const r2 = await tc2.stop();
        const is = await stopIntercept(icp, rep);
        await cap.stop();
        const count = async (f: string): Promise<number> =>
          (await lab.exec('assistant', ['tcpdump', '-nn', '-r', cap.file, f])).stdout.split('\n').filter(Boolean)
            .length;
        const to1 = await count('dst net 198.18.1.0/24'),
          to2 = await count('dst net 198.18.2.0/24');
        const rp1 = r1.report as Report | null,
          rp2 = r2.report as Report | null;
        assert.ok(rp1 && rp2, 'both tcpcopy wrote reports');
        const recs = tg.readLog().records.slice(mt);
        const from1 = recs.filter((r) => r.remoteAddr.startsWith('198.18.1.')).length;
        const from2 = recs.filter((r) => r.remoteAddr.startsWith('198.18.2.')).length;
        const p1 = peersOf(is, '198.18.0.1'),
          p2 = peersOf(is, '198.18.0.4');
        const sum = (ps: InterceptStats['perPeer'], k: 'records' | 'clientAdds'): number =>
          ps.reduce((a, p) => a + p[k], 0);
        say(
          `shared: load sent=${sums.reduce((a, s) => a + s.requestsSent, 0)} online1=${o1} online2=${o2} target=${got} (from client ${from1}, client2 ${from2}) ratio=${(got / (o1 + o2)).toFixed(4)}`,
        );
        say(
          `shared: tcpcopy1 replies=${rp1.engine.replies} noSession=${rp1.engine.repliesNoSession} sessions=${rp1.engine.sessionsCreated} channel=${JSON.stringify(rp1.channel)}`,
        );
        say(
          `shared: tcpcopy2 replies=${rp2.engine.replies} noSession=${rp2.engine.repliesNoSession} sessions=${rp2.engine.sessionsCreated} channel=${JSON.stringify(rp2.channel)}`,
        );
        say(
          `shared: intercept captured=${is.captured} routed=${is.routed} noRoute=${is.noRoute} held=${is.held}/${is.heldDelivered} peersTotal=${is.peersTotal}; peer 198.18.0.1 records=${sum(p1, 'records')} adds=${sum(p1, 'clientAdds')}; peer 198.18.0.4 records=${sum(p2, 'records')} adds=${sum(p2, 'clientAdds')}; tcpdump on the assistant: replies to client ${to1}, to client2 ${to2}`,
        );
        assert.ok(got / (o1 + o2) >= 0.999, `target ${got} / online ${o1}+${o2}`);
        assert.ok(got <= o1 + o2, `target ${got} > online ${o1 + o2}`);
        assert.ok(from1 / o1 >= 0.999 && from2 / o2 >= 0.999, `per host: ${from1}/${o1}, ${from2}/${o2}`);
        // no reply reached the wrong tcpcopy: what intercept sent to each tcpcopy equals what the
        // target sent to that tcpcopy's client range (tcpdump on the assistant), and each tcpcopy
        // received exactly that. (repliesNoSession counts late replies, e.g. the target's last
        // ACK/FIN, to sessions tcpcopy already ended; they are not misrouted.)
        assert.equal(sum(p1, 'records'), to1, 'replies to client range 1 == records sent to tcpcopy1');
        assert.equal(sum(p2, 'records'), to2, 'replies to client range 2 == records sent to tcpcopy2');
        assert.ok(rp1.engine.repliesNoSession <= rp1.engine.replies * 0.02, 'tcpcopy1: replies without a session');
        assert.ok(rp2.engine.repliesNoSession <= rp2.engine.replies * 0.02, 'tcpcopy2: replies without a session');
        assert.equal(is.noRoute, 0, 'replies without a route');
        assert.equal(is.held, is.heldDelivered, 'every SYN-ACK that beat its CLIENT_ADD was delivered');
        assert.equal(rp1.engine.replies, sum(p1, 'records'), 'tcpcopy1 received what intercept routed to it');
        assert.equal(rp2.engine.replies, sum(p2, 'records'), 'tcpcopy2 received what intercept routed to it');
        assert.equal(is.routed, sum(p1, 'records') + sum(p2, 'records'), 'every routed reply went to one of the two');
        assert.ok(
          sum(p1, 'clientAdds') >= rp1.engine.sessionsCreated && sum(p2, 'clientAdds') >= rp2.engine.sessionsCreated,
          'CLIENT_ADD per session',
        );
      });

      await t.test('one tcpcopy, two intercepts (-s ip:36524,ip:36525), -C 4', async () => {
        // Each intercept sees half of the replies (by client address), so replies only reach
        // tcpcopy if CLIENT_ADD went to both; -C 4 = four connections to each.
        const repA = path.join(lab.dir, 'icp-a.json'),
          repB = path.join(lab.dir, 'icp-b.json');
        const a = await startIntercept(lab, [
          '-p',
          '36524',
          '-F',
          'tcp and src port 8080 and dst net 198.18.1.0/28',
          '--report',
          repA,
        ]);
        const b = await startIntercept(lab, [
          '-p',
          '36525',
          '-F',
          'tcp and src port 8080 and not dst net 198.18.1.0/28',
          '--report',
          repB,
        ]);
        const m1 = accessLogLines(on1),
          mt = accessLogLines(tg);
        const tc = await startLiveTcpcopy(
          lab,
          ['-x', `80-${TARGET}:8080`, '-s', `${ASSIST}:36524,${ASSIST}:36525`, '-C', '4'],
          'online',
        );
        await Promise.all([
          lab.load('client', load('http://198.18.1.1/', true, 3000, 10)),
          lab.load('client', load('http://198.18.1.1/', false, 1500, 10)),
        ]);
        const o1 = accessLogLines(on1) - m1;
        const got = await waitSettled(() => accessLogLines(tg) - mt, o1, 30_000, 1500);
        const r = await tc.stop();
        const sa = await stopIntercept(a, repA);
        const sb = await stopIntercept(b, repB);
        const rp = r.report as Report | null;
        assert.ok(rp, 'tcpcopy wrote its report');
        const adds = (s: InterceptStats): number =>
          [...s.perPeer, ...s.pastPeers].reduce((x, p) => x + p.clientAdds, 0);
        say(
          `multi: online=${o1} target=${got} ratio=${(got / o1).toFixed(4)}; tcpcopy replies=${rp.engine.replies} noSession=${rp.engine.repliesNoSession} sessions=${rp.engine.sessionsCreated} channel=${JSON.stringify(rp.channel)}`,
        );
        say(
          `multi: intercept A peersTotal=${sa.peersTotal} adds=${adds(sa)} captured=${sa.captured} routed=${sa.routed} held=${sa.held}/${sa.heldDelivered} noRoute=${sa.noRoute}; B peersTotal=${sb.peersTotal} adds=${adds(sb)} captured=${sb.captured} routed=${sb.routed} held=${sb.held}/${sb.heldDelivered} noRoute=${sb.noRoute}`,
        );
        assert.ok(got / o1 >= 0.999, `target ${got} / online ${o1}`);
        assert.equal(sa.peersTotal, 4, '-C 4: four connections to intercept A');
        assert.equal(sb.peersTotal, 4, '-C 4: four connections to intercept B');
        assert.ok(
          adds(sa) >= rp.engine.sessionsCreated && adds(sb) >= rp.engine.sessionsCreated,
          'CLIENT_ADD for every session went to both intercepts',
        );
        assert.ok(sa.routed > 0 && sb.routed > 0, 'both intercepts routed replies');
        assert.equal(rp.engine.replies, sa.routed + sb.routed, 'tcpcopy received the replies of both');
        assert.ok(
          rp.engine.repliesNoSession <= rp.engine.replies * 0.02,
          'replies without a session (late replies to ended sessions)',
        );
        // CLIENT_ADD leaves before the SYN; a SYN-ACK captured before intercept read its
        // CLIENT_ADD (two paths race) is held and delivered, never lost
        assert.equal(sa.noRoute + sb.noRoute, 0, 'replies without a route');
        assert.equal(sa.held, sa.heldDelivered);
        assert.equal(sb.held, sb.heldDelivered);
      });
    });
  },
);
