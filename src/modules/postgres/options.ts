/**
 * Options of `--module postgres`, parsed into a frozen value. Errors are TcpcopyError
 * ERR_BAD_OPTION naming the option, the value and the fix.
 */
import { TcpcopyError } from '../../core/errors';
import type { ModuleOptions } from '../api';

/** A `--pg-login USER@DB[:PORT]`: the login of mid-stream sessions with no stored login. */
export interface ConfiguredLogin {
  user: string;
  database: string;
  /** Only for sessions to this online port; null: any. */
  port: number | null;
}

export interface PostgresOptions {
  /** user -> password (`--pg-user`, then `--pg-users` lines; a `--pg-user` wins). */
  readonly passwords: ReadonlyMap<string, string>;
  readonly logins: readonly ConfiguredLogin[];
}

function bad(option: string, value: string, want: string): TcpcopyError {
  return new TcpcopyError('ERR_BAD_OPTION', `--${option} ${value}: expected ${want}`, { option: `--${option}`, value });
}

/** `USER:PASSWORD` split at the first ':' (the password may hold ':' and be empty). */
export function parseUserPassword(s: string, option = 'pg-user'): [string, string] {
  const i = s.indexOf(':');
  if (i <= 0) throw bad(option, s, `USER:PASSWORD, e.g. --${option} app:secret`);
  return [s.slice(0, i), s.slice(i + 1)];
}

/** `USER@DB[:PORT]`. */
export function parseLogin(s: string): ConfiguredLogin {
  const m = /^([^@]+)@([^:]+)(?::(\d{1,5}))?$/.exec(s);
  const port = m?.[3] === undefined ? null : Number(m[3]);
  if (m === null || (port !== null && (port < 1 || port > 65535)))
    throw bad('pg-login', s, 'USER@DB or USER@DB:PORT, e.g. --pg-login app@shop');
  return { user: m[1] as string, database: m[2] as string, port };
}

/** The module's options from what the runner collected (`pg-users` holds the file's text). */
export function parsePostgresOptions(opts: ModuleOptions): PostgresOptions {
  const passwords = new Map<string, string>();
  for (const text of opts['pg-users'] ?? []) {
    text.split(/\r?\n/).forEach((raw, n) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      try {
        const [u, p] = parseUserPassword(line, 'pg-users');
        passwords.set(u, p);
      } catch {
        throw bad('pg-users', `line ${n + 1} '${line}'`, 'USER:PASSWORD lines (# comments)');
      }
    });
  }
  for (const v of opts['pg-user'] ?? []) {
    const [u, p] = parseUserPassword(v);
    passwords.set(u, p);
  }
  const logins = (opts['pg-login'] ?? []).map(parseLogin);
  for (const l of logins)
    if (!passwords.has(l.user))
      throw new TcpcopyError(
        'ERR_BAD_OPTION',
        `--pg-login ${l.user}@${l.database}: no password for ${l.user}; add --pg-user ${l.user}:PASSWORD`,
        { option: '--pg-login', value: `${l.user}@${l.database}` },
      );
  return Object.freeze({ passwords, logins: Object.freeze(logins) });
}
