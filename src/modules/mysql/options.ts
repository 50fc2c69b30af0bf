/**
 * The MySQL module's options, parsed and checked (pure; errors are TcpcopyError ERR_BAD_OPTION
 * naming the option, the value and the fix):
 *
 * - `--mysql-user USER:PASSWORD` (repeatable): a user the replay logs in as, with its password
 *   on the *target* (the original: `user USER@PASSWORD;` in conf/plugin.conf).
 * - `--mysql-users FILE`: the same from a file (the runner reads it; the module gets its text):
 *   one `USER:PASSWORD` per line, or the original's plugin.conf lines `user u1@p1,u2@p2;`;
 *   blank lines and `#` comments skipped; leading and trailing blanks of a line ignored.
 *   A user given twice: the last value wins (the file first, then the --mysql-user values).
 * - `--mysql-login USER[@DB][:PORT]` (repeatable): the login used for a session picked up
 *   mid-stream when no earlier captured login of its client is stored (see logins.ts); with
 *   `:PORT`, only for sessions to that online server port; the user needs a password.
 */
import { TcpcopyError } from '../../core/errors';
import { parsePluginConf, parseUserPassword } from './users';
import type { ModuleOptions } from '../api';

/** A configured fallback login for mid-stream sessions. */
export interface ConfiguredLogin {
  user: string;
  /** null: no database selected. */
  database: string | null;
  /** The online server port it applies to; null: any. */
  port: number | null;
}

/** The module's checked configuration. */
export interface MysqlConfig {
  /** user -> password on the target. */
  readonly users: ReadonlyMap<string, string>;
  /** --mysql-login values, in order. */
  readonly logins: readonly ConfiguredLogin[];
}

function bad(option: string, value: string, msg: string): TcpcopyError {
  return new TcpcopyError('ERR_BAD_OPTION', `${option} ${value}: ${msg}`, { option, value });
}

/** Parses the text of a --mysql-users file into `users` (later lines win). */
export function parseUsersFile(text: string, users: Map<string, string>, source = '--mysql-users'): void {
  text.split(/\r?\n/).forEach((raw, n) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const where = `${source} line ${n + 1}`;
    if (/^user\s/.test(line)) {
      // blank lines before it, so that parsePluginConf names this line's number
      for (const [u, p] of parsePluginConf('\n'.repeat(n) + line, source)) users.set(u, p);
      return;
    }
    const { user, password } = parseUserPassword(line, where);
    users.set(user, password);
  });
}

/** Parses `USER[@DB][:PORT]`. */
export function parseLogin(s: string, option = '--mysql-login'): ConfiguredLogin {
  let rest = s;
  let port: number | null = null;
  const m = /:(\d+)$/.exec(rest);
  if (m !== null) {
    port = Number(m[1]);
    if (port < 1 || port > 65535) throw bad(option, s, `port ${m[1]} is not 1..65535`);
    rest = rest.slice(0, m.index);
  }
  const at = rest.indexOf('@');
  const user = at < 0 ? rest : rest.slice(0, at);
  const database = at < 0 ? null : rest.slice(at + 1);
  if (user === '' || database === '')
    throw bad(option, s, `expected USER[@DB][:PORT], e.g. ${option} app@shop or ${option} app@shop:3306`);
  return { user, database, port };
}

/** Checks and combines the module's options. Throws ERR_BAD_OPTION. */
export function parseMysqlOptions(opts: ModuleOptions): MysqlConfig {
  const users = new Map<string, string>();
  for (const text of opts['mysql-users'] ?? []) parseUsersFile(text, users);
  for (const v of opts['mysql-user'] ?? []) {
    const { user, password } = parseUserPassword(v, '--mysql-user');
    users.set(user, password);
  }
  const logins = (opts['mysql-login'] ?? []).map((v) => {
    const l = parseLogin(v);
    if (!users.has(l.user))
      throw bad('--mysql-login', v, `no password for user ${l.user}: add --mysql-user ${l.user}:PASSWORD`);
    return l;
  });
  const known = new Set(['mysql-user', 'mysql-users', 'mysql-login']);
  for (const k of Object.keys(opts))
    if (!known.has(k))
      throw new TcpcopyError(
        'ERR_BAD_OPTION',
        `--${k}: not an option of the mysql module (it has --mysql-user, --mysql-users, --mysql-login)`,
        {
          option: `--${k}`,
        },
      );
  return { users, logins };
}
