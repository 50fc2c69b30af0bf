import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withLab } from '../../src/lab/lab';
import { countByCommand } from '../../src/lab/mariadb-log';
import { waitLogQuiet } from '../../src/lab/mariadb';
import { mariadbCli } from '../../src/lab/mysql-clients';
import { skipUnlessRoot, startLiveTcpcopy } from './replay-helpers';
import {
  ONLINE_EP,
  compareSince,
  mysql2Totals,
  replayArgs,
  say,
  spawnMysql2,
  startMysqlIntercept,
  startPair,
} from './mysql-helpers';

/**
 * Issue 13, "Done means": without `--module mysql` a MySQL replay loses its queries (the login
 * answers the online server's scramble, so the target refuses it and closes the connection),
 * and the report must say so: every lost request carries a named reason (targetReset: MariaDB
 * answers the login with an ERR and closes, the queries after it meet a reset), nothing is
 * unexplained, and a report hint names the refused logins and the fix (src/run/loss-hints.ts).
 * The target's general log shows each refusal: a Connect record, then "Access denied".
 */
test(
  'without --module mysql the report explains the lost MySQL sessions',
  { skip: skipUnlessRoot(), timeout: 300_000 },
  async () => {
    await withLab({ prefix: 'tcm1', clientAddresses: 2 }, async (lab) => {
      const p = await startPair(lab);
      const icp = await startMysqlIntercept(lab);
      const om = p.online.mark();
      const tm = p.target.mark();
      const tc = await startLiveTcpcopy(lab, replayArgs(lab));
      const cli = await mariadbCli(
        lab,
        'client',
        ONLINE_EP,
        p.login,
        "INSERT INTO kv VALUES (1, 0, 'a'); SELECT * FROM kv;",
      );
      assert.equal(cli.code, 0, cli.stderr);
      const totals = await mysql2Totals(spawnMysql2(lab, p.login, { connections: 3, statements: 12, tag: 2 }));
      await waitLogQuiet(p.target, 10_000, 1500);
      const r = await tc.stop();
      const on = countByCommand(p.online.clientRecords(om));
      const tg = countByCommand(p.target.clientRecords(tm));
      say(`mysql2 ${JSON.stringify(totals)}; online logged ${JSON.stringify(on)}; target logged ${JSON.stringify(tg)}`);
      say(`intercept: ${icp.stderr.trim().split('\n').slice(-1).join('')}`);
      say(`tcpcopy stderr:\n${r.stderr.trim().split('\n').join('\n# ')}`);
      assert.equal(r.code, 0, r.stderr);
      assert.notEqual(r.report, null);
      const rep = r.report!;
      say(`accounting ${JSON.stringify(rep.accounting)}; outcomes ${JSON.stringify(rep.engine.outcomes)}`);
      // the ground truth: the target refused every login, so it ran none of the statements
      const c = compareSince(p, om, tm, 'no module');
      assert.equal(on['Connect'], 4, 'online: four logins');
      const denied = p.target
        .clientRecords(tm)
        .filter((x) => x.command === 'Connect' && /Access denied/.test(x.argument));
      say(
        `target Connect records: ${p.target
          .clientRecords(tm)
          .filter((x) => x.command === 'Connect')
          .map((x) => x.argument)
          .join(' | ')}`,
      );
      assert.equal(denied.length, 4, 'the target refused every login');
      assert.equal(c.matched, 0, 'no statement reached the target');
      // the report: the loss is explained by named reasons, nothing unexplained or hidden in flight
      const acc = rep.accounting;
      assert.equal(acc.unexplained, 0, 'nothing unexplained');
      assert.equal(acc.inFlight ?? 0, 0);
      assert.ok(acc.captured >= c.online, `captured ${acc.captured} requests for ${c.online} statements`);
      const lost = Object.entries(acc.lost).filter(([k, v]) => v > 0 && k !== 'sampledOut');
      assert.ok(lost.length > 0, 'requests are lost');
      assert.ok(acc.replayed + lost.reduce((a, [, v]) => a + v, 0) === acc.captured);
      // and the report says why: MySQL logins refused, replay with --module mysql
      const hints = (rep as typeof rep & { hints?: string[] }).hints ?? [];
      say(`hints: ${hints.join(' | ')}`);
      assert.equal(hints.length, 1);
      assert.match(hints[0] ?? '', /4 sessions .*targetReset.*port 3306 \(MySQL\).*logins refused.*--module mysql/);
      assert.match(r.stdout, /hint .*logins refused.*--module mysql --mysql-user/, 'the text report prints the hint');
    });
  },
);
