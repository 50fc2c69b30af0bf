/**
 * The figures of issue 13's "Done means" (`npm run bench -- --only mysql-fidelity`):
 * sysbench oltp_read_write for `seconds` (default 30) against the online MariaDB, and the share
 * of the statements online ran that the target ran too (general query logs), for:
 *
 * 1. `live-syn`: connections opened after tcpcopy started (`--module mysql`);
 * 2. `offline`: the same traffic, recorded by tcpdump on the online host during (1), replayed
 *    from the pcap with `-i`;
 * 3. `live-midstream-text`: connections opened before tcpcopy started (sysbench runs for 5 s
 *    first; `--mysql-login`), text protocol (--db-ps-mode=disable);
 * 4. `live-midstream-ps`: the same with server-side prepared statements (sysbench's default):
 *    their PREPAREs went before the capture and no connection captured here prepares them, so
 *    their executions are lost with the module's reason `unpreparedStatement` (the figure shows
 *    how much; with a connection captured preparing them the module prepares them again on the
 *    target: test/e2e/mysql-midstream-ps.test.ts).
 *
 * No assertions; the e2e tests (test/e2e/mysql-*.test.ts) assert the same on shorter runs.
 */
import * as path from 'node:path';
import { writeFileSync } from 'node:fs';
import { withLab, type Lab } from '../src/lab/lab';
import { compareStatements, statements } from '../src/lab/mariadb-log';
import { waitLogQuiet, type MariadbServer } from '../src/lab/mariadb';
import { defaultLogin, sysbenchPrepare, sysbenchRun, type SysbenchOptions } from '../src/lab/mysql-clients';
import { INTERCEPT, runTcpcopy, startLiveTcpcopy, waitUntil } from '../test/e2e/replay-helpers';
import type { ModuleReport } from '../test/e2e/mysql-helpers';

/** One figure. */
export interface FidelityRow {
  name: 'live-syn' | 'offline' | 'live-midstream-text' | 'live-midstream-ps';
  seconds: number;
  threads: number;
  /** sysbench transactions per second reached (offered: `tps`, 0 = unthrottled). */
  tps: number;
  offeredTps: number;
  /** Online statements in the window, target statements, online ones found on the target. */
  online: number;
  target: number;
  matched: number;
  ratio: number;
  /** tcpcopy's losses by reason and its module counters. */
  lost: Record<string, number>;
  counters: Record<string, number>;
  unexplained: number;
}

/** Settings. */
export interface FidelityOptions {
  /** sysbench seconds. Default 30. */
  seconds?: number;
  /** sysbench --rate, transactions/s (0: unthrottled). Default 100. */
  tps?: number;
  /** sysbench threads. Default 8. */
  threads?: number;
}

const ONLINE = { ip: '198.18.1.1', port: 3306 };

function row(
  name: FidelityRow['name'],
  o: Required<FidelityOptions>,
  tps: number,
  online: MariadbServer,
  target: MariadbServer,
  om: number,
  tm: number,
  rep: ModuleReport | null,
): FidelityRow {
  const c = compareStatements(online.clientRecords(om), target.clientRecords(tm));
  return {
    name,
    seconds: o.seconds,
    threads: o.threads,
    tps,
    offeredTps: o.tps,
    online: c.online,
    target: c.target,
    matched: c.matched,
    ratio: c.ratio,
    lost: rep !== null ? Object.fromEntries(Object.entries(rep.accounting.lost).filter(([, v]) => v > 0)) : {},
    counters: rep?.engine.module?.counters ?? {},
    unexplained: rep?.accounting.unexplained ?? NaN,
  };
}

/** One line per figure. */
export function fidelityLine(r: FidelityRow): string {
  return (
    `mysql-fidelity[${r.name}]: sysbench ${r.seconds} s, ${r.threads} threads, ${r.tps.toFixed(0)} tx/s (offered ${r.offeredTps || 'unthrottled'}): ` +
    `target/online statements ${r.matched}/${r.online} = ${(r.ratio * 100).toFixed(3)}% (target ran ${r.target}); ` +
    `lost ${JSON.stringify(r.lost)}, unexplained ${r.unexplained}; module ${JSON.stringify(r.counters)}`
  );
}

async function midstream(
  lab: Lab,
  online: MariadbServer,
  target: MariadbServer,
  args: string[],
  o: Required<FidelityOptions>,
  psMode: 'auto' | 'disable',
): Promise<FidelityRow> {
  const login = defaultLogin(online);
  const m0 = online.mark();
  const sb: SysbenchOptions = {
    tables: 4,
    tableSize: 2000,
    threads: o.threads,
    timeS: o.seconds + 5,
    rate: o.tps,
    psMode,
  };
  const run = sysbenchRun(lab, 'client', ONLINE, sb, login);
  // connections open and running before tcpcopy starts
  await waitUntil(() => statements(online.clientRecords(m0)).length >= 500, 30_000, 'sysbench runs');
  await new Promise((r) => setTimeout(r, 5000));
  const tc = await startLiveTcpcopy(lab, [...args, '--mysql-login', `${login.user}@${login.database}`]);
  await new Promise((r) => setTimeout(r, 200));
  const om = online.mark();
  const tm = target.mark();
  const s = await run;
  await waitLogQuiet(target, 60_000, 2000);
  const r = await tc.stop();
  return row(
    psMode === 'disable' ? 'live-midstream-text' : 'live-midstream-ps',
    o,
    s.transactions / s.totalTimeS,
    online,
    target,
    om,
    tm,
    r.report as ModuleReport | null,
  );
}

/** Runs the four figures. */
export async function runMysqlFidelity(log: (s: string) => void, opts: FidelityOptions = {}): Promise<FidelityRow[]> {
  const o: Required<FidelityOptions> = {
    seconds: opts.seconds ?? 30,
    tps: opts.tps ?? 100,
    threads: opts.threads ?? 8,
  };
  return withLab({ prefix: 'tcs7', clientAddresses: 2 }, async (lab) => {
    const [online, target] = await Promise.all([lab.startMariadb('online'), lab.startMariadb('target')]);
    const login = defaultLogin(online);
    const sbPrep: SysbenchOptions = { tables: 4, tableSize: 2000 };
    await Promise.all([sysbenchPrepare(lab, online, sbPrep), sysbenchPrepare(lab, target, sbPrep)]);
    const secret = path.join(lab.dir, 'channel-secret');
    writeFileSync(secret, 'tcpcopy-mysql-fidelity-shared-secret\n', { mode: 0o600 });
    const icp = lab.spawn('assistant', [
      process.execPath,
      INTERCEPT,
      '-i',
      lab.hosts.assistant.dev,
      '-F',
      'tcp and src port 3306',
      '--secret-file',
      secret,
    ]);
    await icp.waitFor(/listening on/, 10_000);
    const args = [
      '-x',
      '3306-198.18.0.2:3306',
      '-s',
      '198.18.0.3',
      '--secret-file',
      secret,
      '--module',
      'mysql',
      '--mysql-user',
      `${login.user}:${login.password}`,
    ];
    const rows: FidelityRow[] = [];
    const push = (r: FidelityRow): void => {
      rows.push(r);
      log(fidelityLine(r));
    };

    // 1. live, connections opened after tcpcopy started; tcpdump records the same traffic
    const file = path.join(lab.dir, 'sysbench.pcap');
    const cap = await lab.capture('online', {
      dev: lab.hosts.online.clientDev ?? lab.hosts.online.dev,
      filter: 'tcp port 3306',
      file,
    });
    const om = online.mark();
    let tm = target.mark();
    const tc = await startLiveTcpcopy(lab, args);
    const sb: SysbenchOptions = { ...sbPrep, threads: o.threads, timeS: o.seconds, rate: o.tps, psMode: 'auto' };
    const s = await sysbenchRun(lab, 'client', ONLINE, sb, login);
    await waitLogQuiet(target, 60_000, 2000);
    const r1 = await tc.stop();
    const capStats = await cap.stop();
    const tps = s.transactions / s.totalTimeS;
    push(row('live-syn', o, tps, online, target, om, tm, r1.report as ModuleReport | null));
    log(
      `mysql-fidelity: the pcap holds ${capStats.packets} packets (${capStats.droppedByKernel ?? 0} dropped by the kernel)`,
    );

    // 2. the same traffic offline from the pcap
    tm = target.mark();
    const r2 = await runTcpcopy(lab, ['-i', file, ...args]);
    await waitLogQuiet(target, 60_000, 2000);
    push(row('offline', o, tps, online, target, om, tm, r2.report as ModuleReport));

    // 3. and 4. connections opened before tcpcopy started
    push(await midstream(lab, online, target, args, o, 'disable'));
    push(await midstream(lab, online, target, args, o, 'auto'));
    return rows;
  });
}
