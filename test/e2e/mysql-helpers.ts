/**
 * Shared parts of the MySQL end-to-end tests (issue 13): the lab's two MariaDB servers, the
 * kv table the mysql2 client uses, the mysql2 client program, intercept with channel v2
 * payloads, tcpcopy's arguments with and without `--module mysql`, and the comparison of what
 * the online server ran with what the target ran (their general query logs).
 */
import * as fs from 'node:fs';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { Lab } from '../../src/lab/lab';
import type { LabProcess } from '../../src/lab/process';
import type { MariadbServer } from '../../src/lab/mariadb';
import { compareStatements, comparisonLine, type StatementComparison } from '../../src/lab/mariadb-log';
import { waitLogQuiet } from '../../src/lab/mariadb';
import { defaultLogin, type MysqlEndpoint, type MysqlLogin } from '../../src/lab/mysql-clients';
import { INTERCEPT, type LiveTcpcopy, processFigures, type TcpcopyJsonReport } from './replay-helpers';

/** The online server as the client sees it. */
export const ONLINE_EP: MysqlEndpoint = { ip: '198.18.1.1', port: 3306 };
/** Where tcpcopy sends the replay (-x 3306-TARGET). */
export const TARGET_IP = '198.18.0.2';
/** The assistant (intercept). */
export const ASSISTANT_IP = '198.18.0.3';

/** The table the mysql2 client writes (created on both servers by the lab, not by a client). */
export const KV_TABLE = 'CREATE TABLE kv (id INT PRIMARY KEY, conn INT, v VARCHAR(64)) ENGINE=InnoDB';

/** Both servers of a MySQL test. */
export interface MysqlPair {
  online: MariadbServer;
  target: MariadbServer;
  login: MysqlLogin;
}

/** Starts the online (port 3306 on online) and target (3306 on target) servers and creates kv on both. */
export async function startPair(lab: Lab): Promise<MysqlPair> {
  const [online, target] = await Promise.all([lab.startMariadb('online'), lab.startMariadb('target')]);
  for (const s of [online, target]) await s.sql(KV_TABLE, s.database);
  return { online, target, login: defaultLogin(online) };
}

/** The channel v2 secret file both sides use (intercept sends reply payloads only on v2). */
export function secretFile(lab: Lab): string {
  const f = path.join(lab.dir, 'channel-secret');
  if (!fs.existsSync(f)) fs.writeFileSync(f, 'tcpcopy-mysql-e2e-shared-secret\n', { mode: 0o600 });
  return f;
}

/** Starts intercept on the assistant for the target's port 3306, channel v2 (payload to sessions that ask). */
export async function startMysqlIntercept(lab: Lab, extra: string[] = []): Promise<LabProcess> {
  const p = lab.spawn('assistant', [
    process.execPath,
    INTERCEPT,
    '-i',
    lab.hosts.assistant.dev,
    '-F',
    'tcp and src port 3306',
    '--secret-file',
    secretFile(lab),
    ...extra,
  ]);
  await p.waitFor(/listening on/, 10_000);
  return p;
}

/** tcpcopy's transfer and channel arguments (v2), without a module. */
export function replayArgs(lab: Lab): string[] {
  return ['-x', `3306-${TARGET_IP}:3306`, '-s', ASSISTANT_IP, '--secret-file', secretFile(lab)];
}

/** tcpcopy's arguments with `--module mysql` and the lab user's password (and more module options). */
export function moduleArgs(lab: Lab, p: MysqlPair, extra: string[] = []): string[] {
  return [...replayArgs(lab), '--module', 'mysql', '--mysql-user', `${p.login.user}:${p.login.password}`, ...extra];
}

/** The compiled mysql2 client program. */
export const MYSQL2_CLIENT = path.join(__dirname, '..', '..', 'src', 'lab', 'mysql2-client-main.js');

/** Options of the mysql2 client (see src/lab/mysql2-client-main.ts). */
export interface Mysql2Run {
  connections: number;
  statements: number;
  phases?: number;
  goFile?: string;
  tag: number;
}

/** What the mysql2 client printed at the end. */
export interface Mysql2Totals {
  connections: number;
  prepares: number;
  executes: number;
  queries: number;
  closes: number;
}

/** Spawns the mysql2 client in the client's namespace against the online server. */
export function spawnMysql2(lab: Lab, login: MysqlLogin, o: Mysql2Run): LabProcess {
  return lab.spawn(
    'client',
    [
      process.execPath,
      MYSQL2_CLIENT,
      '--host',
      ONLINE_EP.ip,
      '--port',
      String(ONLINE_EP.port),
      '--user',
      login.user,
      '--password',
      login.password,
      '--database',
      login.database,
      '--connections',
      String(o.connections),
      '--statements',
      String(o.statements),
      '--phases',
      String(o.phases ?? 1),
      '--tag',
      String(o.tag),
      ...(o.goFile !== undefined ? ['--go-file', o.goFile] : []),
    ],
    { label: 'mysql2-client' },
  );
}

/** Waits for a mysql2 client to exit and returns its totals; throws with its stderr when it failed. */
export async function mysql2Totals(p: LabProcess): Promise<Mysql2Totals> {
  const e = await p.exited;
  const line = p.stdout.trim().split('\n').pop() ?? '';
  if (e.code !== 0 || !line.startsWith('{'))
    throw new Error(`mysql2 client failed (${JSON.stringify(e)}): ${p.stderr.slice(-2000)}`);
  return JSON.parse(line) as Mysql2Totals;
}

/** Compares the client statements each server logged since its mark and prints the line. */
export function compareSince(p: MysqlPair, onlineMark: number, targetMark: number, name: string): StatementComparison {
  const c = compareStatements(p.online.clientRecords(onlineMark), p.target.clientRecords(targetMark));
  process.stdout.write(`# ${name}: ${comparisonLine(c)}\n`);
  if (c.missingSample.length > 0)
    process.stdout.write(`# ${name}: missing e.g. ${c.missingSample.slice(0, 3).join(' | ')}\n`);
  return c;
}

/** One line of the report's evidence: session outcomes, mid-stream pick-ups, the module's counters and reply streams. */
export function moduleLine(rep: ModuleReport): string {
  const e = rep.engine;
  const outcomes = Object.fromEntries(Object.entries(e.outcomes).filter(([, n]) => n > 0));
  const m = e.module;
  return (
    `sessions ${e.sessionsCreated} (mid-stream ${e.sessionsSynthesized ?? '?'}) ${JSON.stringify(outcomes)}; ` +
    `module lost ${JSON.stringify(m?.lost)} counters ${JSON.stringify(m?.counters)} ended ${JSON.stringify(m?.ended)}; ` +
    `target stream ${JSON.stringify(m?.target)} online stream ${JSON.stringify(m?.online)}`
  );
}

/**
 * Once the target's general log is quiet: stops tcpcopy, asserts it exited 0 with a report,
 * prints its process figures, accounting and module line, and returns the report.
 */
export async function stopWithReport(p: MysqlPair, tc: LiveTcpcopy): Promise<ModuleReport> {
  await waitLogQuiet(p.target, 30_000, 2000);
  const r = await tc.stop();
  say(processFigures(r.report));
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  assert.notEqual(r.report, null);
  const rep = r.report as ModuleReport;
  say(`accounting ${JSON.stringify(rep.accounting)}`);
  say(moduleLine(rep));
  return rep;
}

/** Prints one line to the test output. */
export function say(line: string): void {
  process.stdout.write(`# ${line}\n`);
}

/** tcpcopy's JSON report with the module's part (EngineStats.module) and the loss hints. */
export type ModuleReport = TcpcopyJsonReport & {
  engine: TcpcopyJsonReport['engine'] & {
    module: {
      name: string;
      ended: Record<string, number>;
      lost: Record<string, number>;
      counters: Record<string, number>;
      /** The reply streams as delivered to the module (bytes, missing, held, notHeld, duplicates). */
      target?: Record<string, number>;
      online?: Record<string, number>;
    } | null;
    sessionsSynthesized?: number;
  };
  hints?: string[];
};
