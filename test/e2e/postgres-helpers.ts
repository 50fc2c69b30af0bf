/**
 * Shared parts of the PostgreSQL end-to-end tests (issue 14): the lab's two PostgreSQL 15
 * clusters (online, target) with the same roles, pgbench tables and kv table; intercept with
 * channel v2 payloads; tcpcopy's arguments with `--module postgres`; the comparison of the
 * statements each server logged (log_statement = all).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Lab } from '../../src/lab/lab';
import type { LabProcess } from '../../src/lab/process';
import { startPostgres, type PgServer } from '../../src/lab/postgres';
import { PG_KV_TABLE, pgbenchInit, type PgEndpoint } from '../../src/lab/pg-clients';
import { compareStatementLogs, pgComparisonLine, type PgComparison, type PgLogRecord } from '../../src/lab/pg-log';
import { INTERCEPT, TCPCOPY } from './replay-helpers';
import { run } from '../../src/lab/sh';

/** The online server as the client sees it. */
export const ONLINE_EP: PgEndpoint = { ip: '198.18.1.1', port: 5432 };
export const TARGET_IP = '198.18.0.2';
export const ASSISTANT_IP = '198.18.0.3';

export interface PgPair {
  online: PgServer;
  target: PgServer;
}

/** Starts both clusters, makes the pgbench tables (scale 1) and kv on both, identically. */
export async function startPgPair(lab: Lab): Promise<PgPair> {
  const [online, target] = await Promise.all([startPostgres(lab, 'online'), startPostgres(lab, 'target')]);
  for (const s of [online, target]) {
    await pgbenchInit(lab, s);
    await s.sql(`${PG_KV_TABLE}; ALTER TABLE kv OWNER TO tc; GRANT ALL ON kv TO tcmd5`);
  }
  return { online, target };
}

export function secretFile(lab: Lab): string {
  const f = path.join(lab.dir, 'channel-secret');
  if (!fs.existsSync(f)) fs.writeFileSync(f, 'tcpcopy-postgres-e2e-shared-secret\n', { mode: 0o600 });
  return f;
}

/** intercept on the assistant for the target's port 5432, channel v2 (payloads to sessions that ask). */
export async function startPgIntercept(lab: Lab, extra: string[] = []): Promise<LabProcess> {
  const p = lab.spawn('assistant', [
    process.execPath,
    INTERCEPT,
    '-i',
    lab.hosts.assistant.dev,
    '-F',
    'tcp and src port 5432',
    '--secret-file',
    secretFile(lab),
    ...extra,
  ]);
  await p.waitFor(/listening on/, 10_000);
  return p;
}

/** tcpcopy's arguments with `--module postgres` and both roles' passwords. */
export function pgModuleArgs(lab: Lab, p: PgPair, extra: string[] = []): string[] {
  return [
    '-x',
    `5432-${TARGET_IP}:5432`,
    '-s',
    ASSISTANT_IP,
    '--secret-file',
    secretFile(lab),
    '--module',
    'postgres',
    ...p.online.roles.flatMap((r) => ['--pg-user', `${r.user}:${r.password}`]),
    ...extra,
  ];
}

/** Why the replay tests cannot run yet: tcpcopy without `--module` (the engine part of issue 13). */
export async function moduleSupportMissing(): Promise<false | string> {
  const r = await run([process.execPath, TCPCOPY, '--help'], { timeoutMs: 20_000 }).catch(() => null);
  return r !== null && /--module\b/.test(r.stdout + r.stderr) && /--pg-user\b/.test(r.stdout + r.stderr)
    ? false
    : 'tcpcopy has no --module postgres yet (the engine side of issue 13 is not merged)';
}

/** Compares statements and prints the line. */
export function compareSince(
  online: readonly PgLogRecord[],
  target: readonly PgLogRecord[],
  name: string,
): PgComparison {
  const c = compareStatementLogs(online, target);
  say(`${name}: ${pgComparisonLine(c)}`);
  if (c.missingSample.length > 0) say(`${name}: missing e.g. ${c.missingSample.slice(0, 3).join(' | ')}`);
  return c;
}

export function say(line: string): void {
  process.stdout.write(`# ${line}\n`);
}
