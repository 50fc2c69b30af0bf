import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withLab } from '../../src/lab/lab';
import { compareStatements, comparisonLine, type GeneralLogRecord } from '../../src/lab/mariadb-log';
import { mariadbCli, sysbenchPrepare, sysbenchRun, type SysbenchOptions } from '../../src/lab/mysql-clients';
import { skipUnlessRoot, startLiveTcpcopy } from './replay-helpers';
import {
  ONLINE_EP,
  compareSince,
  moduleArgs,
  mysql2Totals,
  say,
  spawnMysql2,
  startMysqlIntercept,
  startPair,
  stopWithReport,
} from './mysql-helpers';

/** Statements on the kv table (the CLI's and mysql2's; sysbench works on sbtest*). */
const onKv = (r: GeneralLogRecord): boolean => /\bkv\b/.test(r.argument);

/**
 * Issue 13, part 5, sessions captured from their SYN: a live tcpcopy with `--module mysql`
 * copies the online MariaDB's traffic to the target MariaDB (intercept sends the target's reply
 * payloads over channel v2) while three real clients run against online at once: the mariadb
 * CLI, mysql2 with server-side prepared statements, and sysbench oltp_read_write (prepared
 * statements, 10 s here; the 30 s figure is the measurement's). Ground truth: every statement
 * the online server logged appears in the target's log (all of the CLI's and mysql2's, and
 * >= 99.9% overall), and tcpcopy's report accounts for every request.
 */
test(
  'live MySQL replay with --module mysql: the target runs what online ran (CLI, mysql2, sysbench)',
  { skip: skipUnlessRoot(), timeout: 400_000 },
  async () => {
    await withLab({ prefix: 'tcm2', clientAddresses: 2 }, async (lab) => {
      const p = await startPair(lab);
      const sb: SysbenchOptions = { tables: 2, tableSize: 1000, threads: 4, timeS: 10, rate: 40, psMode: 'auto' };
      await Promise.all([sysbenchPrepare(lab, p.online, sb), sysbenchPrepare(lab, p.target, sb)]);
      await startMysqlIntercept(lab);
      const om = p.online.mark();
      const tm = p.target.mark();
      const tc = await startLiveTcpcopy(lab, moduleArgs(lab, p));
      const [cli, m2, sbr] = await Promise.all([
        mariadbCli(
          lab,
          'client',
          ONLINE_EP,
          p.login,
          "INSERT INTO kv VALUES (1, 0, 'cli'); UPDATE kv SET v = 'cli2' WHERE id = 1; SELECT v FROM kv WHERE id = 1; DELETE FROM kv WHERE id = 1;",
        ),
        mysql2Totals(spawnMysql2(lab, p.login, { connections: 3, statements: 40, phases: 2, tag: 3 })),
        sysbenchRun(lab, 'client', ONLINE_EP, sb, p.login),
      ]);
      assert.equal(cli.code, 0, cli.stderr);
      say(`mysql2 ${JSON.stringify(m2)}; sysbench ${JSON.stringify(sbr)}`);
      const rep = await stopWithReport(p, tc);
      const mod = rep.engine.module;

      const all = compareSince(p, om, tm, 'all clients');
      const kv = compareStatements(p.online.clientRecords(om).filter(onKv), p.target.clientRecords(tm).filter(onKv));
      say(`CLI + mysql2: ${comparisonLine(kv)}`);
      assert.equal(
        kv.online,
        4 + m2.executes + m2.queries + m2.prepares,
        'the online log holds every CLI and mysql2 statement',
      );
      assert.equal(
        kv.matched,
        kv.online,
        `every CLI and mysql2 statement ran on the target: missing ${kv.missingSample.join(' | ')}`,
      );
      assert.ok(all.online > sbr.queries, `online ran sysbench's ${sbr.queries} queries and the others`);
      assert.ok(all.ratio >= 0.999, `target/online statements ${all.matched}/${all.online}`);
      // the report: nothing unexplained, the logins redone for the target, the statements remapped
      assert.equal(rep.accounting.unexplained, 0);
      assert.notEqual(mod, null, 'the report has the module counters');
      const sessions = 1 + m2.connections + (sb.threads ?? 0);
      assert.equal(mod?.counters['loginsRedone'], sessions, 'every login redone');
      assert.ok((mod?.counters['statementsPrepared'] ?? 0) >= m2.prepares, 'the prepares answered by the target');
      assert.ok((mod?.counters['statementsRemapped'] ?? 0) >= m2.executes, 'executes sent with the target ids');
    });
  },
);
