/**
 * PostgreSQL 15 servers for the lab (Debian's postgresql-15): each its own cluster made by
 * initdb inside the lab directory (run as the `postgres` system user through setpriv, which
 * execs: the pid the lab stops is the postmaster's), listening on the host's lab addresses
 * only, `password_encryption = scram-sha-256` with one SCRAM role and one md5 role, and
 * `log_statement = all` into a csvlog (the ground truth: see pg-log.ts). The lab's own
 * connections use the Unix socket (trust), told apart from the clients' (always TCP).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync, chownSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { TcpcopyError } from '../core/errors';
import { clientStatements, parseCsvLog, type PgLogRecord } from './pg-log';
import type { HostName } from './names';
import type { LabProcess } from './process';
import type { LabServices } from './servers';
import { sleep, type ExecResult } from './sh';

/** Where Debian installs PostgreSQL 15's server programs. */
export const PG_BIN = '/usr/lib/postgresql/15/bin';

/** A role the lab creates. */
export interface PgRole {
  user: string;
  password: string;
  /** How its password is stored (and so which login the server asks for); trust: no login asked (pg_hba trust, the password stored as SCRAM). */
  auth: 'scram-sha-256' | 'md5' | 'trust';
}

/** The lab's default roles: a SCRAM one and an md5 one. */
export const DEFAULT_PG_ROLES: readonly PgRole[] = Object.freeze([
  { user: 'tc', password: 'tcpw', auth: 'scram-sha-256' },
  { user: 'tcmd5', password: 'md5pw', auth: 'md5' },
]);

/** Options of startPostgres. */
export interface PostgresOptions {
  /** TCP port. Default 5432. */
  port?: number;
  /** Addresses to listen on. Default: every address of the host. */
  addresses?: readonly string[];
  roles?: readonly PgRole[];
  /** Database (owned by the first role). Default 'tcdb'. */
  database?: string;
  /** max_connections. Default 100. */
  maxConnections?: number;
  /** Start time limit (initdb + start + setup), ms. Default 60000. */
  timeoutMs?: number;
}

/** A running lab PostgreSQL. */
export interface PgServer {
  host: HostName;
  /** First address (what clients connect to). */
  ip: string;
  port: number;
  proc: LabProcess;
  roles: readonly PgRole[];
  database: string;
  /** Unix socket directory (the lab's own connections). */
  socketDir: string;
  datadir: string;
  /** The csvlog file. */
  csvLog: string;
  /** Every record of the csvlog now. */
  records(): PgLogRecord[];
  /** Statements of TCP clients from record index `from` (a mark from {@link PgServer.mark}). */
  clientStatements(from?: number): PgLogRecord[];
  /** Number of records now. */
  mark(): number;
  /** Runs SQL as `postgres` over the Unix socket (not logged: log_statement is off for it). */
  sql(text: string, database?: string): Promise<string>;
  /** pg_stat_database.xact_commit of the database (the lab's own transactions included). */
  xactCommit(): Promise<number>;
  stop(): Promise<void>;
}

function uidOf(user: string): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${user}:`));
  const f = line?.split(':');
  if (!f) throw new TcpcopyError('ERR_LAB_START', `no ${user} system user (apt-get install postgresql-15)`);
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

/** argv prefix running a program as the postgres user (setpriv execs: same pid). */
export const AS_POSTGRES = ['setpriv', '--reuid=postgres', '--regid=postgres', '--clear-groups', '--'];

function lit(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}
function ident(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

/** Makes a cluster, starts it in a host's namespace, waits until it answers, creates the roles and database. */
export async function startPostgres(lab: LabServices, host: HostName, opts: PostgresOptions = {}): Promise<PgServer> {
  const h = lab.host(host);
  const port = opts.port ?? 5432;
  const addresses = opts.addresses ?? h.addresses;
  for (const a of addresses)
    if (!/^198\.1[89]\.\d+\.\d+$/.test(a))
      throw new TcpcopyError('ERR_LAB_OPTION', `postgres address ${a}: the lab listens only on 198.18.0.0/15`);
  const ip = addresses[0] ?? h.ip;
  const roles = opts.roles ?? DEFAULT_PG_ROLES;
  const database = opts.database ?? 'tcdb';
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  const name = `postgres-${host}-${port}`;
  const base = path.join(lab.dir, name);
  const datadir = path.join(base, 'data');
  mkdirSync(base, { recursive: true });
  const pgUser = uidOf('postgres');
  chownSync(base, pgUser.uid, pgUser.gid);
  try {
    execFileSync(
      AS_POSTGRES[0] as string,
      [
        ...AS_POSTGRES.slice(1),
        `${PG_BIN}/initdb`,
        '-D',
        datadir,
        '-U',
        'postgres',
        '--auth-local=trust',
        '-E',
        'UTF8',
      ],
      { timeout: timeoutMs, stdio: 'pipe' },
    );
  } catch (e) {
    const err = e as { stderr?: Buffer };
    throw new TcpcopyError(
      'ERR_LAB_START',
      `initdb for ${name} failed (apt-get install postgresql-15): ${err.stderr?.toString().slice(-2000) ?? String(e)}`,
    );
  }
  const conf = [
    `listen_addresses = '${addresses.join(',')}'`,
    `port = ${port}`,
    `unix_socket_directories = '${base}'`,
    `max_connections = ${opts.maxConnections ?? 100}`,
    "password_encryption = 'scram-sha-256'",
    'ssl = off',
    'fsync = off',
    'synchronous_commit = off',
    'full_page_writes = off',
    'shared_buffers = 32MB',
    "log_destination = 'csvlog'",
    'logging_collector = on',
    `log_directory = '${base}'`,
    "log_filename = 'pg.log'",
    "log_statement = 'all'",
    'log_connections = on',
    'log_min_messages = warning',
    "log_timezone = 'UTC'",
    "timezone = 'UTC'",
  ];
  writeFileSync(path.join(datadir, 'postgresql.conf'), conf.join('\n') + '\n', { flag: 'a' });
  const hba = [
    'local all all trust',
    ...roles.filter((r) => r.auth !== 'scram-sha-256').map((r) => `host all ${r.user} 198.18.0.0/15 ${r.auth}`),
    'host all all 198.18.0.0/15 scram-sha-256',
  ];
  writeFileSync(path.join(datadir, 'pg_hba.conf'), hba.join('\n') + '\n');
  const csvLog = path.join(base, 'pg.csv');
  const proc = lab.spawn(host, [...AS_POSTGRES, `${PG_BIN}/postgres`, '-D', datadir], {
    label: name,
    stopSignal: 'SIGINT', // fast shutdown (SIGTERM waits for the clients to leave)
    graceMs: 20_000,
    logFile: path.join(base, 'stderr.log'),
  });
  const psql = (text: string | readonly string[], db = 'postgres'): Promise<ExecResult> =>
    lab.exec(
      host,
      [
        'psql',
        '-X',
        '-q',
        '-v',
        'ON_ERROR_STOP=1',
        '-At',
        '-h',
        base,
        '-p',
        String(port),
        '-U',
        'postgres',
        '-d',
        db,
        '-c',
        "SET log_statement = 'none'",
        ...(typeof text === 'string' ? [text] : text).flatMap((t) => ['-c', t]),
      ],
      { timeoutMs: 60_000 },
    );
  const fail = async (what: string): Promise<never> => {
    await proc.stop();
    const tail = existsSync(path.join(base, 'stderr.log'))
      ? readFileSync(path.join(base, 'stderr.log'), 'utf8').slice(-2000)
      : '';
    throw proc.startError(`${what}; ${tail}`);
  };
  for (;;) {
    if (existsSync(path.join(base, `.s.PGSQL.${port}`)) && (await psql('SELECT 1')).code === 0) break;
    if (!proc.running) return fail('exited before answering on its socket');
    if (Date.now() > deadline) return fail(`not answering within ${timeoutMs} ms`);
    await sleep(100);
  }
  const owner = (roles[0] as PgRole).user;
  const setup = [
    ...roles.flatMap((r) => [
      `SET password_encryption = '${r.auth === 'md5' ? 'md5' : 'scram-sha-256'}'`,
      `CREATE ROLE ${ident(r.user)} LOGIN PASSWORD ${lit(r.password)}`,
    ]),
    `CREATE DATABASE ${ident(database)} OWNER ${ident(owner)}`,
  ];
  const r0 = await psql(setup);
  if (r0.code !== 0) return fail(`setup SQL failed: ${r0.stderr.trim()}`);
  const others = roles.slice(1).map((r) => ident(r.user));
  if (others.length > 0) {
    const r = await psql(
      [
        `GRANT ALL ON SCHEMA public TO ${others.join(', ')}`,
        `ALTER DEFAULT PRIVILEGES FOR ROLE ${ident(owner)} GRANT ALL ON TABLES TO ${others.join(', ')}`,
      ],
      database,
    );
    if (r.code !== 0) return fail(`grant SQL failed: ${r.stderr.trim()}`);
  }
  const records = (): PgLogRecord[] => (existsSync(csvLog) ? parseCsvLog(readFileSync(csvLog, 'utf8')) : []);
  return {
    host,
    ip,
    port,
    proc,
    roles,
    database,
    socketDir: base,
    datadir,
    csvLog,
    records,
    mark: () => records().length,
    clientStatements: (from = 0) => clientStatements(records().slice(from)),
    async sql(text: string, db?: string): Promise<string> {
      const x = await psql(text, db ?? database);
      if (x.code !== 0)
        throw new TcpcopyError('ERR_LAB_COMMAND', `${name}: SQL failed: ${x.stderr.trim()}`, { stderr: x.stderr });
      return x.stdout;
    },
    async xactCommit(): Promise<number> {
      const x = await psql(`SELECT xact_commit FROM pg_stat_database WHERE datname = ${lit(database)}`);
      return Number(x.stdout.trim().split('\n').pop());
    },
    async stop() {
      await proc.stop();
    },
  };
}
