/**
 * The PostgreSQL rows of the lab benchmark (issue 14): pgbench -M prepared -c 8 at a fixed
 * rate (-R) against the online PostgreSQL 15, copied live by tcpcopy to a target cluster,
 * measured three ways on the same load:
 *
 * - `plain, trust`: a role both servers let in without a password (pg_hba trust), plain TCP
 *   replay (no module): the captured logins work as they are;
 * - `module, trust`: the same role and load through `--module postgres` (it frames every
 *   message; the target asks for no password): the difference to `plain` is what framing costs;
 * - `module, scram`: a SCRAM-SHA-256 role, its logins redone for the target's salt and nonce.
 *
 * For each, a fresh tcpcopy is warmed up with `warmSeconds` of the load, then measured over
 * `seconds`: tcpcopy and intercept CPU µs per transaction the target committed in the window
 * (every thread's run time, /proc/PID/task/TID/schedstat), and fidelity (the online server's
 * statements found in the target's statement log; transactions committed). Needs root. No
 * assertions.
 */
import * as os from 'node:os';
import { withLab, type Lab } from '../src/lab/lab';
import { pgbenchArgv, pgbenchInit, pgbenchTransactions } from '../src/lab/pg-clients';
import { compareStatementLogs } from '../src/lab/pg-log';
import { DEFAULT_PG_ROLES, startPostgres, type PgRole, type PgServer } from '../src/lab/postgres';
import { startLiveTcpcopy } from '../test/e2e/replay-helpers';
import { ASSISTANT_IP, ONLINE_EP, TARGET_IP, secretFile, startPgIntercept } from '../test/e2e/postgres-helpers';
import { applyTargetModel, type TargetModel } from './lab';
import { cpuNsOf, cpuTicks, stealPct } from './lab-proc';

/** One PostgreSQL row. */
export interface PostgresRow {
  variant: 'plain, trust' | 'module, trust' | 'module, scram';
  model: TargetModel;
  /** pgbench's scheduled transactions per second (-R) and what it reached. */
  offeredTps: number;
  tps: number;
  /** Online statements in the window, the target's, online's found on the target. */
  online: number;
  target: number;
  matched: number;
  fidelity: number;
  /** Transactions committed in the window: online, target. */
  onlineTx: number;
  targetTx: number;
  /** tcpcopy CPU µs per transaction the target committed (warm window). */
  tcpcopyCpuUsPerTx: number;
  /** intercept CPU µs per transaction the target committed. */
  interceptCpuUsPerTx: number;
  stealPct: number;
  moduleCounters: Record<string, number>;
  lost: Record<string, number>;
}

/** Settings of the PostgreSQL rows. */
export interface PostgresBenchOptions {
  /** Measured seconds. Default 10. */
  seconds?: number;
  /** Warm-up seconds. Default 5. */
  warmSeconds?: number;
  /** pgbench transactions per second in all (7 statements each). Default 200. */
  tps?: number;
  /** pgbench connections. Default 8. */
  clients?: number;
}

const TRUST: PgRole = { user: 'tctrust', password: 'trustpw', auth: 'trust' };

/** Polls the target's commits until they stand still for 2 s (bounded: 60 s). */
async function settle(target: PgServer): Promise<void> {
  let last = -1;
  let since = Date.now();
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const n = await target.xactCommit();
    if (n !== last) {
      last = n;
      since = Date.now();
    } else if (Date.now() - since > 2000) return;
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function measure(
  lab: Lab,
  online: PgServer,
  target: PgServer,
  icpPid: number,
  variant: PostgresRow['variant'],
  role: PgRole,
  module: boolean,
  o: Required<PostgresBenchOptions>,
): Promise<PostgresRow> {
  const model: TargetModel = os.cpus().length >= 2 ? 'remote' : 'inline';
  const args = ['-x', `5432-${TARGET_IP}:5432`, '-s', ASSISTANT_IP, '--secret-file', secretFile(lab)];
  if (module) args.push('--module', 'postgres', '--pg-user', `${role.user}:${role.password}`);
  const tc = await startLiveTcpcopy(lab, [...args, '-i', lab.hosts.online.clientDev as string]);
  await applyTargetModel(lab, model, tc.proc.pid);
  const run = (timeS: number): string[] =>
    pgbenchArgv(ONLINE_EP, role, online.database, { mode: 'prepared', clients: o.clients, timeS, rate: o.tps });
  if (o.warmSeconds > 0) {
    await lab.exec('client', run(o.warmSeconds), { timeoutMs: 120_000 });
    await settle(target);
  }
  const om = online.mark();
  const tm = target.mark();
  const [otx0, ttx0] = [await online.xactCommit(), await target.xactCommit()];
  const cpu0 = cpuNsOf(tc.proc.pid);
  const icp0 = cpuNsOf(icpPid);
  const ticks0 = cpuTicks();
  const r = await lab.exec('client', run(o.seconds), { timeoutMs: (o.seconds + 120) * 1000 });
  await settle(target);
  const cpuNs = cpuNsOf(tc.proc.pid) - cpu0;
  const icpNs = cpuNsOf(icpPid) - icp0;
  const steal = stealPct(ticks0, cpuTicks());
  const [otx1, ttx1] = [await online.xactCommit(), await target.xactCommit()];
  const stopped = await tc.stop();
  const c = compareStatementLogs(online.clientStatements(om), target.clientStatements(tm));
  const rep = stopped.report as unknown as {
    engine: { module?: { counters?: Record<string, number> } };
    accounting: { lost: Record<string, number> };
  } | null;
  const targetTx = ttx1 - ttx0;
  return {
    variant,
    model,
    offeredTps: o.tps,
    tps: r.code === 0 ? pgbenchTransactions(r.stdout) / o.seconds : NaN,
    online: c.online,
    target: c.target,
    matched: c.matched,
    fidelity: c.ratio,
    onlineTx: otx1 - otx0,
    targetTx,
    tcpcopyCpuUsPerTx: cpuNs / 1e3 / Math.max(1, targetTx),
    interceptCpuUsPerTx: icpNs / 1e3 / Math.max(1, targetTx),
    stealPct: steal,
    moduleCounters: rep?.engine.module?.counters ?? {},
    lost: rep !== null ? Object.fromEntries(Object.entries(rep.accounting.lost).filter(([, v]) => v > 0)) : {},
  };
}

/** One line per row. */
export function postgresRowLine(r: PostgresRow): string {
  return (
    `postgres[${r.variant}, ${r.model}]: pgbench -M prepared ${r.tps.toFixed(0)}/${r.offeredTps} tx/s, online ${r.online} statements, ` +
    `target ${r.target}, matched ${r.matched} (${(r.fidelity * 100).toFixed(2)}%), transactions ${r.targetTx}/${r.onlineTx}, ` +
    `tcpcopy ${r.tcpcopyCpuUsPerTx.toFixed(0)} us/tx, intercept ${r.interceptCpuUsPerTx.toFixed(0)} us/tx, ` +
    `steal ${r.stealPct.toFixed(1)}%, lost ${JSON.stringify(r.lost)}`
  );
}

/** Runs the three PostgreSQL rows and logs them with the module's cost. */
export async function runPostgresBench(
  log: (s: string) => void,
  opts: PostgresBenchOptions = {},
): Promise<PostgresRow[]> {
  const o: Required<PostgresBenchOptions> = {
    seconds: opts.seconds ?? 10,
    warmSeconds: opts.warmSeconds ?? 5,
    tps: opts.tps ?? 200,
    clients: opts.clients ?? 8,
  };
  return withLab({ prefix: 'tcs7', clientAddresses: 2 }, async (lab) => {
    const roles = [...DEFAULT_PG_ROLES, TRUST];
    const [online, target] = await Promise.all([
      startPostgres(lab, 'online', { roles }),
      startPostgres(lab, 'target', { roles }),
    ]);
    await Promise.all([online, target].map((s) => pgbenchInit(lab, s)));
    const icp = await startPgIntercept(lab);
    const scram = DEFAULT_PG_ROLES[0] as PgRole;
    const rows: PostgresRow[] = [];
    for (const [variant, role, module] of [
      ['plain, trust', TRUST, false],
      ['module, trust', TRUST, true],
      ['module, scram', scram, true],
    ] as const) {
      const row = await measure(lab, online, target, icp.pid, variant, role, module, o);
      log(postgresRowLine(row));
      rows.push(row);
    }
    const [p, m] = rows as [PostgresRow, PostgresRow];
    log(
      `postgres: the module costs ${(m.tcpcopyCpuUsPerTx - p.tcpcopyCpuUsPerTx).toFixed(0)} us of tcpcopy CPU per transaction ` +
        `(${((m.tcpcopyCpuUsPerTx / p.tcpcopyCpuUsPerTx - 1) * 100).toFixed(0)}% over plain TCP replay), ` +
        `intercept ${(m.interceptCpuUsPerTx - p.interceptCpuUsPerTx).toFixed(0)} us (reply payloads over channel v2)`,
    );
    return rows;
  });
}
