import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { withLab, type Lab } from '../../src/lab/lab';
import type { LabProcess } from '../../src/lab/process';
import { pgbenchArgv, pgbenchTransactions } from '../../src/lab/pg-clients';
import type { PgRole, PgServer } from '../../src/lab/postgres';
import { compareByConnection } from '../../src/lab/pg-log';
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
 * role; the target must execute every statement the online server logged (>= 99.9%), and no
 * replayed connection may be lost on the target's side (its log: "connection to client lost",
 * "reset by peer").
 *
 * The second test makes the target fall behind: a lab session on it holds pgbench_branches
 * locked (EXCLUSIVE) for 3 s from just before tcpcopy starts, so every replayed transaction
 * waits at its UPDATE pgbench_branches while the target's kernel acknowledges the bytes that
 * follow (40 transactions per client: each session fits in the target's receive window, its FIN
 * acknowledged too). tcpcopy must not end those connections before the target closed them: it
 * did (finish() reset them once everything was acknowledged), and PostgreSQL threw away the
 * unread statements while the report counted them replayed: 18 of 1122 and 12 of 562 ran,
 * nothing counted lost (2026-12-03 12:10 UTC); since busySessions() waits for the target's
 * close: 1122/1122, 562/562.
 *
 * PG_E2E_KEEP=1 keeps the lab directories (the capture, both servers' csvlogs, tcpcopy's report).
 */
/** PG_E2E_SPEED: tcpcopy's -a (speed-up of the recorded pace; 0: as fast as it can). Default: the recorded pace. */
const SPEED = process.env['PG_E2E_SPEED'];

/** One offline run: the capture's size and whether the target is held back. */
interface OfflineRun {
  /** Transactions per pgbench client in the capture. */
  transactions: number;
  /** For how long (s) the target's pgbench_branches is locked from just before tcpcopy starts; 0: not. */
  targetLockS: number;
}

test(
  'PostgreSQL offline replay of a capture: SCRAM and md5 logins redone, pgbench in full',
  { skip: skipUnlessRoot(), timeout: 600_000 },
  async (t) => {
    const missing = await moduleSupportMissing();
    if (missing) return t.skip(missing);
    await offlineRun({ transactions: 150, targetLockS: 0 });
  },
);

test(
  'PostgreSQL offline replay, the target behind (a lock): no connection ended before the target read it',
  { skip: skipUnlessRoot(), timeout: 600_000 },
  async (t) => {
    const missing = await moduleSupportMissing();
    if (missing) return t.skip(missing);
    await offlineRun({ transactions: 40, targetLockS: 3 });
  },
);

async function offlineRun(o: OfflineRun): Promise<void> {
  await withLab(
    { prefix: 'tcp2', clientAddresses: 2, keepDir: process.env['PG_E2E_KEEP'] !== undefined },
    async (lab) => {
      if (process.env['PG_E2E_KEEP'] !== undefined) say(`lab directory (kept): ${lab.dir}`);
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
        lab.exec(
          'client',
          pgbenchArgv(ONLINE_EP, scram, db, { mode: 'prepared', clients: 4, transactions: o.transactions }),
          {
            timeoutMs: 300_000,
          },
        ),
        lab.exec(
          'client',
          pgbenchArgv(ONLINE_EP, md5, db, {
            mode: 'simple',
            clients: 2,
            transactions: o.transactions,
            sslmode: 'prefer',
          }),
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
      const locker = o.targetLockS > 0 ? await lockOnTarget(lab, p.target, o.targetLockS) : null;
      const r = await runTcpcopy(lab, [
        '-i',
        file,
        ...(SPEED !== undefined ? ['-a', SPEED] : []),
        ...pgModuleArgs(lab, p),
      ]);
      const eng = (
        r.report as unknown as {
          engine: { outcomes: unknown; module?: { counters?: unknown; lost?: unknown; ended?: unknown } };
        }
      ).engine;
      say(
        `tcpcopy offline: exit ${r.code}, module ${JSON.stringify(eng.module?.counters)} lost ${JSON.stringify(eng.module?.lost)} ended ${JSON.stringify(eng.module?.ended)}; outcomes ${JSON.stringify(eng.outcomes)}`,
      );
      if (locker !== null) {
        const e = await locker.exited;
        assert.equal(e.code, 0, locker.stderr);
        say(`target lock: pgbench_branches held ${o.targetLockS} s from before tcpcopy started`);
      }
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
      for (const c of compareByConnection(online, target))
        if (c.matched < c.online)
          say(
            `  ${c.from}: online ${c.online}, target ${c.target}, matched ${c.matched}; first missing ${c.missing.slice(0, 2).join(' | ')}`,
          );
      // what the target's server said of the replayed connections: a reset before its backend
      // read every byte (it had acknowledged them) throws the unread statements away
      const recs = p.target.records();
      const resets = recs.filter((x) => /reset by peer|connection to client lost/.test(x.message)).length;
      const errors = recs.filter((x) => x.severity === 'ERROR' || x.severity === 'FATAL');
      say(
        `target server: ${resets} connections lost (reset by peer, connection to client lost), ${errors.length} ERROR/FATAL${
          errors.length > 0
            ? ` e.g. ${errors
                .slice(0, 3)
                .map((x) => x.message)
                .join(' | ')}`
            : ''
        }`,
      );
      assert.equal(resets, 0, 'no replayed connection lost on the target');
      assert.ok(a.online >= 7 * prepTx && a.ratio >= 0.999, `prepared ${a.ratio}`);
      assert.ok(b.online >= 7 * simpleTx && b.ratio >= 0.999, `simple ${b.ratio}`);
    },
  );
}

/** Holds pgbench_branches locked on `s` for `seconds` (a psql session over the Unix socket); resolves once the lock is granted. */
async function lockOnTarget(lab: Lab, s: PgServer, seconds: number): Promise<LabProcess> {
  const p = lab.spawn(
    s.host,
    [
      'psql',
      '-X',
      '-q',
      '-v',
      'ON_ERROR_STOP=1',
      '-h',
      s.socketDir,
      '-p',
      String(s.port),
      '-U',
      'postgres',
      '-d',
      s.database,
      '-c',
      `SET log_statement = 'none'; BEGIN; LOCK TABLE pgbench_branches IN EXCLUSIVE MODE; SELECT pg_sleep(${seconds}); COMMIT;`,
    ],
    { label: 'pg-target-lock' },
  );
  const deadline = Date.now() + 20_000;
  for (;;) {
    const n = await s.sql(
      "SELECT count(*) FROM pg_locks WHERE relation = 'pgbench_branches'::regclass AND mode = 'ExclusiveLock' AND granted",
    );
    if (Number(n.trim()) > 0) return p;
    if (!p.running || Date.now() > deadline) throw new Error(`the target lock was not taken: ${p.stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
