/**
 * Options of `--module redis`, parsed into a frozen value. Errors are TcpcopyError
 * ERR_BAD_OPTION naming the option, the value and the fix.
 */
import { TcpcopyError } from '../../core/errors';
import type { ModuleOptions } from '../api';

/** The user of `AUTH password` (one argument) and of `requirepass`. */
export const DEFAULT_USER = 'default';

export interface RedisOptions {
  /**
   * The target's password per user (`--redis-auth`): `PASSWORD` is the default user's
   * (requirepass), `USER:PASSWORD` an ACL user's; '' = that user needs no password on the target.
   */
  readonly passwords: ReadonlyMap<string, string>;
  /** The user of an AUTH inserted for a session that sent none and whose client has no stored login (`--redis-login`); null: see module.ts. */
  readonly login: string | null;
}

function bad(option: string, value: string, want: string): TcpcopyError {
  return new TcpcopyError('ERR_BAD_OPTION', `--${option} ${value}: expected ${want}`, { option: `--${option}`, value });
}

/** `PASSWORD` (the default user) or `USER:PASSWORD` (split at the first ':'). */
export function parseRedisAuth(s: string): [string, string] {
  const i = s.indexOf(':');
  if (i < 0) return [DEFAULT_USER, s];
  if (i === 0)
    throw bad('redis-auth', s, 'PASSWORD or USER:PASSWORD (a default password with ":" is default:PASSWORD)');
  return [s.slice(0, i), s.slice(i + 1)];
}

/** The module's options from what the runner collected. */
export function parseRedisOptions(opts: ModuleOptions): RedisOptions {
  const passwords = new Map<string, string>();
  for (const v of opts['redis-auth'] ?? []) {
    const [u, p] = parseRedisAuth(v);
    if (passwords.has(u)) throw bad('redis-auth', v, `one value per user (${u} was given twice)`);
    passwords.set(u, p);
  }
  const logins = opts['redis-login'] ?? [];
  if (logins.length > 1) throw bad('redis-login', logins.join(' '), 'one user');
  const login = logins[0] ?? null;
  if (login !== null && !passwords.has(login))
    throw new TcpcopyError(
      'ERR_BAD_OPTION',
      `--redis-login ${login}: no password for ${login}; add --redis-auth ${login === DEFAULT_USER ? '' : `${login}:`}PASSWORD`,
      { option: '--redis-login', value: login },
    );
  return Object.freeze({ passwords, login });
}
