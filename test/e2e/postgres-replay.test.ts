import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { withLab } from '../../src/lab/lab';
import { pgbenchArgv, pgbenchTransactions, pgClientTotals, spawnPgClient } from '../../src/lab/pg-clients';
import type { PgRole } from '../../src/lab/postgres';
import { clientStatements, compareByConnection, compareTransactions } from '../../src/lab/pg-log';
import { skipUnlessRoot, startLiveTcpcopy, waitSettled } from './replay-helpers';
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
 * PostgreSQL replayed live with `--module postgres` (issue 14): the online and target clusters
 * have the same roles and passwords but their own salts, so every login is redone (SCRAM and
 * md5). pgbench -M prepared -c 8 (SCRAM) runs against the online server after tcpcopy started;
 * pgbench -M simple -c 4 (md5), pgbench -M prepared -c 8 (SCRAM) and a Node client run on
 * connections opened before it (picked up mid-stream, logged in with --pg-login / the stored
 * login). The target must execute every statement the online server logged that can be
 * replayed (>= 99.9%): all of the sessions opened after the start, the simple-query and
 * unnamed statements of those opened before, and the named statements of pgbench -M prepared
 * opened before: their Parse was before tcpcopy started, the after group's pgbench parses the
 * same P_n texts and teaches them (the module inserts the Parse; those sessions log in as the
 * SCRAM role that taught them, not --pg-login's md5), compared per client connection (host:port,
 * the same on both servers) and per transaction. The Node client's named INSERTs are taught by
 * nobody: they are lost as `postgres: unknownStatement` and none executes on the target.
 *
 * pgbench runs unthrottled: faster than one intercept round trip per exchange allows, which is
 * why the module pipelines (ProtocolModule.pipelined: before, the replay fell ~10x behind and a
 * 30 s run was cut off unfinished, 92.5% / 70.1%).
 */
const SECONDS = Number(process.env['PG_E2E_SECONDS'] ?? 30);
/**
 * The group opened after tcpcopy started: PG_E2E_AFTER=ROLE:MODE, ROLE scram or md5, MODE
 * prepared or simple (default scram:prepared). Issue 14's other done-means lines (md5 users,
 * -M simple, both -c 8 -T 30) are measured with PG_E2E_AFTER=md5:prepared and scram:simple.
 */
const AFTER = /^(scram|md5):(prepared|simple)$/.exec(process.env['PG_E2E_AFTER'] ?? 'scram:prepared');
if (AFTER === null)
  throw new Error(`PG_E2E_AFTER: expected scram|md5:prepared|simple, got ${process.env['PG_E2E_AFTER']}`);
const AFTER_MODE = AFTER[2] as 'prepared' | 'simple';
/** pgbench -M prepared clients (SCRAM) on connections opened before tcpcopy started (default 8: issue 14's -c 8). */
const BEFORE_PREPARED = Number(process.env['PG_E2E_BEFORE_CLIENTS'] ?? 8);

test(
  'PostgreSQL live replay: SCRAM and md5 logins redone, pgbench in full, mid-stream sessions',
  { skip: skipUnlessRoot(), timeout: 600_000 },
  async (t) => {
    const missing = await moduleSupportMissing();
    if (missing) return t.skip(missing);
    await withLab(
      { prefix: 'tcp1', clientAddresses: 2, keepDir: process.env['PG_E2E_KEEP'] !== undefined },
      async (lab) => {
        const p = await startPgPair(lab);
        const [scram, md5] = p.online.roles as [PgRole, PgRole];
        const afterRole = AFTER[1] === 'md5' ? md5 : scram;
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
        // connections opened before tcpcopy: pgbench -M simple (md5), -M prepared (SCRAM), the Node client's phase 0
        const before = lab.spawn(
          'client',
          pgbenchArgv(ONLINE_EP, md5, db, { mode: 'simple', clients: 4, timeS: SECONDS + 10 }),
          { label: 'pgbench-before' },
        );
        const beforePrep = lab.spawn(
          'client',
          pgbenchArgv(ONLINE_EP, scram, db, { mode: 'prepared', clients: BEFORE_PREPARED, timeS: SECONDS + 10 }),
          { label: 'pgbench-before-prepared' },
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
        // connections opened after: pgbench -M prepared -c 8 (SCRAM; PG_E2E_AFTER)
        const r = await lab.exec(
          'client',
          pgbenchArgv(ONLINE_EP, afterRole, db, { mode: AFTER_MODE, clients: 8, timeS: SECONDS }),
          {
            timeoutMs: (SECONDS + 120) * 1000,
          },
        );
        assert.equal(r.code, 0, r.stderr);
        const txAfter = pgbenchTransactions(r.stdout);
        const e = await before.exited;
        assert.equal(e.code, 0, before.stderr);
        const txBefore = pgbenchTransactions(before.stdout);
        const ep = await beforePrep.exited;
        assert.equal(ep.code, 0, beforePrep.stderr);
        const txBeforePrep = pgbenchTransactions(beforePrep.stdout);
        const totals = await pgClientTotals(node);
        say(
          `pgbench -M ${AFTER_MODE} -c 8 (${afterRole.user}, after start): ${txAfter} tx; -M simple (${md5.user}, before start): ${txBefore} tx; -M prepared (${scram.user}, before start): ${txBeforePrep} tx; node ${JSON.stringify(totals)}`,
        );
        const onlineAll = p.online.clientStatements(onlineMark);
        await waitSettled(() => p.target.clientStatements().length, onlineAll.length, 60_000, 3000);
        const stopped = await tc.stop();
        sampling = false;
        await sampler;
        await icp.stop('SIGINT');
        say(
          `intercept: ${icp.stderr
            .split('\n')
            .filter((l) => /final counters/.test(l))
            .join(' ')}`,
        );
        say(`tcpcopy report: ${JSON.stringify(stopped.report)}`);
        const rep = stopped.report as unknown as {
          engine: { module?: unknown; requestsLost: Record<string, number> };
          process?: { maxRssMB: number };
          memoryBudget?: Record<string, number>;
        } | null;
        say(`tcpcopy: module ${JSON.stringify(rep?.engine.module)} lost ${JSON.stringify(rep?.engine.requestsLost)}`);
        // what the memory governor did (a CI run once ended 9 sessions as overload at 110 MiB)
        say(
          `tcpcopy memory: peak RSS ${rep?.process?.maxRssMB.toFixed(1)} MiB, governor ${JSON.stringify(rep?.memoryBudget ?? null)}`,
        );
        const target = p.target.clientStatements();
        // the connections opened before tcpcopy: their backends had logged statements before the mark
        const beforePids = new Set(clientStatements(p.online.records().slice(0, onlineMark)).map((x) => x.pid));
        const prepared = (x: { user: string; message: string }): boolean =>
          x.user === scram.user && x.message.startsWith('execute P_');
        // the group opened after: its backends are new (the Node client's were all open before)
        const isAfter = (x: { user: string; pid: number }): boolean =>
          x.user === afterRole.user && !beforePids.has(x.pid);
        const after = compareSince(
          onlineAll.filter(isAfter),
          target,
          `pgbench -M ${AFTER_MODE}, ${afterRole.user}, opened after`,
        );
        const mid = compareSince(
          onlineAll.filter((x) => x.user === md5.user && beforePids.has(x.pid) && x.time > startIso),
          target,
          `pgbench -M simple, ${md5.user}, opened before (mid-stream)`,
        );
        // pgbench -M prepared opened before: per client connection (host:port on both servers)
        const midPrepOnline = onlineAll.filter((x) => prepared(x) && beforePids.has(x.pid) && x.time > startIso);
        const midPrepFrom = new Set(midPrepOnline.map((x) => x.from));
        const midPrepTarget = target.filter((x) => midPrepFrom.has(x.from));
        const midPrep = compareSince(
          midPrepOnline,
          midPrepTarget,
          `pgbench -M prepared -c ${BEFORE_PREPARED}, ${scram.user}, opened before (Parse taught by the after group)`,
        );
        for (const c of compareByConnection(midPrepOnline, midPrepTarget))
          say(
            `  before-prepared ${c.from}: online ${c.online}, target ${c.target}, matched ${c.matched}${c.missing.length > 0 ? `; missing e.g. ${c.missing.slice(0, 2).join(' | ')}` : ''}`,
          );
        const midPrepTx = compareTransactions(midPrepOnline, midPrepTarget);
        const midPrepRoles = [...new Set(midPrepTarget.map((x) => x.user))];
        say(
          `transactions, pgbench -M prepared -c ${BEFORE_PREPARED} opened before (${scram.user}, since tcpcopy started): online ${midPrepTx.online}, replayed whole on the same connection ${midPrepTx.replayed} (${(midPrepTx.ratio * 100).toFixed(3)}%); target roles ${midPrepRoles.join(',')}`,
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
        const lost = rep?.engine.module as
          { lost?: Record<string, number>; counters?: Record<string, number> } | undefined;
        say(
          `split: replayable ${after.online + mid.online + nodeSel.online + midPrep.online} statements, replayed ${after.matched + mid.matched + nodeSel.matched + midPrep.matched}; ` +
            `not replayable (named statements prepared before the start, taught by nobody) ${nodeIns.online}, ` +
            `tcpcopy lost ${JSON.stringify(lost?.lost)} (requests: exchanges), statementsLost ${lost?.counters?.['statementsLost']}`,
        );
        // transactions per group from the servers' own statement logs: each pgbench transaction ends with END
        const ends = (xs: readonly { message: string }[]): number =>
          xs.filter((x) => /(^|: )END;$/.test(x.message)).length;
        // on the target the mid-stream sessions log in as md5 (--pg-login): the default groups
        // are told apart by role and statement form; with PG_E2E_AFTER the after group's own
        // count is the comparison's matched ENDs
        const midOnline = onlineAll.filter((x) => x.user === md5.user && beforePids.has(x.pid));
        const afterTarget =
          afterRole === scram && AFTER_MODE === 'prepared'
            ? String(
                ends(
                  target.filter(
                    (x) => x.user === scram.user && x.message.startsWith('execute P_') && !midPrepFrom.has(x.from),
                  ),
                ),
              )
            : `${ends(onlineAll.filter(isAfter)) - (after.online - after.matched)} (at most, by the comparison)`;
        say(
          `transactions, pgbench -M ${AFTER_MODE} -c 8 opened after (${afterRole.user}): online ${ends(onlineAll.filter(isAfter))}, ` +
            `target ${afterTarget}; ` +
            `-M simple opened before (${md5.user}, since tcpcopy started): online ${ends(midOnline)}, ` +
            (afterRole === md5
              ? `target: see the comparison line (same role as the after group on the target)`
              : `target ${ends(target.filter((x) => x.user === md5.user && !x.message.startsWith('execute')))}`),
        );
        const outcomes = (rep as unknown as { engine: { outcomes: Record<string, number> } } | null)?.engine.outcomes;
        say(`tcpcopy outcomes ${JSON.stringify(outcomes)}`);
        const txT = await p.target.xactCommit();
        const txO = await p.online.xactCommit();
        say(`xact_commit online ${txO}, target ${txT}`);
        assert.ok(after.online >= 7 * txAfter * 0.99 && after.ratio >= 0.999, `after: ${after.ratio}`);
        assert.ok(mid.online > 0 && mid.ratio >= 0.999, `mid-stream: ${mid.ratio}`);
        // no session cut off by the target (a password message passed to a target already ready
        // for queries made PostgreSQL reset one SCRAM session in 2 runs of 5)
        assert.equal(outcomes?.['targetReset'], 0, 'no session reset by the target');
        assert.ok(nodeSel.online > 0 && nodeSel.ratio >= 0.999);
        // pgbench -M prepared opened before: taught by the after group's Parses when it runs -M
        // prepared (with PG_E2E_AFTER=md5:prepared they log in as md5, the role that taught them;
        // with -M simple nobody teaches P_n and they are lost, counted)
        if (AFTER_MODE === 'prepared') {
          assert.ok(midPrep.online >= 700 && midPrep.ratio >= 0.999, `before-prepared statements: ${midPrep.ratio}`);
          assert.ok(
            midPrepTx.online > 0 && midPrepTx.ratio >= 0.999,
            `before-prepared transactions: ${midPrepTx.ratio}`,
          );
          assert.deepEqual(midPrepRoles, [afterRole.user], 'they log in as the role that taught their statements');
        }
        assert.equal(nodeIns.matched, 0, 'named statements whose Parse was not captured (nor taught) are not replayed');
        assert.ok((lost?.lost?.['unknownStatement'] ?? 0) > 0, 'they are counted lost as unknownStatement');
      },
    );
  },
);
