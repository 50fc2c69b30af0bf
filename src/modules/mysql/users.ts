/**
 * Users and passwords of the MySQL module: `--mysql-user USER:PASSWORD` and the original's
 * `conf/plugin.conf` line `user u1@p1,u2@p2;`. Pure parsing; errors are TcpcopyError
 * ERR_BAD_OPTION naming the option, the value and the fix.
 */
import { TcpcopyError } from '../../core/errors';

/** Parses `USER:PASSWORD` (split at the first ':'; the password may contain ':' and be empty). */
export function parseUserPassword(s: string, option = '--mysql-user'): { user: string; password: string } {
  const i = s.indexOf(':');
  if (i <= 0)
    throw new TcpcopyError('ERR_BAD_OPTION', `${option} ${s}: expected USER:PASSWORD, e.g. ${option} app:secret`, {
      option,
      value: s,
    });
  return { user: s.slice(0, i), password: s.slice(i + 1) };
}

/**
 * Parses the original's plugin.conf text: lines `user u1@p1,u2@p2;` (the `;` optional,
 * spaces around items ignored, each item split at its first '@'), blank lines and `#`
 * comments skipped. Returns user -> password (a later entry for a user wins).
 */
export function parsePluginConf(text: string, source = 'plugin.conf'): Map<string, string> {
  const users = new Map<string, string>();
  text.split(/\r?\n/).forEach((raw, n) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^user\s+(.*?);?\s*$/.exec(line);
    const where = `${source} line ${n + 1}`;
    if (m === null)
      throw new TcpcopyError('ERR_BAD_OPTION', `${where}: '${line}': expected 'user u1@p1,u2@p2;'`, {
        option: source,
        value: line,
      });
    for (const item of (m[1] as string).split(',')) {
      const it = item.trim();
      if (it === '') continue;
      const at = it.indexOf('@');
      if (at <= 0)
        throw new TcpcopyError('ERR_BAD_OPTION', `${where}: '${it}': expected USER@PASSWORD`, {
          option: source,
          value: it,
        });
      users.set(it.slice(0, at), it.slice(at + 1));
    }
  });
  return users;
}
