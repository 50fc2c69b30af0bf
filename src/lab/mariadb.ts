/**
 * MariaDB servers for the lab (Debian's mariadb-server): each with its own data directory made
 * by mariadb-install-db inside the lab directory, bound to the host's lab addresses only, with
 * users authenticated by mysql_native_password, a test database, and the general query log on
 * (the ground truth of the MySQL replay tests: see mariadb-log.ts). The lab itself talks to a
 * server only through its Unix socket (root, unix_socket auth): those connections are told
 * apart from the clients' (always TCP) in the counts. Started in a host's namespace through the
 * lab, so down() stops it by pid; stop() does the same earlier.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { TcpcopyError } from '../core/errors';
import { clientRecords, parseGeneralLog, type GeneralLogRecord, type ParsedGeneralLog } from './mariadb-log';
import type { HostName } from './names';
import type { LabProcess } from './process';
import type { LabServices } from './servers';
import { run, sleep, type ExecResult } from './sh';

/** A database user the lab creates. */
export interface MariadbUser {
  /** User name (created as 'name'@'%'). */
  user: string;
  /** Password (mysql_native_password). */
  password: string;
}

/** Options of startMariadb. */
export interface MariadbOptions {
  /** TCP port. Default 3306. */
  port?: number;
  /** Addresses to bind (comma separated). Default: every address of the host (online: 198.18.0.1 and 198.18.1.1). */
  bind?: string;
  /** Users to create, each granted everything on `database`. Default [{ user: 'tc', password: 'tcpw' }]. */
  users?: readonly MariadbUser[];
  /** Database to create. Default 'tcdb'. */
  database?: string;
  /** max_connections. Default 500. */
  maxConnections?: number;
  /** innodb_buffer_pool_size, MiB. Default 64. */
  bufferPoolMB?: number;
  /**
   * Start with --skip-grant-tables: any login is accepted whatever its password (no users are
   * created). For the benchmark's plain TCP replay, whose logins answer the online server's
   * scramble. Default false.
   */
  skipGrantTables?: boolean;
  /** Start time limit (install + start + setup), ms. Default 60000. */
  timeoutMs?: number;
}

/** A running lab MariaDB. */
export interface MariadbServer {
  /** Host it runs on. */
  host: HostName;
  /** First bound address (what clients on the same host connect to). */
  ip: string;
  /** TCP port. */
  port: number;
  /** Its mariadbd process. */
  proc: LabProcess;
  /** The users it has. */
  users: readonly MariadbUser[];
  /** The test database. */
  database: string;
  /** Unix socket (the lab's own connections). */
  socket: string;
  /** Data directory. */
  datadir: string;
  /** General query log file. */
  generalLog: string;
  /** Error log file. */
  errorLog: string;
  /** Reads and parses the general log now. */
  readLog(): ParsedGeneralLog;
  /** Number of records in the general log now (a mark for {@link MariadbServer.clientRecords}). */
  mark(): number;
  /** Records of client connections (the lab's own excluded) from record index `from` (a mark). */
  clientRecords(from?: number): GeneralLogRecord[];
  /**
   * Runs SQL as root over the Unix socket with the general log off for that session
   * (`SET SESSION sql_log_off=1`: only its Connect line is logged, and the counts leave it out).
   * Rejects with ERR_LAB_COMMAND when the client fails.
   */
  sql(statements: string, database?: string): Promise<string>;
  /** Stops it by pid (SIGTERM: a clean shutdown; SIGKILL after 20 s). */
  stop(): Promise<void>;
}

/** The lab's default user. */
export const DEFAULT_MARIADB_USER: MariadbUser = Object.freeze({ user: 'tc', password: 'tcpw' });

/** SQL string literal (single quotes doubled, backslashes escaped). */
function lit(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** SQL identifier in backquotes. */
function ident(s: string): string {
  return `\`${s.replace(/`/g, '``')}\``;
}

/** Size of a file, 0 when absent. */
function fileSize(f: string): number {
  try {
    return statSync(f).size;
  } catch {
    return 0;
  }
}

/**
 * Makes a data directory (mariadb-install-db), starts mariadbd in a host's namespace, waits
 * until it answers on its socket, creates the users and the database. On failure the server
 * is stopped and the error carries the end of its error log.
 */
export async function startMariadb(
  lab: LabServices,
  host: HostName,
  opts: MariadbOptions = {},
): Promise<MariadbServer> {
  const h = lab.host(host);
  const port = opts.port ?? 3306;
  const bind = opts.bind ?? h.addresses.join(',');
  const ip = bind.split(',')[0] ?? h.ip;
  for (const a of bind.split(','))
    if (!/^198\.1[89]\.\d+\.\d+$/.test(a))
      throw new TcpcopyError('ERR_LAB_OPTION', `mariadb bind ${a}: the lab binds only addresses in 198.18.0.0/15`);
  const users = opts.users ?? [DEFAULT_MARIADB_USER];
  const database = opts.database ?? 'tcdb';
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  const name = `mariadb-${host}-${port}`;
  const base = path.join(lab.dir, name);
  const datadir = path.join(base, 'data');
  const tmpdir = path.join(base, 'tmp');
  mkdirSync(tmpdir, { recursive: true });
  const socket = path.join(base, 'mysqld.sock');
  const generalLog = path.join(base, 'general.log');
  const errorLog = path.join(base, 'error.log');
  const pidFile = path.join(base, 'mysqld.pid');
  // server settings shared by install-db (bootstrap) and the server: same redo log size, no resize
  // at start; a temp dir of its own (two bootstraps at once collide on temp table names in /tmp)
  const common = [
    '--no-defaults',
    `--datadir=${datadir}`,
    `--tmpdir=${tmpdir}`,
    '--user=root',
    `--innodb-buffer-pool-size=${opts.bufferPoolMB ?? 64}M`,
    '--innodb-log-file-size=48M',
  ];
  const inst = await run(
    [
      'mariadb-install-db',
      ...common,
      '--auth-root-authentication-method=socket',
      '--skip-test-db',
      '--skip-name-resolve',
    ],
    { timeoutMs },
  );
  if (inst.code !== 0)
    throw new TcpcopyError(
      'ERR_LAB_START',
      `mariadb-install-db for ${name} failed (exit ${inst.code}; apt-get install mariadb-server): ${(inst.stderr || inst.stdout).slice(-2000)}`,
    );
  const proc = lab.spawn(
    host,
    [
      'mariadbd',
      ...common,
      `--port=${port}`,
      `--bind-address=${bind}`,
      `--socket=${socket}`,
      `--pid-file=${pidFile}`,
      `--log-error=${errorLog}`,
      '--general-log=1',
      `--general-log-file=${generalLog}`,
      '--skip-name-resolve',
      '--skip-log-bin',
      '--skip-ssl',
      '--performance-schema=0',
      `--max-connections=${opts.maxConnections ?? 500}`,
      '--innodb-flush-log-at-trx-commit=0',
      '--innodb-doublewrite=0',
      '--max-allowed-packet=64M',
      ...(opts.skipGrantTables === true ? ['--skip-grant-tables'] : []),
    ],
    { label: name, graceMs: 20_000, logFile: path.join(base, 'stderr.log') },
  );
  const rootSql = (sqlText: string, db?: string): Promise<ExecResult> =>
    lab.exec(
      host,
      [
        'mariadb',
        '--no-defaults',
        `--socket=${socket}`,
        '-uroot',
        '--batch',
        '--skip-column-names',
        ...(db !== undefined ? [db] : []),
        '-e',
        `SET SESSION sql_log_off=1; ${sqlText}`,
      ],
      { timeoutMs: 30_000 },
    );
  const fail = async (what: string): Promise<never> => {
    await proc.stop();
    const tail = existsSync(errorLog) ? readFileSync(errorLog, 'utf8').slice(-2000) : '';
    throw proc.startError(`${what}; error log: ${tail}`);
  };
  for (;;) {
    if (existsSync(socket) && (await rootSql('SELECT 1')).code === 0) break;
    if (!proc.running) return fail('exited before answering on its socket');
    if (Date.now() > deadline) return fail(`not answering on its socket within ${timeoutMs} ms`);
    await sleep(100);
  }
  const setup = [
    `CREATE DATABASE ${ident(database)}`,
    ...(opts.skipGrantTables === true ? [] : users).flatMap((u) => [
      `CREATE USER ${lit(u.user)}@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD(${lit(u.password)})`,
      `GRANT ALL ON ${ident(database)}.* TO ${lit(u.user)}@'%'`,
    ]),
  ].join('; ');
  const r = await rootSql(setup);
  if (r.code !== 0) return fail(`setup SQL failed: ${r.stderr.trim()}`);
  const readLog = (): ParsedGeneralLog =>
    parseGeneralLog(existsSync(generalLog) ? readFileSync(generalLog, 'utf8') : '');
  return {
    host,
    ip,
    port,
    proc,
    users,
    database,
    socket,
    datadir,
    generalLog,
    errorLog,
    readLog,
    mark: () => readLog().records.length,
    clientRecords: (from = 0) => clientRecords(readLog().records, from),
    async sql(statementsText: string, db?: string): Promise<string> {
      const x = await rootSql(statementsText, db);
      if (x.code !== 0)
        throw new TcpcopyError('ERR_LAB_COMMAND', `${name}: SQL failed: ${x.stderr.trim()}`, { stderr: x.stderr });
      return x.stdout;
    },
    async stop() {
      await proc.stop();
    },
  };
}

/**
 * Polls a server's general log until it stops growing for `quietMs` (default 1000) or
 * `timeoutMs` (default 20000) passes; resolves its size. For "the target has run everything".
 */
export async function waitLogQuiet(s: MariadbServer, timeoutMs = 20_000, quietMs = 1000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = fileSize(s.generalLog);
  let since = Date.now();
  for (;;) {
    await sleep(100);
    const n = fileSize(s.generalLog);
    if (n !== last) {
      last = n;
      since = Date.now();
    }
    if (Date.now() - since >= quietMs || Date.now() > deadline) return last;
  }
}
