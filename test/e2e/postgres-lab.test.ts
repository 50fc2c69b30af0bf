import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { withLab } from '../../src/lab/lab';
import { pgbenchArgv, pgbenchTransactions, pgClientTotals, psql, spawnPgClient } from '../../src/lab/pg-clients';
import type { PgRole } from '../../src/lab/postgres';
import { skipUnlessRoot, waitUntil } from './replay-helpers';
import { ONLINE_EP, say, startPgPair } from './postgres-helpers';

/**
 * The PostgreSQL lab itself (issue 14, part 2), before any replay: two PostgreSQL 15 clusters
 * on the lab's addresses, their statement logs (log_statement = all, csvlog) counted as the
 * ground truth with the lab's own socket connections left out, and the real clients (psql with
 * SCRAM and md5, pgbench -M simple and -M prepared, the Node pg client in phases) from the
 * client's namespace, each client's own tally agreeing with what the server logged.
 */
test(
  'the PostgreSQL lab: clusters, statement logs and the clients',
  { skip: skipUnlessRoot(), timeout: 300_000 },
  async () => {
    await withLab({ prefix: 'tcp0', clientAddresses: 2 }, async (lab) => {
      const p = await startPgPair(lab);
      const [scram, md5] = p.online.roles as [PgRole, PgRole];
      const ss = await lab.exec('online', ['ss', '-Hltn', 'sport', '= :5432']);
      const listen = ss.stdout
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/)[3])
        .sort();
      assert.deepEqual(listen, ['198.18.0.1:5432', '198.18.1.1:5432']);
      assert.deepEqual(p.online.clientStatements(), [], 'the setup (socket) is not counted');

      // psql, SCRAM (sslmode=disable) and md5 (sslmode=prefer: an SSLRequest answered N)
      const a = await psql(lab, 'client', ONLINE_EP, scram, p.online.database, 'SELECT 41 + 1');
      assert.equal(a.code, 0, a.stderr);
      assert.equal(a.stdout.trim(), '42');
      const b = await psql(
        lab,
        'client',
        ONLINE_EP,
        md5,
        p.online.database,
        'SELECT count(*) FROM pgbench_branches',
        'prefer',
      );
      assert.equal(b.code, 0, b.stderr);
      assert.equal(b.stdout.trim(), '1');
      const bad = await psql(lab, 'client', ONLINE_EP, { ...scram, password: 'wrong' }, p.online.database, 'SELECT 1');
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /password authentication failed/);
      const st = p.online.clientStatements().map((r) => `${r.user}: ${r.message}`);
      assert.deepEqual(st, ['tc: statement: SELECT 41 + 1', 'tcmd5: statement: SELECT count(*) FROM pgbench_branches']);
      const auth = p.online
        .records()
        .filter((r) => /connection authorized|password authentication failed/.test(r.message))
        .map((r) => r.message.replace(/ application_name=.*$/, ''));
      say(`logins: ${auth.join(' / ')}`);
      assert.ok(auth.some((m) => /user=tc database=tcdb/.test(m)));

      // pgbench: every transaction is 7 statements (BEGIN, 3 UPDATE, SELECT, INSERT, END)
      for (const mode of ['simple', 'prepared'] as const) {
        const mark = p.online.mark();
        const r = await lab.exec(
          'client',
          pgbenchArgv(ONLINE_EP, scram, p.online.database, { mode, clients: 4, transactions: 25 }),
          {
            timeoutMs: 120_000,
          },
        );
        assert.equal(r.code, 0, r.stderr);
        const tx = pgbenchTransactions(r.stdout);
        const logged = p.online.clientStatements(mark);
        say(`pgbench -M ${mode}: ${tx} transactions, online logged ${logged.length} statements`);
        assert.equal(tx, 100);
        // pgbench's own look at the tables (its scale) comes on top of the transactions
        const inTx = logged.filter((x) =>
          /^(statement|execute P_\d+): (BEGIN|END|UPDATE pgbench_|SELECT abalance|INSERT INTO pgbench_history)/.test(
            x.message,
          ),
        );
        const outside = logged.filter((x) => !inTx.includes(x)).map((x) => x.message);
        say(`pgbench -M ${mode}: outside the transactions: ${outside.join(' | ')}`);
        assert.equal(inTx.length, 7 * tx);
        assert.ok(
          outside.length <= 4 && outside.every((m) => /pgbench_branches|pgbench_accounts/.test(m)),
          outside.join(' | '),
        );
        if (mode === 'prepared')
          assert.ok(
            inTx.every((x) => /^execute P_\d+: /.test(x.message)),
            inTx[0]?.message,
          );
        else assert.ok(inTx.every((x) => x.message.startsWith('statement: ')));
      }
      const xa = await p.online.xactCommit();
      assert.ok(xa >= 200, `xact_commit ${xa}`);

      // the Node client: named prepared INSERTs, unnamed SELECTs, two phases on the same connections
      const mark = p.online.mark();
      const go = path.join(lab.dir, 'pg-go');
      const c = spawnPgClient(lab, 'client', ONLINE_EP, md5, p.online.database, {
        connections: 3,
        statements: 10,
        phases: 2,
        goFile: go,
        tag: 1,
      });
      await c.waitFor(/phase 0 done/, 30_000);
      await waitUntil(() => p.online.clientStatements(mark).length >= 30, 10_000, 'phase 0 logged');
      assert.equal(p.online.clientStatements(mark).length, 30, 'phase 1 waits for its go file');
      fs.writeFileSync(`${go}.1`, '');
      const totals = await pgClientTotals(c);
      assert.deepEqual(totals, { connections: 3, statements: 60 });
      const logged = p.online.clientStatements(mark);
      assert.equal(logged.length, 60);
      assert.equal(logged.filter((x) => x.message.startsWith('execute ins_kv: ')).length, 30);
      assert.equal(new Set(logged.map((x) => x.pid)).size, 3, 'three connections for both phases');
      assert.deepEqual(p.target.clientStatements(), [], 'nothing reached the target');
    });
  },
);
