import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { withLab } from '../../src/lab/lab';
import { compareStatements, comparisonLine, statements, type GeneralLogRecord } from '../../src/lab/mariadb-log';
import {
  goFileFor,
  spawnMariadbPhases,
  sysbenchPrepare,
  sysbenchRun,
  type SysbenchOptions,
} from '../../src/lab/mysql-clients';
import { skipUnlessRoot, startLiveTcpcopy, waitUntil } from './replay-helpers';
import {
  ONLINE_EP,
  moduleArgs,
  mysql2Totals,
  say,
  spawnMysql2,
  startMysqlIntercept,
  startPair,
  stopWithReport,
} from './mysql-helpers';

const onKv = (r: GeneralLogRecord): boolean => /\bkv\b/.test(r.argument);
const onSbtest = (r: GeneralLogRecord): boolean => !onKv(r);
/** mysql2's INSERT and UPDATE, prepared in phase 0 (before tcpcopy), executed again in phase 1. */
const preparedBefore = (r: GeneralLogRecord): boolean =>
  r.command === 'Execute' && /^(INSERT INTO|UPDATE) kv /.test(r.argument);

/**
 * Issue 13, part 5, sessions picked up mid-stream (connections opened before tcpcopy started,
 * as a connection pool's are): the mariadb CLI and mysql2 connect and run a first phase, and
 * sysbench (text protocol, --db-ps-mode=disable) runs, all before tcpcopy starts; then tcpcopy
 * (`--module mysql --mysql-login tc@tcdb`) starts and the CLI and mysql2 run their second phase
 * on the same connections. The module logs each connection in on the target before its first
 * command; every statement online ran after tcpcopy was capturing must appear in the target's
 * log, except the executions of statements prepared before (mysql2's INSERT and UPDATE), which
 * the report counts as lost with the module's own reason.
 */
test(
  'MySQL sessions picked up mid-stream are logged in and replayed (CLI, mysql2, sysbench)',
  { skip: skipUnlessRoot(), timeout: 400_000 },
  async () => {
    await withLab({ prefix: 'tcm3', clientAddresses: 2 }, async (lab) => {
      const p = await startPair(lab);
      const sb: SysbenchOptions = { tables: 2, tableSize: 1000, threads: 4, timeS: 16, rate: 40, psMode: 'disable' };
      await Promise.all([sysbenchPrepare(lab, p.online, sb), sysbenchPrepare(lab, p.target, sb)]);
      await startMysqlIntercept(lab);
      const m0 = p.online.mark();
      const cliGo = path.join(lab.dir, 'cli-go');
      const cli = spawnMariadbPhases(
        lab,
        'client',
        ONLINE_EP,
        p.login,
        [
          "INSERT INTO kv VALUES (1, 0, 'before');",
          "UPDATE kv SET v = 'after' WHERE id = 1; SELECT v FROM kv WHERE id = 1; DELETE FROM kv WHERE id = 1;",
        ],
        cliGo,
      );
      const m2Go = path.join(lab.dir, 'm2-go');
      const m2 = spawnMysql2(lab, p.login, { connections: 2, statements: 20, phases: 2, goFile: m2Go, tag: 4 });
      const sbRun = sysbenchRun(lab, 'client', ONLINE_EP, sb, p.login);
      await m2.waitFor(/phase 0 done/, 30_000);
      await waitUntil(
        () => statements(p.online.clientRecords(m0)).filter(onSbtest).length >= 200,
        30_000,
        'sysbench is running',
      );
      assert.equal(p.online.clientRecords(m0).filter((r) => r.command === 'Connect').length, 1 + 2 + 4);

      const tc = await startLiveTcpcopy(
        lab,
        moduleArgs(lab, p, ['--mysql-login', `${p.login.user}@${p.login.database}`]),
      );
      // what online logs from here on was received after the capture started
      await new Promise((r) => setTimeout(r, 200));
      const om = p.online.mark();
      const tm = p.target.mark();
      fs.writeFileSync(goFileFor(cliGo, 1), '');
      fs.writeFileSync(`${m2Go}.1`, '');
      const [cliExit, totals, sbr] = await Promise.all([cli.exited, mysql2Totals(m2), sbRun]);
      assert.equal(cliExit.code, 0, cli.stderr);
      say(`mysql2 ${JSON.stringify(totals)}; sysbench ${JSON.stringify(sbr)}`);
      const rep = await stopWithReport(p, tc);
      const mod = rep.engine.module;

      const on = p.online.clientRecords(om);
      const tg = p.target.clientRecords(tm);
      assert.equal(
        on.filter((x) => x.command === 'Connect').length,
        0,
        'no new connection on online: all were open before',
      );
      // sysbench (text protocol): >= 99.9% of what online ran after the capture started
      const sys = compareStatements(on.filter(onSbtest), tg.filter(onSbtest));
      say(`sysbench mid-stream: ${comparisonLine(sys)}`);
      assert.ok(sys.online > 500, `online ran ${sys.online} sysbench statements after tcpcopy started`);
      assert.ok(sys.ratio >= 0.999, `sysbench: target/online ${sys.matched}/${sys.online}`);
      // the CLI's and mysql2's second phase: all of it but the executions prepared before
      const kvOn = on.filter(onKv);
      const lostPrepared = kvOn.filter(preparedBefore).length;
      const kv = compareStatements(
        kvOn.filter((x) => !preparedBefore(x)),
        tg.filter(onKv),
      );
      say(`CLI + mysql2 mid-stream: ${comparisonLine(kv)}; ${lostPrepared} executions of statements prepared before`);
      assert.equal(
        kv.online,
        3 + totals.queries / 2 + 2 + 2 * 5,
        'CLI 3, mysql2 per connection: 5 queries, the SELECT prepared again and run 5 times',
      );
      assert.equal(kv.matched, kv.online, `missing ${kv.missingSample.join(' | ')}`);
      assert.equal(lostPrepared, 2 * 10, 'mysql2 ran its INSERT and UPDATE 5 times each per connection');
      assert.equal(rep.accounting.lost['mysql: unpreparedStatement'], lostPrepared, 'lost with the module reason');
      assert.equal(rep.accounting.unexplained, 0);
      assert.equal(mod?.counters['midstreamLogins'], 1 + 2 + 4, 'a login inserted for every connection');
      assert.ok(
        tg.filter((x) => x.command === 'Connect' && /Access denied/.test(x.argument)).length === 0,
        'no login refused',
      );
    });
  },
);
