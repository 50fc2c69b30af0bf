import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { withLab } from '../../src/lab/lab';
import { countByCommand, statements } from '../../src/lab/mariadb-log';
import {
  goFileFor,
  mariadbCli,
  spawnMariadbPhases,
  sysbenchPrepareCopy,
  sysbenchRun,
} from '../../src/lab/mysql-clients';
import { skipUnlessRoot, waitUntil } from './replay-helpers';
import { ONLINE_EP, mysql2Totals, say, spawnMysql2, startPair } from './mysql-helpers';

/**
 * The MySQL lab itself (issue 13, part 5), before any replay: two MariaDB servers bound to the
 * lab's addresses, their general query logs counted as the ground truth (the lab's own setup
 * connections left out), and the three real clients (the mariadb CLI, mysql2 with server-side
 * prepared statements, sysbench oltp_read_write) run from the client's namespace, each client's
 * own tally agreeing with what the server logged.
 */
test(
  'the MySQL lab: servers, general-log counts and the three clients',
  { skip: skipUnlessRoot(), timeout: 300_000 },
  async () => {
    await withLab({ prefix: 'tcm0', clientAddresses: 2 }, async (lab) => {
      const p = await startPair(lab);
      // bound to the lab's addresses only
      const ss = await lab.exec('online', ['ss', '-Hltn', 'sport', '= :3306']);
      const listen = ss.stdout
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/)[3])
        .sort();
      assert.deepEqual(listen, ['198.18.0.1:3306', '198.18.1.1:3306'], `online listens on ${listen.join(' ')}`);
      // the lab's setup (users, database, kv) is not counted
      assert.deepEqual(p.online.clientRecords(), [], 'no client records before any client');
      assert.ok(p.online.readLog().records.length > 0, 'the setup connection itself is logged (and left out)');

      // the CLI: one connection, its statements exactly
      const cli = await mariadbCli(
        lab,
        'client',
        ONLINE_EP,
        p.login,
        "INSERT INTO kv VALUES (1, 0, 'a'); SELECT v FROM kv WHERE id = 1;",
      );
      assert.equal(cli.code, 0, cli.stderr);
      assert.match(cli.stdout, /\ba\b/);
      const recs = p.online.clientRecords();
      assert.deepEqual(
        statements(recs).map((r) => `${r.command}: ${r.argument}`),
        ["Query: INSERT INTO kv VALUES (1, 0, 'a')", 'Query: SELECT v FROM kv WHERE id = 1'],
      );
      assert.match(recs[0]?.argument ?? '', /^tc@198\.18\.1\.2 on tcdb using TCP\/IP$/);
      assert.deepEqual(countByCommand(recs), { Connect: 1, Query: 2, Quit: 1 });

      // a refused login is visible in the log (what a replay without --module mysql produces)
      const bad = await mariadbCli(lab, 'client', ONLINE_EP, { ...p.login, password: 'wrong' }, 'SELECT 1');
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /Access denied/);
      const denied = p.online
        .clientRecords()
        .filter((r) => r.command === 'Connect' && /Access denied/.test(r.argument));
      assert.equal(denied.length, 1, 'the refused login is logged as a Connect record');

      // the CLI in phases (one connection used before and after a go signal)
      const go = path.join(lab.dir, 'cli-go');
      const mark = p.online.mark();
      const ph = spawnMariadbPhases(lab, 'client', ONLINE_EP, p.login, ["SELECT 'phase0';", "SELECT 'phase1';"], go);
      await waitUntil(() => statements(p.online.clientRecords(mark)).length >= 1, 20_000, 'phase 0 ran');
      assert.equal(statements(p.online.clientRecords(mark)).length, 1, 'phase 1 waits for its go file');
      fs.writeFileSync(goFileFor(go, 1), '');
      const phExit = await ph.exited;
      assert.equal(phExit.code, 0, ph.stderr);
      const phRecs = p.online.clientRecords(mark);
      assert.deepEqual(countByCommand(phRecs), { Connect: 1, Query: 2, Quit: 1 }, 'one connection for both phases');

      // mysql2: server-side prepared statements (Prepare / Execute / Close stmt), two phases
      const m2mark = p.online.mark();
      const m2go = path.join(lab.dir, 'm2-go');
      const m2 = spawnMysql2(lab, p.login, { connections: 3, statements: 20, phases: 2, goFile: m2go, tag: 1 });
      await m2.waitFor(/phase 0 done/, 30_000);
      fs.writeFileSync(`${m2go}.1`, '');
      const totals = await mysql2Totals(m2);
      const m2c = countByCommand(p.online.clientRecords(m2mark));
      say(`mysql2: client ${JSON.stringify(totals)}; online logged ${JSON.stringify(m2c)}`);
      assert.equal(totals.executes, 3 * 2 * 15);
      assert.equal(m2c['Connect'], 3);
      assert.equal(m2c['Quit'], 3);
      assert.equal(m2c['Prepare'], totals.prepares);
      assert.equal(m2c['Execute'], totals.executes);
      assert.equal(m2c['Query'], totals.queries);
      assert.equal(m2c['Close stmt'], totals.closes);

      // sysbench: tables prepared on online and copied to the target through the sockets (not counted)
      const sb = { tables: 2, tableSize: 500, threads: 2, timeS: 4 };
      await sysbenchPrepareCopy(lab, p.online, p.target, sb);
      const sum1 = await p.online.sql('CHECKSUM TABLE sbtest1, sbtest2', p.online.database);
      const sum2 = await p.target.sql('CHECKSUM TABLE sbtest1, sbtest2', p.target.database);
      assert.equal(sum1, sum2, 'identical tables on both servers');
      const sbMark = p.online.mark();
      const ps = await sysbenchRun(lab, 'client', ONLINE_EP, { ...sb, psMode: 'auto' }, p.login);
      const psCounts = countByCommand(p.online.clientRecords(sbMark));
      say(`sysbench ps-mode auto: ${JSON.stringify(ps)}; online logged ${JSON.stringify(psCounts)}`);
      assert.ok(ps.transactions > 0);
      assert.equal(psCounts['Connect'], 2);
      // every query sysbench ran is a statement execution on the server (the binary protocol);
      // sysbench leaves the ones that failed with an ignored error (deadlocks) out of its count
      assert.equal((psCounts['Execute'] ?? 0) + (psCounts['Query'] ?? 0), ps.queries + ps.ignoredErrors);
      assert.ok((psCounts['Prepare'] ?? 0) > 0, 'server-side prepared statements');
      const txMark = p.online.mark();
      const tx = await sysbenchRun(lab, 'client', ONLINE_EP, { ...sb, psMode: 'disable' }, p.login);
      const txCounts = countByCommand(p.online.clientRecords(txMark));
      say(`sysbench ps-mode disable: ${JSON.stringify(tx)}; online logged ${JSON.stringify(txCounts)}`);
      assert.equal(txCounts['Query'], tx.queries + tx.ignoredErrors);
      assert.equal(txCounts['Prepare'], undefined);
      assert.deepEqual(p.target.clientRecords(), [], 'nothing reached the target');
    });
  },
);
