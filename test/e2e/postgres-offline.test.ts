import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { withLab } from '../../src/lab/lab';
import { pgbenchArgv, pgbenchTransactions } from '../../src/lab/pg-clients';
import type { PgRole } from '../../src/lab/postgres';
import { runTcpcopy, skipUnlessRoot, waitSettled } from './replay-helpers';
import {
  ONLINE_EP,
  compareSince,
  moduleSupportMissing,
  pgModuleArgs,
  say,
  startPgIntercept,
  startPgPair,
} from './postgres-helpers';

/**
 * PostgreSQL replayed offline from a tcpdump capture with `--module postgres` (issue 14): the
 * capture holds both directions (the online server's replies give production's backend keys
 * and the order of its logins); pgbench -M prepared as the SCRAM role and -M simple as the md5
 * role; the target must execute every statement the online server logged (>= 99.9%).
 *
 * PG_E2E_KEEP=1 keeps the lab directory (the capture, both servers' csvlogs, tcpcopy's report).
 */
test(
  'PostgreSQL offline replay of a capture: SCRAM and md5 logins redone, pgbench in full',
  { skip: skipUnlessRoot(), timeout: 600_000 },
  async (t) => {
    const missing = await moduleSupportMissing();
    if (missing) return t.skip(missing);
    await withLab(
      { prefix: 'tcp2', clientAddresses: 2, keepDir: process.env['PG_E2E_KEEP'] !== undefined },
      async (lab) => {
        const p = await startPgPair(lab);
        const [scram, md5] = p.online.roles as [PgRole, PgRole];
        const db = p.online.database;
        const file = path.join(lab.dir, 'online.pcap');
        const cap = await lab.capture('online', {
          dev: lab.hosts.online.clientDev ?? lab.hosts.online.dev,
          filter: 'tcp port 5432',
          file,
        });
        const runs = await Promise.all([
          lab.exec('client', pgbenchArgv(ONLINE_EP, scram, db, { mode: 'prepared', clients: 4, transactions: 150 }), {
            timeoutMs: 300_000,
          }),
          lab.exec(
            'client',
            pgbenchArgv(ONLINE_EP, md5, db, { mode: 'simple', clients: 2, transactions: 150, sslmode: 'prefer' }),
            {
              timeoutMs: 300_000,
            },
          ),
        ]);
        for (const r of runs) assert.equal(r.code, 0, r.stderr);
        const [prepTx, simpleTx] = runs.map((r) => pgbenchTransactions(r.stdout)) as [number, number];
        await cap.stop();
        const online = p.online.clientStatements();
        say(
          `captured: pgbench -M prepared ${prepTx} tx (SCRAM), -M simple ${simpleTx} tx (md5, SSLRequest answered N); online logged ${online.length} statements`,
        );
        await startPgIntercept(lab);
        const r = await runTcpcopy(lab, ['-i', file, ...pgModuleArgs(lab, p)]);
        const eng = (
          r.report as unknown as {
            engine: { outcomes: unknown; module?: { counters?: unknown; lost?: unknown; ended?: unknown } };
          }
        ).engine;
        say(
          `tcpcopy offline: exit ${r.code}, module ${JSON.stringify(eng.module?.counters)} lost ${JSON.stringify(eng.module?.lost)} ended ${JSON.stringify(eng.module?.ended)}; outcomes ${JSON.stringify(eng.outcomes)}`,
        );
        await waitSettled(() => p.target.clientStatements().length, online.length, 60_000, 2000);
        const target = p.target.clientStatements();
        const a = compareSince(
          online.filter((x) => x.user === scram.user),
          target,
          'offline pgbench -M prepared, SCRAM',
        );
        const b = compareSince(
          online.filter((x) => x.user === md5.user),
          target,
          'offline pgbench -M simple, md5',
        );
        assert.ok(a.online >= 7 * prepTx && a.ratio >= 0.999, `prepared ${a.ratio}`);
        assert.ok(b.online >= 7 * simpleTx && b.ratio >= 0.999, `simple ${b.ratio}`);
      },
    );
  },
);
