/**
 * Issue 15 with a protocol module: `--compare bytes --module mysql` against real MariaDB. Both
 * servers hold the same `items` table except one row, changed on the target only (price 7777
 * instead of 70 for id 7). Real clients run against production: two mariadb CLI connections
 * (text protocol) and one mysql2 connection (server-side prepared statements: a PREPARE, then
 * binary EXECUTEs), a known number of their queries reading the changed row and a known number
 * reading others. Ground truth: the general logs of both servers (every query ran on production
 * and on the target). The comparison's summary.json and diffs.jsonl must say: exchanges =
 * compared + skipped; exactly the queries of the changed row differ, at the positions they were
 * sent in on each connection (no pairing shifted by the redone login); every other exchange
 * (the login the module redid, the PREPARE, the other queries) is identical; the COM_QUITs,
 * which no server answers, are skipped as noOnlineResponse. The greeting (salt, connection id)
 * comes before any client bytes and is in no exchange; the login's answer is an OK on both.
 * Production's server threads are warmed with prepared statements first and the target caches
 * none, so the PREPARE_OK names statement 4 (or more) in production and 1 on the target: the
 * module makes that answer comparable (summary.json rewrittenByModule) and it is identical.
 * Once with one target, once with `-n 2 --compare-replicas` (the changed row differs on both
 * replicas alike: not noise).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { withLab, type Lab } from '../../src/lab/lab';
import type { GeneralLogRecord } from '../../src/lab/mariadb-log';
import { mariadbCli } from '../../src/lab/mysql-clients';
import { waitLogQuiet } from '../../src/lab/mariadb';
import type { CompareSummary, DiffLine } from '../../src/compare/summary';
import { compareReportText } from '../../src/compare/report-text';
import { skipUnlessRoot, startLiveTcpcopy } from './replay-helpers';
import {
  ONLINE_EP,
  moduleArgs,
  say,
  startMysqlIntercept,
  startPair,
  stopWithReport,
  type MysqlPair,
} from './mysql-helpers';

/** The row that differs: its price is 70 on production, 7777 on the target. */
const CHANGED = 7;
const ROWS = 20;
const ITEMS = 'CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(32), price INT) ENGINE=InnoDB';
const FILL = `INSERT INTO items VALUES ${Array.from({ length: ROWS }, (_, i) => `(${i + 1}, 'item-${i + 1}', ${(i + 1) * 10})`).join(', ')}`;
/** The text query of one row (the CLI's). */
const textQuery = (id: number): string => `SELECT id, name, price FROM items WHERE id = ${id}`;
/** The prepared statement of the mysql2 connection. */
const PREPARED = 'SELECT id, name, price FROM items WHERE id = ?';

/** Rows each CLI connection reads, in order (3 of the changed row). */
const CLI_IDS = [CHANGED, 1, CHANGED, 2, 3, CHANGED, 4, 5];
const CLI_CONNECTIONS = 2;
/** Rows the mysql2 connection executes, in order (4 of the changed row). */
const M2_IDS = [CHANGED, 8, 9, CHANGED, 10, 11, CHANGED, 12, CHANGED, 13];

/**
 * One mysql2 connection: PREPARE once, EXECUTE per id, COM_QUIT; prints the rows' prices and
 * production's statement id. With \`warm:N\` instead of the ids: N connections at once that
 * each prepare three statements and quit (before tcpcopy starts: production's server threads
 * are cached with their statement counters, so the test's connection is likely numbered on
 * from them while the target, without a thread cache, numbers from 1).
 */
const MYSQL2_SCRIPT = `
const mysql = require(${JSON.stringify(require.resolve('mysql2/promise'))});
const [host, port, user, password, database, ids] = process.argv.slice(2);
const open = () => mysql.createConnection({ host, port: Number(port), user, password, database, connectTimeout: 10000 });
(async () => {
  if (ids.startsWith('warm:')) {
    const cs = await Promise.all(Array.from({ length: Number(ids.slice(5)) }, open));
    for (const c of cs) for (const q of ['SELECT 1', 'SELECT 2', 'SELECT 3']) await c.prepare(q);
    await Promise.all(cs.map((c) => c.end()));
    console.log(JSON.stringify({ warm: cs.length }));
    return;
  }
  const c = await mysql.createConnection({ host, port: Number(port), user, password, database, connectTimeout: 10000 });
  const stmt = await c.prepare(${JSON.stringify(PREPARED)});
  const prices = [];
  for (const id of JSON.parse(ids)) {
    const [rows] = await stmt.execute([id]);
    prices.push(rows[0].price);
  }
  await c.end();
  console.log(JSON.stringify({ prices, statementId: stmt.statement.id }));
})().catch((e) => { console.error(e.message); process.exit(1); });
`;

/** Positions (exchange indexes) of the changed row's queries on a connection whose first `lead` exchanges are not queries. */
const positions = (ids: number[], lead: number): number[] => ids.flatMap((id, i) => (id === CHANGED ? [lead + i] : []));

/** What one connection's exchanges are, in the order the comparison sees them. */
interface Expected {
  /** login, queries (and a PREPARE), COM_QUIT */
  exchanges: number;
  /** indexes of the exchanges reading the changed row */
  different: number[];
}
/** CLI: login (0), the queries (1..), quit. */
const CLI_EXPECTED: Expected = { exchanges: 1 + CLI_IDS.length + 1, different: positions(CLI_IDS, 1) };
/** mysql2: login (0), PREPARE (1), the EXECUTEs (2..), quit. */
const M2_EXPECTED: Expected = { exchanges: 2 + M2_IDS.length + 1, different: positions(M2_IDS, 2) };

/** Client commands per command name (Connect, Query, Prepare, Execute, Quit). */
function byCommand(rs: GeneralLogRecord[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rs) out[r.command] = (out[r.command] ?? 0) + 1;
  return out;
}

/** Statements that read the changed row (Query and Execute: the log fills in the parameter). */
const onChanged = (r: GeneralLogRecord): boolean =>
  (r.command === 'Query' || r.command === 'Execute') && r.argument.includes(`WHERE id = ${CHANGED}`);

interface CaseResult {
  summary: CompareSummary;
  lines: DiffLine[];
  /** Production's statement id of the mysql2 PREPARE (the target's is 1: it caches no server threads). */
  statementId: number;
}

/** Runs the clients against production with a live tcpcopy `--compare bytes --module mysql` and checks the comparison. */
async function runCase(lab: Lab, p: MysqlPair, name: string, extra: string[], factor: number): Promise<CaseResult> {
  const dir = path.join(lab.dir, `compare-${name}`);
  const script = path.join(lab.dir, 'mysql2-compare.js');
  fs.writeFileSync(script, MYSQL2_SCRIPT);
  const l = p.login;
  const m2argv = (ids: string): string[] => [
    process.execPath,
    script,
    ONLINE_EP.ip,
    String(ONLINE_EP.port),
    l.user,
    l.password,
    l.database,
    ids,
  ];
  const warm = await lab.exec('client', m2argv('warm:4'), { timeoutMs: 30_000 });
  assert.equal(warm.code, 0, warm.stderr);
  await waitLogQuiet(p.online, 5000, 300); // its Quits logged before the mark
  const om = p.online.mark();
  const tm = p.target.mark();
  const tc = await startLiveTcpcopy(lab, moduleArgs(lab, p, ['--compare', 'bytes', '--compare-out', dir, ...extra]));
  const [m2, ...clis] = await Promise.all([
    lab.exec('client', m2argv(JSON.stringify(M2_IDS)), { timeoutMs: 30_000 }),
    ...Array.from({ length: CLI_CONNECTIONS }, () =>
      mariadbCli(lab, 'client', ONLINE_EP, l, CLI_IDS.map((id) => `${textQuery(id)};`).join(' ')),
    ),
  ]);
  assert.equal(m2.code, 0, m2.stderr);
  for (const c of clis) assert.equal(c.code, 0, c.stderr);
  // production answered the changed row with its own price
  const m2out = JSON.parse(m2.stdout.trim()) as { prices: number[]; statementId: number };
  assert.deepEqual(
    m2out.prices,
    M2_IDS.map((id) => id * 10),
  );
  say(`${name}: production's statement id for the mysql2 PREPARE: ${m2out.statementId}`);
  const rep = await stopWithReport(p, tc);
  assert.equal(rep.accounting.unexplained, 0);

  // the servers' logs: every command ran on production, and on the target (once per replica)
  const on = p.online.clientRecords(om);
  const tg = p.target.clientRecords(tm);
  const oc = byCommand(on);
  const sessions = CLI_CONNECTIONS + 1;
  say(`${name}: online ran ${JSON.stringify(oc)}, target ran ${JSON.stringify(byCommand(tg))}`);
  const want: Record<string, number> = {
    Connect: sessions,
    Query: CLI_CONNECTIONS * CLI_IDS.length,
    Prepare: 1,
    Execute: M2_IDS.length,
    Quit: sessions,
  };
  assert.deepEqual(oc, want, 'production ran what the clients sent, nothing else');
  const changedQueries = CLI_CONNECTIONS * positions(CLI_IDS, 0).length + positions(M2_IDS, 0).length;
  assert.equal(on.filter(onChanged).length, changedQueries, "production ran the changed row's queries");
  assert.equal(tg.filter(onChanged).length, changedQueries * factor, 'the target ran them (once per replica)');
  for (const k of ['Query', 'Prepare', 'Execute'])
    assert.equal(byCommand(tg)[k], (want[k] ?? 0) * factor, `target ${k} x${factor}`);

  const summary = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8')) as CompareSummary;
  const lines = fs
    .readFileSync(path.join(dir, 'diffs.jsonl'), 'utf8')
    .split('\n')
    .filter((x) => x !== '')
    .map((x) => JSON.parse(x) as DiffLine);
  say(`${name}: report section:\n${compareReportText(summary).replace(/^/gm, '#   ')}`);
  return { summary, lines, statementId: m2out.statementId };
}

/** The comparison names exactly the changed row's queries, at their positions on each connection. */
function checkComparison(name: string, res: CaseResult, factor: number): void {
  const { summary: s, lines } = res;
  const t = s.totals;
  const sessions = CLI_CONNECTIONS + 1;
  const exchanges = CLI_CONNECTIONS * CLI_EXPECTED.exchanges + M2_EXPECTED.exchanges;
  const different = CLI_CONNECTIONS * CLI_EXPECTED.different.length + M2_EXPECTED.different.length;
  say(`${name}: totals ${JSON.stringify(t)}; made comparable by the module ${s.rewrittenByModule}`);
  // the PREPARE_OK of each replica when the ids differ: a statement id is each server's own
  // handle, mapped by the module, so that answer is identical once the module put production's back
  assert.equal(s.rewrittenByModule, res.statementId === 1 ? 0 : factor, 'PREPARE_OKs made comparable');
  for (const d of lines) {
    const b = d.diffs[0]?.bytes;
    say(
      `${name}: differs ${d.session} replica ${d.replica} #${d.index} ms ${d.latencyMs.join('/')} at ${b?.offset}: ${b?.hexA} | ${b?.hexB}`,
    );
  }
  assert.equal(s.identity, true, 'exchanges = compared + skipped, compared = identical + different + noise');
  assert.equal(t.exchanges, exchanges, 'one exchange per command the clients sent (logins and quits included)');
  assert.deepEqual(
    Object.entries(t.skipped).filter(([, n]) => n > 0),
    [['noOnlineResponse', sessions]],
    'only the COM_QUITs (no server answers them) are skipped',
  );
  assert.equal(t.compared, exchanges - sessions);
  assert.equal(t.different, different, "the changed row's queries differ, as many as were sent");
  assert.equal(t.noise, 0);
  assert.equal(
    t.identical,
    exchanges - sessions - different,
    'logins, the PREPARE and the other queries are identical',
  );
  // diffs.jsonl: one line per differing exchange, at the changed row's positions on each connection
  assert.equal(lines.length, different);
  const bySession = new Map<string, number[]>();
  for (const d of lines) {
    const b = d.bodies;
    assert.ok(b !== undefined, 'bodies kept');
    const a = Buffer.from(b.online, 'base64');
    const c = Buffer.from(b.target, 'base64');
    assert.ok(
      a.includes(`item-${CHANGED}`) && c.includes(`item-${CHANGED}`),
      `exchange ${d.index}: the changed row on both sides`,
    );
    bySession.set(
      d.session,
      [...(bySession.get(d.session) ?? []), d.index].sort((x, y) => x - y),
    );
  }
  const got = [...bySession.values()].map((v) => JSON.stringify(v)).sort();
  const want = [
    ...Array.from({ length: CLI_CONNECTIONS }, () => JSON.stringify(CLI_EXPECTED.different)),
    JSON.stringify(M2_EXPECTED.different),
  ].sort();
  assert.deepEqual(got, want, 'differing exchange indexes per connection');
}

test(
  '--compare bytes --module mysql against real MariaDB: exactly the changed row differs (issue 15)',
  { skip: skipUnlessRoot(), timeout: 400_000 },
  async () => {
    await withLab({ prefix: 'tccm', clientAddresses: 2 }, async (lab) => {
      const p = await startPair(lab);
      for (const s of [p.online, p.target]) await s.sql(`${ITEMS}; ${FILL}`, s.database);
      await p.target.sql(`UPDATE items SET price = 7777 WHERE id = ${CHANGED}`, p.target.database);
      // the target numbers each connection's statements from 1 (no cached server threads)
      await p.target.sql('SET GLOBAL thread_cache_size = 0');
      await startMysqlIntercept(lab, ['--payload-max', '65535']);
      const one = await runCase(lab, p, 'one target', [], 1);
      checkComparison('one target', one, 1);
      const two = await runCase(lab, p, 'replicas', ['-n', '2', '--compare-replicas'], 2);
      checkComparison('replicas', two, 2);
      const f = two.summary.endpoints.flatMap((e) => e.fields);
      assert.ok(
        f.some((x) => x.field === 'bytes' && !x.isNoise && x.noise === 0),
        'the difference is not noise',
      );
    });
  },
);
