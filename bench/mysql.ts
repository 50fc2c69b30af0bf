/**
 * The MySQL rows of the lab benchmark (issue 13): sysbench oltp_read_write (server-side
 * prepared statements) against the online MariaDB, copied live by tcpcopy to a target
 * MariaDB, measured two ways on the same load:
 *
 * - `module`: `--module mysql` (logins redone for the target's scramble, statement ids
 *   mapped, the target's reply payloads over channel v2) to a target with the lab user;
 * - `plain`: plain TCP replay, no module, to a second target MariaDB started with
 *   --skip-grant-tables (it accepts the captured logins as they are; statement ids of sessions
 *   captured from their SYN agree by themselves), so the same statements are replayed and the
 *   difference is what the module costs.
 *
 * For each, a fresh tcpcopy is warmed up with `warmSeconds` of the load, then measured over
 * `seconds`: tcpcopy CPU µs per statement the target ran in the window (every thread's run
 * time from /proc/PID/task/TID/schedstat), intercept CPU µs per statement, and fidelity (online
 * statements found in the target's general log). Needs root. No assertions.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { writeFileSync } from 'node:fs';
import { withLab, type Lab } from '../src/lab/lab';
import { compareStatements } from '../src/lab/mariadb-log';
import { waitLogQuiet, type MariadbServer } from '../src/lab/mariadb';
import { defaultLogin, sysbenchPrepare, sysbenchRun, type SysbenchOptions } from '../src/lab/mysql-clients';
import { INTERCEPT, startLiveTcpcopy } from '../test/e2e/replay-helpers';
import type { ModuleReport } from '../test/e2e/mysql-helpers';
import { applyTargetModel, type TargetModel } from './lab';
import { cpuNsOf, cpuTicks, stealPct } from './lab-proc';

/** One MySQL row. */
export interface MysqlRow {
  variant: 'module' | 'plain';
  model: TargetModel;
  /** sysbench's offered transactions per second (--rate) and what it reached. */
  offeredTps: number;
  tps: number;
  /** Statements in the window: online's, the target's, online's found on the target. */
  online: number;
  target: number;
  matched: number;
  fidelity: number;
  /** tcpcopy CPU µs per statement the target ran (warm window). */
  tcpcopyCpuUsPerStatement: number;
  /** intercept CPU µs per statement the target ran. */
  interceptCpuUsPerStatement: number;
  stealPct: number;
  /** tcpcopy's module counters at exit (module variant). */
  moduleCounters: Record<string, number>;
  lost: Record<string, number>;
}

/** Settings of the MySQL rows. */
export interface MysqlBenchOptions {
  /** Measured seconds. Default 10. */
  seconds?: number;
  /** Warm-up seconds. Default 5. */
  warmSeconds?: number;
  /** sysbench transactions per second (about 20 statements each). Default 100. */
  tps?: number;
  /** sysbench threads. Default 8. */
  threads?: number;
}

const ONLINE = { ip: '198.18.1.1', port: 3306 };

async function measure(
  lab: Lab,
  online: MariadbServer,
  target: MariadbServer,
  icpPid: number,
  variant: MysqlRow['variant'],
  args: string[],
  o: Required<MysqlBenchOptions>,
): Promise<MysqlRow> {
  const model: TargetModel = os.cpus().length >= 2 ? 'remote' : 'inline';
  const login = defaultLogin(online);
  const sb = (timeS: number): SysbenchOptions => ({
    tables: 4,
    tableSize: 2000,
    threads: o.threads,
    timeS,
    rate: o.tps,
    psMode: 'auto',
  });
  const tc = await startLiveTcpcopy(lab, args);
  await applyTargetModel(lab, model, tc.proc.pid);
  if (o.warmSeconds > 0) {
    await sysbenchRun(lab, 'client', ONLINE, sb(o.warmSeconds), login);
    await waitLogQuiet(target, 20_000, 1000);
  }
  const om = online.mark();
  const tm = target.mark();
  const cpu0 = cpuNsOf(tc.proc.pid);
  const icp0 = cpuNsOf(icpPid);
  const ticks0 = cpuTicks();
  const s = await sysbenchRun(lab, 'client', ONLINE, sb(o.seconds), login);
  await waitLogQuiet(target, 30_000, 1500);
  const cpuNs = cpuNsOf(tc.proc.pid) - cpu0;
  const icpNs = cpuNsOf(icpPid) - icp0;
  const steal = stealPct(ticks0, cpuTicks());
  const r = await tc.stop();
  const c = compareStatements(online.clientRecords(om), target.clientRecords(tm));
  const rep = r.report as ModuleReport | null;
  return {
    variant,
    model,
    offeredTps: o.tps,
    tps: s.transactions / Math.max(1e-9, s.totalTimeS),
    online: c.online,
    target: c.target,
    matched: c.matched,
    fidelity: c.ratio,
    tcpcopyCpuUsPerStatement: cpuNs / 1e3 / Math.max(1, c.target),
    interceptCpuUsPerStatement: icpNs / 1e3 / Math.max(1, c.target),
    stealPct: steal,
    moduleCounters: rep?.engine.module?.counters ?? {},
    lost: rep !== null ? Object.fromEntries(Object.entries(rep.accounting.lost).filter(([, v]) => v > 0)) : {},
  };
}

/** One line per row. */
export function mysqlRowLine(r: MysqlRow): string {
  return (
    `mysql[${r.variant}, ${r.model}]: sysbench ${r.tps.toFixed(0)}/${r.offeredTps} tx/s, online ${r.online} statements, target ${r.target}, ` +
    `matched ${r.matched} (${(r.fidelity * 100).toFixed(2)}%), tcpcopy ${r.tcpcopyCpuUsPerStatement.toFixed(1)} us/statement, ` +
    `intercept ${r.interceptCpuUsPerStatement.toFixed(1)} us/statement, steal ${r.stealPct.toFixed(1)}%, lost ${JSON.stringify(r.lost)}`
  );
}

/** Runs the two MySQL rows (plain, module) and logs them with the module's cost ratio. */
export async function runMysqlBench(log: (s: string) => void, opts: MysqlBenchOptions = {}): Promise<MysqlRow[]> {
  const o: Required<MysqlBenchOptions> = {
    seconds: opts.seconds ?? 10,
    warmSeconds: opts.warmSeconds ?? 5,
    tps: opts.tps ?? 100,
    threads: opts.threads ?? 8,
  };
  return withLab({ prefix: 'tcs6', clientAddresses: 2 }, async (lab) => {
    const [online, target, open] = await Promise.all([
      lab.startMariadb('online'),
      lab.startMariadb('target'),
      lab.startMariadb('target', { port: 3307, skipGrantTables: true }),
    ]);
    const sb: SysbenchOptions = { tables: 4, tableSize: 2000 };
    await Promise.all([online, target, open].map((s) => sysbenchPrepare(lab, s, sb, defaultLogin(online))));
    const secret = path.join(lab.dir, 'channel-secret');
    writeFileSync(secret, 'tcpcopy-mysql-bench-shared-secret\n', { mode: 0o600 });
    const icp = lab.spawn('assistant', [
      process.execPath,
      INTERCEPT,
      '-i',
      lab.hosts.assistant.dev,
      '-F',
      'tcp and (src port 3306 or src port 3307)',
      '--secret-file',
      secret,
    ]);
    await icp.waitFor(/listening on/, 10_000);
    const login = defaultLogin(online);
    const channel = ['-s', '198.18.0.3', '--secret-file', secret];
    const rows: MysqlRow[] = [];
    rows.push(await measure(lab, online, open, icp.pid, 'plain', ['-x', '3306-198.18.0.2:3307', ...channel], o));
    log(mysqlRowLine(rows[0] as MysqlRow));
    rows.push(
      await measure(
        lab,
        online,
        target,
        icp.pid,
        'module',
        [
          '-x',
          '3306-198.18.0.2:3306',
          ...channel,
          '--module',
          'mysql',
          '--mysql-user',
          `${login.user}:${login.password}`,
        ],
        o,
      ),
    );
    log(mysqlRowLine(rows[1] as MysqlRow));
    const [p, m] = rows as [MysqlRow, MysqlRow];
    log(
      `mysql: the module costs ${(m.tcpcopyCpuUsPerStatement - p.tcpcopyCpuUsPerStatement).toFixed(1)} us of tcpcopy CPU per statement ` +
        `(${((m.tcpcopyCpuUsPerStatement / p.tcpcopyCpuUsPerStatement - 1) * 100).toFixed(0)}% over plain TCP replay), ` +
        `intercept ${(m.interceptCpuUsPerStatement - p.interceptCpuUsPerStatement).toFixed(1)} us (reply payloads over channel v2)`,
    );
    return rows;
  });
}
