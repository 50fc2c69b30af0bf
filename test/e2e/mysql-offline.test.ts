import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { withLab } from '../../src/lab/lab';
import { compareStatements, comparisonLine, type GeneralLogRecord } from '../../src/lab/mariadb-log';
import { waitLogQuiet } from '../../src/lab/mariadb';
import { mariadbCli, sysbenchPrepare, sysbenchRun, type SysbenchOptions } from '../../src/lab/mysql-clients';
import { processFigures, runTcpcopy, skipUnlessRoot } from './replay-helpers';
import {
  ONLINE_EP,
  compareSince,
  moduleArgs,
  mysql2Totals,
  moduleLine,
  say,
  spawnMysql2,
  startMysqlIntercept,
  startPair,
  type ModuleReport,
} from './mysql-helpers';

const onKv = (r: GeneralLogRecord): boolean => /\bkv\b/.test(r.argument);

/**
 * Issue 13, part 5, offline: tcpdump records both directions of port 3306 on the online host
 * while the CLI, mysql2 and sysbench (prepared statements) run; then `tcpcopy -i FILE --module
 * mysql` replays the file to the target MariaDB. The module reads the online server's replies
 * from the file (its prepared-statement ids) and the target's from intercept: every statement
 * online ran appears in the target's log (all of the CLI's and mysql2's, >= 99.9% overall).
 */
test(
  'offline MySQL replay of a pcap with --module mysql: the target runs what online ran',
  { skip: skipUnlessRoot(), timeout: 400_000 },
  async () => {
    await withLab({ prefix: 'tcm4', clientAddresses: 2 }, async (lab) => {
      const p = await startPair(lab);
      const sb: SysbenchOptions = { tables: 2, tableSize: 1000, threads: 4, timeS: 8, rate: 40, psMode: 'auto' };
      await Promise.all([sysbenchPrepare(lab, p.online, sb), sysbenchPrepare(lab, p.target, sb)]);
      const file = path.join(lab.dir, 'mysql.pcap');
      const cap = await lab.capture('online', {
        dev: lab.hosts.online.clientDev ?? lab.hosts.online.dev,
        filter: 'tcp port 3306',
        file,
      });
      const om = p.online.mark();
      const [cli, m2, sbr] = await Promise.all([
        mariadbCli(
          lab,
          'client',
          ONLINE_EP,
          p.login,
          "INSERT INTO kv VALUES (1, 0, 'off'); SELECT v FROM kv WHERE id = 1;",
        ),
        mysql2Totals(spawnMysql2(lab, p.login, { connections: 3, statements: 40, phases: 2, tag: 5 })),
        sysbenchRun(lab, 'client', ONLINE_EP, sb, p.login),
      ]);
      const capStats = await cap.stop();
      assert.equal(cli.code, 0, cli.stderr);
      assert.equal(capStats.droppedByKernel ?? 0, 0, 'tcpdump dropped nothing');
      say(`capture: ${capStats.packets} packets; mysql2 ${JSON.stringify(m2)}; sysbench ${JSON.stringify(sbr)}`);

      await startMysqlIntercept(lab);
      const tm = p.target.mark();
      const r = await runTcpcopy(lab, ['-i', file, ...moduleArgs(lab, p)]);
      await waitLogQuiet(p.target, 30_000, 2000);
      say(processFigures(r.report));
      assert.equal(r.code, 0, r.stderr.slice(-2000));
      const rep = r.report as ModuleReport;
      const mod = rep.engine.module;
      say(`accounting ${JSON.stringify(rep.accounting)}`);
      say(moduleLine(rep));
      const all = compareSince(p, om, tm, 'offline');
      const kv = compareStatements(p.online.clientRecords(om).filter(onKv), p.target.clientRecords(tm).filter(onKv));
      say(`offline CLI + mysql2: ${comparisonLine(kv)}`);
      assert.equal(kv.online, 2 + m2.executes + m2.queries + m2.prepares);
      assert.equal(kv.matched, kv.online, `missing ${kv.missingSample.join(' | ')}`);
      assert.ok(all.online > sbr.queries);
      assert.ok(all.ratio >= 0.999, `target/online statements ${all.matched}/${all.online}`);
      assert.equal(rep.accounting.unexplained, 0);
      assert.equal(mod?.counters['loginsRedone'], 1 + m2.connections + (sb.threads ?? 0));
    });
  },
);
