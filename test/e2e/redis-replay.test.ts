import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { withLab } from '../../src/lab/lab';
import { redisBenchmarkArgv, redisClientTotals, spawnRedisClient } from '../../src/lab/redis-clients';
import { INTERCEPT, skipUnlessRoot, startLiveTcpcopy } from './replay-helpers';
import { say, secretFile } from './postgres-helpers';

/**
 * Redis replayed live with `--module redis` (issue 14 part 3): production's redis-server has
 * `requirepass prodpw`, the target's another, longer password. redis-benchmark runs against
 * production after tcpcopy started (every connection's AUTH rewritten: the byte stream
 * changes length), and the lab's Node client keeps 4 connections open from before tcpcopy
 * started (picked up mid-stream: an AUTH inserted before their first command). The target's
 * own INFO commandstats must count every command production counted (>= 99.9% per command).
 */
const ONLINE = { ip: '198.18.1.1', port: 6379 };
const PROD_PW = 'prodpw';
const TARGET_PW = 'target-password-2';
const REQUESTS = Number(process.env['REDIS_E2E_REQUESTS'] ?? 20_000);
const TESTS = ['set', 'get', 'incr', 'lpush', 'hset'];

test(
  'Redis live replay: AUTH rewritten to the target password, mid-stream sessions get one, every command replayed',
  { skip: skipUnlessRoot(), timeout: 600_000 },
  async () => {
    await withLab({ prefix: 'tcr1', clientAddresses: 2 }, async (lab) => {
      const [online, target] = await Promise.all([
        lab.startRedis('online', { port: 6379, requirepass: PROD_PW }),
        lab.startRedis('target', { port: 6379, requirepass: TARGET_PW }),
      ]);
      const icp = lab.spawn('assistant', [
        process.execPath,
        INTERCEPT,
        '-i',
        lab.hosts.assistant.dev,
        '-F',
        'tcp and src port 6379',
        '--secret-file',
        secretFile(lab),
      ]);
      await icp.waitFor(/listening on/, 60_000);
      // connections opened before tcpcopy: phase 0 (SADD) unseen, phase 1 (RPUSH) replayed mid-stream
      const go = path.join(lab.dir, 'redis-go');
      const node = spawnRedisClient(lab, 'client', ONLINE, PROD_PW, {
        connections: 4,
        commands: 2000,
        pipeline: 10,
        phases: 2,
        goFile: go,
      });
      await node.waitFor(/phase 0 done/, 60_000);
      const reset = await online.cli(['CONFIG', 'RESETSTAT']);
      assert.match(reset.stdout, /OK/, reset.stderr);
      const tc = await startLiveTcpcopy(lab, [
        '-x',
        `6379-198.18.0.2:6379`,
        '-s',
        '198.18.0.3',
        '--secret-file',
        secretFile(lab),
        '--module',
        'redis',
        '--redis-auth',
        TARGET_PW,
        '-i',
        lab.hosts.online.clientDev as string,
      ]);
      fs.writeFileSync(`${go}.1`, '');
      const bench = await lab.exec('client', redisBenchmarkArgv(ONLINE, PROD_PW, { requests: REQUESTS, clients: 8 }), {
        timeoutMs: 300_000,
      });
      assert.equal(bench.code, 0, bench.stderr);
      say(`redis-benchmark: ${bench.stdout.replace(/\s+/g, ' ').trim()}`);
      const nodeTotals = await redisClientTotals(node);
      assert.equal(nodeTotals.errors, 0);
      const prod = await online.commandStats();
      const want = [...TESTS, 'rpush'].reduce((a, c) => a + (prod[c] ?? 0), 0);
      const sum = async (): Promise<number> => {
        const t = await target.commandStats();
        return [...TESTS, 'rpush'].reduce((a, c) => a + (t[c] ?? 0), 0);
      };
      // the target has run everything, or its count stood still for 10 s (bounded: 120 s)
      const deadline = Date.now() + 120_000;
      let last = -1;
      let since = Date.now();
      for (;;) {
        const n = await sum();
        if (n >= want || Date.now() > deadline) break;
        if (n !== last) {
          last = n;
          since = Date.now();
        } else if (Date.now() - since > 10_000) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
      const tgt = await target.commandStats();
      const stopped = await tc.stop();
      const rep = stopped.report as unknown as {
        engine: { module?: { counters?: Record<string, number>; lost?: Record<string, number> } };
        accounting: { captured: number; replayed: number; lost: Record<string, number> };
      } | null;
      say(`production commandstats ${JSON.stringify(prod)}`);
      say(`target commandstats ${JSON.stringify(tgt)}`);
      say(`tcpcopy module ${JSON.stringify(rep?.engine.module)} accounting ${JSON.stringify(rep?.accounting)}`);
      for (const c of [...TESTS, 'rpush']) {
        const o = prod[c] ?? 0;
        const t = tgt[c] ?? 0;
        say(`${c}: production ${o}, target ${t} (${((100 * t) / Math.max(1, o)).toFixed(3)}%)`);
        assert.ok(o > 0, `production ran ${c}`);
        assert.ok(t >= o * 0.999 && t <= o, `${c}: target ${t} of production ${o}`);
      }
      assert.equal(prod['rpush'], nodeTotals.counts['rpush']);
      assert.equal(tgt['sadd'] ?? 0, 0, 'phase 0 ran before tcpcopy started');
      const counters = rep?.engine.module?.counters ?? {};
      // every production AUTH (redis-benchmark's connections) rewritten, but one: commandStats()'s
      // own redis-cli logs in from the server's namespace (not captured); 4 inserted (mid-stream);
      // the target accepted each
      assert.equal(counters['authRewritten'], (prod['auth'] ?? 0) - 1);
      assert.equal(counters['authInserted'], 4);
      assert.equal(counters['authOk'], (counters['authRewritten'] ?? 0) + 4);
      assert.deepEqual(rep?.engine.module?.lost, {});
    });
  },
);
