/**
 * Real MySQL clients for the lab, run in a host's namespace (normally the client's, talking to
 * the online MariaDB at 198.18.1.1): the `mariadb` command-line client (Debian's
 * mariadb-client) and sysbench's `oltp_read_write` (Debian's sysbench). Every run is bounded in
 * time (sysbench by --time or --events, the CLI by a time limit).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { TcpcopyError } from '../core/errors';
import type { MariadbServer, MariadbUser } from './mariadb';
import type { HostName } from './names';
import type { LabProcess } from './process';
import type { LabServices } from './servers';
import type { ExecResult } from './sh';

/** Where a client connects: an address and port (the online server as the client host sees it). */
export interface MysqlEndpoint {
  ip: string;
  port: number;
}

/** Login of a client. */
export interface MysqlLogin extends MariadbUser {
  /** Database to use. */
  database: string;
}

/** The login of a lab server's first user on its database. */
export function defaultLogin(s: Pick<MariadbServer, 'users' | 'database'>): MysqlLogin {
  const u = s.users[0];
  if (u === undefined) throw new TcpcopyError('ERR_LAB_OPTION', 'the server has no user');
  return { user: u.user, password: u.password, database: s.database };
}

function cliArgv(to: MysqlEndpoint, login: MysqlLogin): string[] {
  return [
    'mariadb',
    '--no-defaults',
    '--protocol=TCP',
    '-h',
    to.ip,
    '-P',
    String(to.port),
    '-u',
    login.user,
    `--password=${login.password}`,
    '--batch',
    '--skip-ssl',
    login.database,
  ];
}

/** Runs `mariadb -e SQL` (one connection, batch mode) in a host's namespace; resolves its output. */
export function mariadbCli(
  lab: LabServices,
  host: HostName,
  to: MysqlEndpoint,
  login: MysqlLogin,
  sql: string,
  timeoutMs = 30_000,
): Promise<ExecResult> {
  return lab.exec(host, [...cliArgv(to, login), '-e', sql], { timeoutMs });
}

/**
 * Starts one `mariadb` connection fed in phases (for sessions picked up mid-stream): it reads
 * `phases[0]`, then waits until the file `<goFile>.1` exists before reading `phases[1]`, and so
 * on (each wait at most `waitS` seconds, default 60), then quits. Create the file with
 * {@link goFileFor} when the next phase may start. The process is a shell feeding the client
 * through a pipe; it ends by itself once the phases are done.
 */
export function spawnMariadbPhases(
  lab: LabServices,
  host: HostName,
  to: MysqlEndpoint,
  login: MysqlLogin,
  phases: readonly string[],
  goFile: string,
  waitS = 60,
): LabProcess {
  const parts: string[] = [];
  phases.forEach((sql, i) => {
    const f = path.join(lab.dir, `${path.basename(goFile)}.phase${i}.sql`);
    writeFileSync(f, sql.endsWith('\n') ? sql : `${sql}\n`);
    if (i > 0) {
      const g = goFileFor(goFile, i);
      // bounded wait: 20 checks a second for waitS seconds
      parts.push(`n=0; while [ ! -e '${g}' ] && [ $n -lt ${waitS * 20} ]; do sleep 0.05; n=$((n+1)); done`);
    }
    parts.push(`cat '${f}'`);
  });
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const script = `( ${parts.join('; ')} ) | ${cliArgv(to, login).map(q).join(' ')}`;
  return lab.spawn(host, ['sh', '-c', script], { label: `mariadb-cli-${host}` });
}

/** The file whose existence lets phase `i` of {@link spawnMariadbPhases} start. */
export function goFileFor(goFile: string, i: number): string {
  return `${goFile}.${i}`;
}

/** Options of sysbench oltp_read_write. */
export interface SysbenchOptions {
  /** Tables (sbtest1..N). Default 2. */
  tables?: number;
  /** Rows per table. Default 1000. */
  tableSize?: number;
  /** Client threads (connections). Default 4. */
  threads?: number;
  /** Seconds to run (--time). Default 10. */
  timeS?: number;
  /** Transactions to run at most (--events; 0: no limit, --time bounds it). Default 0. */
  events?: number;
  /** Server-side prepared statements: 'auto' (sysbench's default: binary protocol) or 'disable' (text queries). Default 'auto'. */
  psMode?: 'auto' | 'disable';
  /** --rand-seed (the same seed prepares identical tables on two servers). Default 1. */
  seed?: number;
  /** Transactions per second cap (--rate; 0: as fast as possible). Default 0. */
  rate?: number;
}

/** What sysbench printed in its summary. */
export interface SysbenchSummary {
  transactions: number;
  queries: number;
  read: number;
  write: number;
  other: number;
  ignoredErrors: number;
  reconnects: number;
  /** Wall seconds sysbench reported ("total time"). */
  totalTimeS: number;
}

function sysbenchArgs(o: SysbenchOptions, login: MysqlLogin): string[] {
  return [
    'oltp_read_write',
    '--db-driver=mysql',
    `--mysql-user=${login.user}`,
    `--mysql-password=${login.password}`,
    `--mysql-db=${login.database}`,
    '--mysql-ssl=off',
    `--tables=${o.tables ?? 2}`,
    `--table-size=${o.tableSize ?? 1000}`,
    `--rand-seed=${o.seed ?? 1}`,
  ];
}

/** Parses sysbench's run summary (numbers missing from the text are NaN). */
export function parseSysbench(text: string): SysbenchSummary {
  const num = (re: RegExp): number => {
    const m = re.exec(text);
    return m ? Number(m[1]) : NaN;
  };
  return {
    transactions: num(/transactions:\s+(\d+)/),
    queries: num(/queries:\s+(\d+)/),
    read: num(/read:\s+(\d+)/),
    write: num(/write:\s+(\d+)/),
    other: num(/other:\s+(\d+)/),
    ignoredErrors: num(/ignored errors:\s+(\d+)/),
    reconnects: num(/reconnects:\s+(\d+)/),
    totalTimeS: num(/total time:\s+([\d.]+)s/),
  };
}

/**
 * Creates sysbench's tables on a lab server through its Unix socket (so the lab's counts leave
 * the statements out), from the server's own namespace. The same options and seed give two
 * servers identical tables.
 */
export async function sysbenchPrepare(
  lab: LabServices,
  server: MariadbServer,
  o: SysbenchOptions = {},
  login: MysqlLogin = defaultLogin(server),
): Promise<void> {
  const r = await lab.exec(
    server.host,
    ['sysbench', ...sysbenchArgs(o, login), `--mysql-socket=${server.socket}`, '--threads=1', 'prepare'],
    { timeoutMs: 120_000 },
  );
  if (r.code !== 0)
    throw new TcpcopyError(
      'ERR_LAB_COMMAND',
      `sysbench prepare on ${server.host} failed (exit ${r.code}; apt-get install sysbench): ${(r.stderr || r.stdout).slice(-2000)}`,
    );
}

/**
 * sysbench's tables prepared on `online`, then copied row for row to `target` (mariadb-dump over
 * both servers' Unix sockets, as root, the import's general log off): the two hold the same
 * rows, which two separate `sysbench prepare` runs do not always give (a CI run's CHECKSUM TABLE
 * differed although both used the same --rand-seed).
 */
export async function sysbenchPrepareCopy(
  lab: LabServices,
  online: MariadbServer,
  target: MariadbServer,
  o: SysbenchOptions = {},
): Promise<void> {
  await sysbenchPrepare(lab, online, o);
  const tables = Array.from({ length: o.tables ?? 2 }, (_, i) => `sbtest${i + 1}`);
  const dump = ['mariadb-dump', '--no-defaults', `--socket=${online.socket}`, '-uroot', '--skip-comments'];
  const load = [
    'mariadb',
    '--no-defaults',
    `--socket=${target.socket}`,
    '-uroot',
    "--init-command='SET SESSION sql_log_off=1'",
  ];
  const r = await lab.exec(
    online.host,
    ['sh', '-c', `${dump.join(' ')} ${online.database} ${tables.join(' ')} | ${load.join(' ')} ${target.database}`],
    { timeoutMs: 120_000 },
  );
  if (r.code !== 0)
    throw new TcpcopyError(
      'ERR_LAB_COMMAND',
      `copying the sysbench tables from ${online.host} to ${target.host} failed (exit ${r.code}): ${(r.stderr || r.stdout).slice(-2000)}`,
    );
}

/** The argv of `sysbench oltp_read_write run` over TCP. */
export function sysbenchRunArgv(to: MysqlEndpoint, o: SysbenchOptions, login: MysqlLogin): string[] {
  return [
    'sysbench',
    ...sysbenchArgs(o, login),
    `--mysql-host=${to.ip}`,
    `--mysql-port=${to.port}`,
    `--threads=${o.threads ?? 4}`,
    `--time=${o.timeS ?? 10}`,
    `--events=${o.events ?? 0}`,
    `--rate=${o.rate ?? 0}`,
    `--db-ps-mode=${o.psMode ?? 'auto'}`,
    '--report-interval=0',
    'run',
  ];
}

/** Runs `sysbench oltp_read_write run` in a host's namespace against `to`; resolves its summary. */
export async function sysbenchRun(
  lab: LabServices,
  host: HostName,
  to: MysqlEndpoint,
  o: SysbenchOptions,
  login: MysqlLogin,
): Promise<SysbenchSummary> {
  const r = await lab.exec(host, sysbenchRunArgv(to, o, login), { timeoutMs: ((o.timeS ?? 10) + 60) * 1000 });
  const s = parseSysbench(r.stdout);
  if (r.code !== 0 || !Number.isFinite(s.queries))
    throw new TcpcopyError(
      'ERR_LAB_COMMAND',
      `sysbench run failed (exit ${r.code}): ${(r.stderr || r.stdout).slice(-2000)}`,
    );
  return s;
}
