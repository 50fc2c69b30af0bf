/**
 * Issue 15 with the PostgreSQL module: `--compare bytes --module postgres` on sessions picked
 * up mid-stream. pgbench -S -M prepared (read-only: the same answers from both clusters, which
 * pgbench -i made identical) runs on connections opened before tcpcopy started; a second
 * pgbench -S -M prepared opened after teaches the module the P_0 statement, which it then
 * inserts (a Parse) before each mid-stream session's first Bind. The target answers that batch
 * with an extra ParseComplete; the comparison must not report it: every compared exchange of
 * the mid-stream sessions is identical, and the module made one reply per inserted Parse
 * comparable (summary.json rewrittenByModule). The logins of the sessions opened after (captured
 * from their SYN and redone with the target's own salts and nonces) differ by nature and are
 * counted apart, and so are the replies the target sent after it had read the next batch (the
 * module is pipelined: bytes mode pairs by ACK, doc/compare.md Limits). Ground truth: both
 * servers' statement logs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { withLab } from '../../src/lab/lab';
import { pgbenchArgv, pgbenchTransactions } from '../../src/lab/pg-clients';
import type { PgRole } from '../../src/lab/postgres';
import type { CompareSummary, DiffLine } from '../../src/compare/summary';
import { compareReportText } from '../../src/compare/report-text';
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

const BEFORE_CLIENTS = 2;

/** pgbench's argv with -S (the built-in select-only script). */
function selectOnly(argv: string[]): string[] {
  const i = argv.indexOf('pgbench');
  return [...argv.slice(0, i + 1), '-S', ...argv.slice(i + 1)];
}

test(
  '--compare bytes --module postgres: the inserted Parse answer is not a difference (issue 15)',
  { skip: skipUnlessRoot(), timeout: 300_000 },
  async (t) => {
    const missing = await moduleSupportMissing();
    if (missing) return t.skip(missing);
    await withLab({ prefix: 'tccp', clientAddresses: 2 }, async (lab) => {
      const p = await startPgPair(lab);
      const [scram] = p.online.roles as [PgRole, PgRole];
      await startPgIntercept(lab, ['--payload-max', '65535']);
      const db = p.online.database;
      const before = lab.spawn(
        'client',
        selectOnly(
          pgbenchArgv(ONLINE_EP, scram, db, { mode: 'prepared', clients: BEFORE_CLIENTS, timeS: 14, rate: 40 }),
        ),
        { label: 'pgbench-before' },
      );
      await new Promise((r) => setTimeout(r, 3000));
      const dir = path.join(lab.dir, 'compare-pg');
      const tc = await startLiveTcpcopy(lab, [
        ...pgModuleArgs(lab, p, ['--pg-login', `${scram.user}@${db}`]),
        '-i',
        lab.hosts.online.clientDev as string,
        '--compare',
        'bytes',
        '--compare-out',
        dir,
      ]);
      const onlineMark = p.online.mark();
      const after = await lab.exec(
        'client',
        selectOnly(pgbenchArgv(ONLINE_EP, scram, db, { mode: 'prepared', clients: 1, transactions: 50 })),
        { timeoutMs: 60_000 },
      );
      assert.equal(after.code, 0, after.stderr);
      const e = await before.exited;
      assert.equal(e.code, 0, before.stderr);
      say(`pgbench before: ${pgbenchTransactions(before.stdout)} tx; after: ${pgbenchTransactions(after.stdout)} tx`);
      const onlineAll = p.online.clientStatements(onlineMark);
      await waitSettled(() => p.target.clientStatements().length, onlineAll.length, 30_000, 2000);
      const stopped = await tc.stop();
      assert.equal(stopped.code, 0, stopped.stderr.slice(-2000));
      const rep = stopped.report as unknown as { engine: { module?: { counters?: Record<string, number> } } };
      const counters = rep.engine.module?.counters ?? {};
      say(`module counters ${JSON.stringify(counters)}`);
      const st = compareSince(onlineAll, p.target.clientStatements(), 'statements since tcpcopy started');
      assert.equal(st.matched, st.online, 'the target ran every statement production ran since the start');
      const s = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8')) as CompareSummary;
      const lines = fs
        .readFileSync(path.join(dir, 'diffs.jsonl'), 'utf8')
        .split('\n')
        .filter((x) => x !== '')
        .map((x) => JSON.parse(x) as DiffLine);
      say(`report section:\n${compareReportText(s).replace(/^/gm, '#   ')}`);
      const bySession = new Map<string, number[]>();
      for (const d of lines) bySession.set(d.session, [...(bySession.get(d.session) ?? []), d.index]);
      for (const [k, v] of bySession) say(`differs ${k}: exchanges ${v.join(',')}`);
      for (const d of lines.filter((_, i) => i % 4 === 0).slice(0, 12)) {
        const b = d.diffs[0]?.bytes;
        say(`e.g. ${d.session} #${d.index} at ${b?.offset}: ${b?.textA} | ${b?.textB}`);
      }
      assert.equal(s.identity, true);
      // what the differences are: logins redone (salts, nonces), a target reply that holds
      // production's and the next one's (pipelined: the target answered after it had read the
      // next batch, so the reply's ACK points past it; doc/compare.md Limits), others
      const kinds = { login: 0, nextReplyIncluded: 0, other: 0 };
      for (const d of lines) {
        const a = Buffer.from(d.bodies?.online ?? '', 'base64');
        const b = Buffer.from(d.bodies?.target ?? '', 'base64');
        if (a[0] === 0x52) kinds.login++;
        else if (b.length > a.length && b.subarray(0, a.length).equals(a)) kinds.nextReplyIncluded++;
        else kinds.other++;
      }
      say(`differences by kind ${JSON.stringify(kinds)}`);
      // no exchange differs by an extra ParseComplete alone (the inserted Parse's answer)
      const parseComplete = Buffer.from([0x31, 0, 0, 0, 4]);
      for (const d of lines) {
        const a = Buffer.from(d.bodies?.online ?? '', 'base64');
        const b = Buffer.from(d.bodies?.target ?? '', 'base64');
        assert.ok(
          !(b.subarray(0, 5).equals(parseComplete) && b.subarray(5).equals(a)),
          `${d.session} #${d.index}: only the ParseComplete of a Parse production never got`,
        );
      }
      const reprepared = counters['statementsReprepared'] ?? 0;
      assert.ok(reprepared >= BEFORE_CLIENTS, `the module inserted a Parse on each mid-stream session (${reprepared})`);
      assert.equal(s.rewrittenByModule, reprepared, 'one reply made comparable per inserted Parse');
    });
  },
);
