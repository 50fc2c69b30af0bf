import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { withLab } from '../../src/lab/lab';
import { pgbenchArgv, pgbenchTransactions, pgClientTotals, spawnPgClient } from '../../src/lab/pg-clients';
import type { PgRole } from '../../src/lab/postgres';
import { skipUnlessRoot, startLiveTcpcopy, waitSettled } from '../e2e/replay-helpers';
import {
  ONLINE_EP,
  compareSince,
  moduleSupportMissing,
  pgModuleArgs,
  say,
  startPgIntercept,
  startPgPair,
} from '../e2e/postgres-helpers';

/**
 * PostgreSQL replayed live with `--module postgres` (issue 14): the online and target clusters
 * have the same roles and passwords but their own salts, so every login is redone (SCRAM and
 * md5). pgbench -M prepared -c 8 (SCRAM) and -M simple (md5) run against the online server;
 * the target must execute every statement the online server logged (>= 99.9%), for
 * connections opened after tcpcopy started and, in simple mode, for connections opened before
 * (picked up mid-stream, logged in with --pg-login). A Node client's connections opened before
 * tcpcopy lose their named prepared INSERTs (Parse not captured: unknownStatement) and keep
 * their unnamed queries.
 */
const SECONDS = Number(process.env['PG_E2E_SECONDS'] ?? 30);

test(
  'PostgreSQL live replay: SCRAM and md5 logins redone, pgbench in full, mid-stream sessions',
  { skip: skipUnlessRoot(), timeout: 600_000 },
  async (t) => {
    const missing = await moduleSupportMissing();
    if (missing) return t.skip(missing);
    await withLab({ prefix: 'tcp1', clientAddresses: 2 }, async (lab) => {
      const p = await startPgPair(lab);
      const [scram, md5] = p.online.roles as [PgRole, PgRole];
      const icp = await startPgIntercept(lab);
      // the replay's progress: both servers' commits every 5 s (diagnostics: lag or loss?)
      let sampling = true;
      const sampler = (async () => {
        const t0 = Date.now();
        while (sampling) {
          await new Promise((r) => setTimeout(r, 5000));
          const [o, t] = await Promise.all([p.online.xactCommit(), p.target.xactCommit()]).catch(() => [NaN, NaN]);
          say(`t+${Math.round((Date.now() - t0) / 1000)} s: xact_commit online ${o}, target ${t}`);
        }
      })();
      const db = p.online.database;
      // connections opened before tcpcopy: pgbench -M simple (md5) and the Node client's phase 0
      const before = lab.spawn(
        'client',
        pgbenchArgv(ONLINE_EP, md5, db, { mode: 'simple', clients: 4, timeS: SECONDS + 10 }),
        {
          label: 'pgbench-before',
        },
      );
      const go = path.join(lab.dir, 'pg-go');
      const node = spawnPgClient(lab, 'client', ONLINE_EP, scram, db, {
        connections: 3,
        statements: 40,
        phases: 2,
        goFile: go,
        tag: 1,
      });
      await node.waitFor(/phase 0 done/, 60_000);
      await new Promise((r) => setTimeout(r, 3000));
      const tc = await startLiveTcpcopy(lab, [
        ...pgModuleArgs(lab, p, ['--pg-login', `${md5.user}@${db}`]),
        '-i',
        lab.hosts.online.clientDev as string,
      ]);
      const startIso = new Date(Date.now() + 2000).toISOString().replace('T', ' ').replace('Z', '');
      const onlineMark = p.online.mark();
      fs.writeFileSync(`${go}.1`, '');
      // connections opened after: pgbench -M prepared -c 8 (SCRAM)
      const r = await lab.exec(
        'client',
        pgbenchArgv(ONLINE_EP, scram, db, { mode: 'prepared', clients: 8, timeS: SECONDS }),
        {
          timeoutMs: (SECONDS + 120) * 1000,
        },
      );
      assert.equal(r.code, 0, r.stderr);
      const txAfter = pgbenchTransactions(r.stdout);
      const e = await before.exited;
      assert.equal(e.code, 0, before.stderr);
      const txBefore = pgbenchTransactions(before.stdout);
      const totals = await pgClientTotals(node);
      say(
        `pgbench -M prepared (${scram.user}, after start): ${txAfter} tx; -M simple (${md5.user}, before start): ${txBefore} tx; node ${JSON.stringify(totals)}`,
      );
      const onlineAll = p.online.clientStatements(onlineMark);
      await waitSettled(() => p.target.clientStatements().length, onlineAll.length, 60_000, 3000);
      const stopped = await tc.stop();
      sampling = false;
      await sampler;
      await icp.stop('SIGINT');
      say(`intercept: ${icp.stderr.split('\n').filter((l) => /final counters/.test(l)).join(' ')}`);
      say(`tcpcopy report: ${JSON.stringify(stopped.report)}`);
      const rep = stopped.report as unknown as {
        engine: { module?: unknown; requestsLost: Record<string, number> };
      } | null;
      say(`tcpcopy: module ${JSON.stringify(rep?.engine.module)} lost ${JSON.stringify(rep?.engine.requestsLost)}`);
      const target = p.target.clientStatements();
      const after = compareSince(
        onlineAll.filter((x) => x.user === scram.user && x.message.startsWith('execute P_')),
        target,
        `pgbench -M prepared, ${scram.user}, opened after`,
      );
      const mid = compareSince(
        onlineAll.filter((x) => x.user === md5.user && x.time > startIso),
        target,
        `pgbench -M simple, ${md5.user}, opened before (mid-stream)`,
      );
      const nodeSel = compareSince(
        onlineAll.filter((x) => x.user === scram.user && /SELECT count\(\*\) FROM kv/.test(x.message)),
        target,
        'node pg unnamed queries, opened before',
      );
      const nodeIns = compareSince(
        onlineAll.filter((x) => x.message.startsWith('execute ins_kv')),
        target,
        'node pg named INSERTs, Parse not captured',
      );
      const txT = await p.target.xactCommit();
      const txO = await p.online.xactCommit();
      say(`xact_commit online ${txO}, target ${txT}`);
      assert.ok(after.online >= 7 * txAfter * 0.99 && after.ratio >= 0.999, `after: ${after.ratio}`);
      assert.ok(mid.online > 0 && mid.ratio >= 0.999, `mid-stream: ${mid.ratio}`);
      assert.ok(nodeSel.online > 0 && nodeSel.ratio >= 0.999);
      assert.equal(nodeIns.matched, 0, 'named statements whose Parse was not captured are not replayed');
    });
  },
);
