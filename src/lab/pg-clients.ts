/**
 * PostgreSQL clients of the lab, run in a host's namespace against a server's lab address:
 * psql, pgbench (-M simple / prepared; its tables made over the Unix socket so the setup is not
 * counted) and the Node client (pg-client-main.ts: npm pg, named prepared statements, phases).
 */
import * as path from 'node:path';
import { TcpcopyError } from '../core/errors';
import type { HostName } from './names';
import type { LabProcess } from './process';
import type { LabServices } from './servers';
import type { ExecResult } from './sh';
import type { PgRole, PgServer } from './postgres';

/** Where a client connects. */
export interface PgEndpoint {
  ip: string;
  port: number;
}

/** A libpq connection string (no TLS, no GSS encryption: the replay cannot use them). */
export function conninfo(ep: PgEndpoint, role: PgRole, database: string, sslmode = 'disable'): string {
  return `host=${ep.ip} port=${ep.port} user=${role.user} dbname=${database} sslmode=${sslmode} gssencmode=disable`;
}

/** Runs psql with `sql` (-c) over TCP; resolves its exit and output. */
export function psql(
  lab: LabServices,
  host: HostName,
  ep: PgEndpoint,
  role: PgRole,
  database: string,
  sql: string,
  sslmode = 'disable',
): Promise<ExecResult> {
  return lab.exec(
    host,
    ['env', `PGPASSWORD=${role.password}`, 'psql', '-X', '-q', '-At', conninfo(ep, role, database, sslmode), '-c', sql],
    { timeoutMs: 60_000 },
  );
}

/** pgbench -i on a server over its Unix socket (as the database owner; not counted as client statements). */
export async function pgbenchInit(lab: LabServices, s: PgServer, scale = 1): Promise<void> {
  const owner = s.roles[0] as PgRole;
  const r = await lab.exec(
    s.host,
    ['pgbench', '-i', '-q', '-s', String(scale), '-h', s.socketDir, '-p', String(s.port), '-U', owner.user, s.database],
    { timeoutMs: 120_000 },
  );
  if (r.code !== 0) throw new TcpcopyError('ERR_LAB_COMMAND', `pgbench -i failed: ${r.stderr.slice(-2000)}`);
  const others = s.roles.slice(1).map((x) => `"${x.user}"`);
  if (others.length > 0) await s.sql(`GRANT ALL ON ALL TABLES IN SCHEMA public TO ${others.join(', ')}`);
}

/** What one pgbench run is. */
export interface PgbenchRun {
  mode: 'simple' | 'prepared' | 'extended';
  clients: number;
  /** Duration (-T, s); or `transactions` per client (-t). */
  timeS?: number;
  transactions?: number;
  sslmode?: string;
  /** Transactions per second in all (-R, a schedule; pgbench's default: as fast as it can). */
  rate?: number;
  /** application_name of its connections (PGAPPNAME): tells runs apart in a server's log. Default: pgbench's own, `pgbench`. */
  appName?: string;
}

/** pgbench's argv for a run against `ep`. */
export function pgbenchArgv(ep: PgEndpoint, role: PgRole, database: string, o: PgbenchRun): string[] {
  return [
    'env',
    `PGPASSWORD=${role.password}`,
    `PGSSLMODE=${o.sslmode ?? 'disable'}`,
    'PGGSSENCMODE=disable',
    ...(o.appName !== undefined ? [`PGAPPNAME=${o.appName}`] : []),
    'pgbench',
    '-n',
    '-M',
    o.mode,
    '-c',
    String(o.clients),
    '-j',
    String(Math.min(o.clients, 2)),
    ...(o.transactions !== undefined ? ['-t', String(o.transactions)] : ['-T', String(o.timeS ?? 10)]),
    ...(o.rate !== undefined ? ['-R', String(o.rate)] : []),
    '-h',
    ep.ip,
    '-p',
    String(ep.port),
    '-U',
    role.user,
    database,
  ];
}

/** Transactions pgbench reports as processed, from its output. */
export function pgbenchTransactions(stdout: string): number {
  const m = /number of transactions actually processed: (\d+)/.exec(stdout);
  if (!m) throw new TcpcopyError('ERR_LAB_COMMAND', `pgbench printed no transaction count: ${stdout.slice(-1000)}`);
  return Number(m[1]);
}

/** Spawns pgbench (for runs that overlap something else: tcpcopy's start). */
export function spawnPgbench(
  lab: LabServices,
  host: HostName,
  ep: PgEndpoint,
  role: PgRole,
  database: string,
  o: PgbenchRun,
): LabProcess {
  return lab.spawn(host, pgbenchArgv(ep, role, database, o), { label: 'pgbench' });
}

/** The compiled Node client program. */
export const PG_CLIENT = path.join(__dirname, 'pg-client-main.js');

/** Options of the Node client (see pg-client-main.ts). */
export interface PgClientRun {
  connections: number;
  /** Statements per connection and phase. */
  statements: number;
  phases?: number;
  /** Phase k > 0 waits for `${goFile}.${k}`. */
  goFile?: string;
  /** Distinguishes the rows of runs (written into the kv table's ids). */
  tag: number;
}

/** Spawns the Node client against `ep`. */
export function spawnPgClient(
  lab: LabServices,
  host: HostName,
  ep: PgEndpoint,
  role: PgRole,
  database: string,
  o: PgClientRun,
): LabProcess {
  return lab.spawn(
    host,
    [
      process.execPath,
      PG_CLIENT,
      JSON.stringify({ host: ep.ip, port: ep.port, user: role.user, password: role.password, database, ...o }),
    ],
    { label: 'pg-client' },
  );
}

/** What the Node client printed at the end. */
export interface PgClientTotals {
  connections: number;
  /** Statements run (each a Parse-once named statement, or an unnamed extended query). */
  statements: number;
}

/** Waits for the Node client and returns its totals; throws with its stderr when it failed. */
export async function pgClientTotals(p: LabProcess): Promise<PgClientTotals> {
  const e = await p.exited;
  const line = p.stdout.trim().split('\n').pop() ?? '';
  if (e.code !== 0 || !line.startsWith('{'))
    throw new Error(`pg client failed (${JSON.stringify(e)}): ${p.stderr.slice(-2000)}`);
  return JSON.parse(line) as PgClientTotals;
}

/** The table the Node client writes (created on both servers by the lab). */
export const PG_KV_TABLE = 'CREATE TABLE kv (id bigint PRIMARY KEY, conn int, v text)';
