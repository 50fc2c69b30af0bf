import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withLab, type Lab } from '../../src/lab/lab';
import type { NginxServer } from '../../src/lab/servers';
import type { LoadOptions } from '../../src/lab/loadgen';
import { accessLogLines, skipUnlessRoot, startIntercept, TCPCOPY, waitSettled } from './replay-helpers';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { percentileUs, wireLatencies } from '../../src/lab/wire-latency';
import { REPLAY_IP, startAgent, startReplayer, type ReplayerReport } from './agent-helpers';

/**
 * Issue 17: the capture agent on the online host(s), the replay on another host. Each case
 * counts the lines it added to the servers' own access logs.
 */

function say(line: string): void {
  process.stdout.write(`# ${line}\n`);
}

const PATHS = ['/', '/bytes/100', '/bytes/1000', '/status/404'];
const ka = (host: string, requests: number, conc = 20): LoadOptions => ({
  url: `http://${host}/`,
  requests,
  durationMs: 15_000,
  concurrency: conc,
  keepAlive: true,
  paths: PATHS,
});
const short = (host: string, requests: number): LoadOptions => ({
  url: `http://${host}/`,
  requests,
  durationMs: 15_000,
  concurrency: 10,
  keepAlive: false,
  paths: PATHS,
});

function accounting(r: ReplayerReport | null): string {
  if (r === null) return 'no report';
  const a = r.accounting;
  return `captured=${a.captured} replayed=${a.replayed} lost=${JSON.stringify(a.lost)} unexplained=${a.unexplained} agentDropped=${r.capture?.agentDropped ?? 0} sources=${JSON.stringify(r.capture?.sources?.map((s) => [s.slot, s.kind, s.packets, s.agentDropped, s.clockSkewMs]))}`;
}

interface Servers {
  online: NginxServer;
  online2: NginxServer;
  target: NginxServer;
}

test(
  'agent: capture on the online host(s), replay on another host (issue 17)',
  { skip: skipUnlessRoot(), timeout: 600_000 },
  async (t) => {
    await withLab({ prefix: 'tcag', clientAddresses: 20, online2: true, replayHost: true }, async (lab: Lab) => {
      const s: Servers = {
        online: await lab.startNginx('online', { port: 80 }),
        online2: await lab.startNginx('online2', { port: 80 }),
        target: await lab.startNginx('target', { port: 8080 }),
      };
      let icp = await startIntercept(lab);

      await t.test('agent -> replayer: target log = online log (>= 99.9%), the agent stays small', async () => {
        const rp = await startReplayer(lab, 36525);
        const ag = await startAgent(lab, 'online', [`${REPLAY_IP}:36525`]);
        const om = accessLogLines(s.online);
        const tm = accessLogLines(s.target);
        await Promise.all([lab.load('client', ka('198.18.1.1', 3000)), lab.load('client', short('198.18.1.1', 1000))]);
        const online = accessLogLines(s.online) - om;
        const target = await waitSettled(() => accessLogLines(s.target) - tm, online, 20_000, 1500);
        const fig = ag.figures();
        await ag.stop();
        const r = await rp.stop();
        say(
          `agent: online=${online} target=${target} ratio=${(target / online).toFixed(4)}; agent peakRss=${fig.peakRssMB.toFixed(1)}MiB cpu=${fig.cpuS.toFixed(2)}s; ${accounting(r.report)}`,
        );
        assert.equal(r.code, 0, r.stderr.slice(-1500));
        assert.ok(online >= 3990, `online logged ${online}`);
        assert.ok(target / online >= 0.999, `target/online = ${target}/${online}`);
        assert.ok(target <= online, `target ${target} > online ${online}`);
        assert.equal(r.report?.accounting.unexplained, 0);
        assert.equal(r.report?.capture?.sources?.length, 1);
      });

      await t.test('two online hosts, one agent each, one replayer: target log = the sum', async () => {
        const rp = await startReplayer(lab, 36525);
        const a1 = await startAgent(lab, 'online', [`${REPLAY_IP}:36525`], ['--name', 'online1']);
        const a2 = await startAgent(lab, 'online2', [`${REPLAY_IP}:36525`], ['--name', 'online2']);
        const m = [accessLogLines(s.online), accessLogLines(s.online2), accessLogLines(s.target)];
        await Promise.all([lab.load('client', ka('198.18.1.1', 2000)), lab.load('client2', ka('198.18.2.1', 2000))]);
        const sum = accessLogLines(s.online) - (m[0] as number) + accessLogLines(s.online2) - (m[1] as number);
        const target = await waitSettled(() => accessLogLines(s.target) - (m[2] as number), sum, 20_000, 1500);
        await a1.stop();
        await a2.stop();
        const r = await rp.stop();
        say(
          `two agents: online+online2=${sum} target=${target} ratio=${(target / sum).toFixed(4)}; ${accounting(r.report)}`,
        );
        assert.ok(sum >= 3990, `online logs ${sum}`);
        assert.ok(target / sum >= 0.999, `target/sum = ${target}/${sum}`);
        assert.ok(target <= sum);
        const slots = (r.report?.capture?.sources ?? []).map((x) => x.slot).sort();
        assert.deepEqual(slots, [0, 1], 'each agent has its own slot (port variant)');
      });

      await t.test('one agent sharding into two replayers: target log = online log, no connection split', async () => {
        const r1 = await startReplayer(lab, 36525);
        const r2 = await startReplayer(lab, 36526);
        const ag = await startAgent(lab, 'online', [`${REPLAY_IP}:36525`, `${REPLAY_IP}:36526`]);
        const om = accessLogLines(s.online);
        const tm = accessLogLines(s.target);
        await lab.load('client', ka('198.18.1.1', 4000, 50));
        const online = accessLogLines(s.online) - om;
        const target = await waitSettled(() => accessLogLines(s.target) - tm, online, 20_000, 1500);
        await ag.stop();
        const a = await r1.stop();
        const b = await r2.stop();
        say(
          `shards: online=${online} target=${target}; replayer 1 ${accounting(a.report)}; replayer 2 ${accounting(b.report)}`,
        );
        assert.ok(target / online >= 0.999, `target/online = ${target}/${online}`);
        const c1 = a.report?.accounting.captured ?? 0;
        const c2 = b.report?.accounting.captured ?? 0;
        assert.ok(c1 > 0 && c2 > 0, `both replayers got connections (${c1}, ${c2})`);
        // a connection split between the two would show on the target as the same client ip:port
        // on two server connections, and in the requests captured beyond the online log
        assert.ok(c1 + c2 <= online, `captured ${c1}+${c2} > online ${online}`);
        const recs = s.target.readLog().records.slice(tm);
        const conns = new Map<string, Set<number>>();
        for (const x of recs) {
          const k = `${x.remoteAddr}:${x.remotePort}`;
          const set = conns.get(k) ?? new Set<number>();
          set.add(x.connection ?? -1);
          conns.set(k, set);
        }
        const split = [...conns.entries()].filter(([, v]) => v.size > 1);
        assert.deepEqual(split, [], 'every client connection arrived on one target connection');
      });

      await t.test('tcpdump -U -w - | socat into -i tcp:// replays like the agent', async () => {
        const rp = await startReplayer(lab, 36527);
        const dev = lab.host('online').clientDev ?? '';
        const td = lab.spawn('online', [
          'sh',
          '-c',
          `exec tcpdump -i ${dev} -U -s 0 -w - 'tcp dst port 80' 2>/dev/null | socat -u - TCP:${REPLAY_IP}:36527`,
        ]);
        await new Promise((r) => setTimeout(r, 1500));
        const om = accessLogLines(s.online);
        const tm = accessLogLines(s.target);
        await lab.load('client', ka('198.18.1.1', 2000));
        const online = accessLogLines(s.online) - om;
        const target = await waitSettled(() => accessLogLines(s.target) - tm, online, 20_000, 1500);
        await td.stop('SIGTERM', 2000);
        const r = await rp.stop();
        say(
          `tcpdump|socat: online=${online} target=${target} ratio=${(target / online).toFixed(4)}; ${accounting(r.report)}`,
        );
        assert.ok(target / online >= 0.999, `target/online = ${target}/${online}`);
        assert.equal(r.report?.capture?.sources?.[0]?.kind, 'pcap');
      });

      await t.test(
        'the replayer away for 10 s: the agent drops and counts, the new replayer names agentDropped',
        async () => {
          const rp = await startReplayer(lab, 36528);
          const ag = await startAgent(lab, 'online', [`${REPLAY_IP}:36528`]);
          const om = accessLogLines(s.online);
          // production's latency on the wire (client link, kernel timestamps) before, during and
          // after the outage: figures for the note (src/lab/wire-latency.ts), not assertions
          const windows: { label: string; file: string }[] = [];
          const capture = async (label: string): Promise<() => Promise<void>> => {
            const file = path.join(lab.dir, `outage-${label}.pcap`);
            const c = await lab.capture('client', { filter: 'tcp port 80', file, snaplen: 128 });
            windows.push({ label, file });
            return async () => {
              await c.stop();
            };
          };
          let stopCap = await capture('before');
          const load = lab.load('client', {
            ...ka('198.18.1.1', 6000, 10),
            paths: ['/', '/bytes/100'],
            durationMs: 30_000,
            rate: 300,
          });
          await new Promise((r) => setTimeout(r, 4000));
          await stopCap();
          stopCap = await capture('outage');
          const first = await rp.stop();
          const downAt = Date.now();
          await new Promise((r) => setTimeout(r, 10_000));
          await stopCap();
          stopCap = await capture('after');
          const rp2 = await startReplayer(lab, 36528);
          const sum = await load;
          await stopCap();
          for (const w of windows) {
            const l = await wireLatencies(w.file, { serverPort: 80 });
            say(
              `wire latency ${w.label}: ${l.matched} requests, p50=${(percentileUs(l.latenciesUs, 50) / 1000).toFixed(3)}ms p99=${(percentileUs(l.latenciesUs, 99) / 1000).toFixed(3)}ms`,
            );
            assert.ok(l.matched > 100, `the ${w.label} window measured requests on the wire (${l.matched})`);
          }
          const online = accessLogLines(s.online) - om;
          await new Promise((r) => setTimeout(r, 3000));
          const agentLog = await ag.stop();
          const second = await rp2.stop();
          say(
            `outage ${((Date.now() - downAt) / 1000).toFixed(0)} s ago: load sent=${sum.requestsSent} errors=${JSON.stringify(sum.errors)} p50=${sum.latencyMs.p50}ms p99=${sum.latencyMs.p99}ms; online=${online}`,
          );
          say(`first replayer: ${accounting(first.report)}`);
          say(`second replayer: ${accounting(second.report)}`);
          say(
            `agent: ${agentLog
              .split('\n')
              .filter((l) => /lost|reconnected|dropped in/.test(l))
              .slice(-3)
              .join(' | ')}`,
          );
          assert.deepEqual(sum.errors, {}, 'production answered every request');
          assert.ok(online >= sum.requestsSent * 0.999, `online logged ${online} of ${sum.requestsSent}`);
          const dropped = second.report?.capture?.agentDropped ?? 0;
          assert.ok(dropped > 0, 'the agent counted the requests it could not send and the new replayer reports them');
          assert.ok((second.report?.accounting.lost['agentDropped'] ?? 0) === dropped);
          assert.equal(second.report?.accounting.unexplained, 0, 'captured = replayed + lost still holds');
        },
      );

      await t.test(
        'with --secret-file: an agent with the secret replays in full; a wrong secret and a plain pcap stream are refused',
        async () => {
          // the replayer's --secret-file also authenticates its channel to intercept: intercept restarts with it
          const good = path.join(lab.dir, 'agent-secret');
          const bad = path.join(lab.dir, 'agent-secret-wrong');
          fs.writeFileSync(good, 'a shared secret of the agent path, issue 17\n', { mode: 0o600 });
          fs.writeFileSync(bad, 'another secret, just as long as the first one\n', { mode: 0o600 });
          await icp.stop('SIGTERM', 5000);
          icp = await startIntercept(lab, ['--secret-file', good]);
          const rp = await startReplayer(lab, 36529, ['--secret-file', good]);
          const wrong = lab.spawn(
            'online2',
            [
              process.execPath,
              TCPCOPY,
              'agent',
              '-i',
              lab.host('online2').clientDev ?? lab.host('online2').dev,
              '-x',
              '80',
              '--to',
              `${REPLAY_IP}:36529`,
              '--secret-file',
              bad,
              '--status',
              '1',
            ],
            { stopSignal: 'SIGTERM', graceMs: 5000 },
          );
          const dev = lab.host('online2').clientDev ?? '';
          const plain = lab.spawn('online2', [
            'sh',
            '-c',
            `exec tcpdump -i ${dev} -U -s 0 -w - 'tcp dst port 80' 2>/dev/null | socat -u - TCP:${REPLAY_IP}:36529`,
          ]);
          const ag = await startAgent(lab, 'online', [`${REPLAY_IP}:36529`], ['--secret-file', good]);
          const m = [accessLogLines(s.online), accessLogLines(s.online2), accessLogLines(s.target)];
          await Promise.all([lab.load('client', ka('198.18.1.1', 2000)), lab.load('client2', ka('198.18.2.1', 1000))]);
          const online = accessLogLines(s.online) - (m[0] as number);
          const online2 = accessLogLines(s.online2) - (m[1] as number);
          const target = await waitSettled(() => accessLogLines(s.target) - (m[2] as number), online, 20_000, 1500);
          await ag.stop();
          await wrong.stop('SIGTERM', 5000);
          await plain.stop('SIGTERM', 2000);
          const r = await rp.stop();
          say(
            `secret: online=${online} (online2, not authenticated: ${online2}) target=${target} ratio=${(target / online).toFixed(4)}; ${accounting(r.report)}`,
          );
          say(
            `replayer refusals: ${r.stderr
              .split('\n')
              .filter((l) => /refused/.test(l))
              .slice(0, 3)
              .join(' | ')}`,
          );
          say(
            `wrong-secret agent: ${wrong.stderr
              .split('\n')
              .filter((l) => /secret|refus|lost/.test(l))
              .slice(0, 2)
              .join(' | ')}`,
          );
          assert.equal(r.code, 0, r.stderr.slice(-1500));
          assert.ok(online >= 1990 && online2 >= 990, `online logged ${online} and ${online2}`);
          // only the authenticated agent's traffic (online's) reached the target: none of online2's
          assert.ok(target / online >= 0.999, `target/online = ${target}/${online}`);
          assert.ok(target <= online, `target ${target} > online ${online}: a refused stream was replayed`);
          assert.equal(r.report?.capture?.sources?.length, 1, 'one source: the authenticated agent');
          assert.match(r.stderr, /refused: wrong shared secret/);
          assert.match(r.stderr, /a plain pcap stream refused/);
          assert.match(
            wrong.stderr,
            /refused the shared secret/,
            'the wrong-secret agent says why it is not streaming',
          );
          assert.equal(r.report?.accounting.unexplained, 0);
        },
      );
    });
  },
);
