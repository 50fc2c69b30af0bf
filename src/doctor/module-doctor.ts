/**
 * The doctor's protocol-module checks: `tcpcopy doctor --module NAME [module options]`. The
 * module's options are taken out of the arguments here (the rest are the replay options),
 * files of readsFile options read, and the module's own checks run against each target.
 * Built-in modules with checks: mysql (a login for each configured user, mysql-login.ts).
 */
import { TcpcopyError } from '../core/errors';
import type { ModuleDefinition } from '../modules/api';
import { definition as mysql } from '../modules/mysql/index';
import { parseMysqlOptions } from '../modules/mysql/options';
import { check, type CheckResult } from './result';
import { checkMysqlLogin, probeMysqlLogin, type LoginOutcome } from './mysql-login';

/** The modules the doctor knows. */
const MODULES: Readonly<Record<string, ModuleDefinition>> = { mysql };

/** `--module NAME` and that module's options, as given. */
export interface ModuleArgs {
  name: string;
  definition: ModuleDefinition;
  /** Option values by name (readsFile options: the file's text). */
  opts: Record<string, string[]>;
}

/**
 * Takes `--module NAME` and the options of that module out of argv (`--opt V` or `--opt=V`);
 * readsFile options are read with `readFile`. Throws ERR_BAD_OPTION (unknown module, missing
 * value, unreadable file, an option of the module without --module).
 */
export function takeModuleArgs(
  argv: readonly string[],
  readFile: (path: string) => string,
): { module: ModuleArgs | null; rest: string[] } {
  const specs = new Map<string, { d: ModuleDefinition; o: ModuleDefinition['options'][number] }>(
    Object.values(MODULES).flatMap((d) => d.options.map((o) => [`--${o.name}`, { d, o }] as const)),
  );
  let name: string | null = null;
  const opts: Record<string, string[]> = {};
  const owners = new Set<string>();
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const spec = specs.get(flag);
    if (flag !== '--module' && spec === undefined) {
      rest.push(a);
      continue;
    }
    const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (v === undefined) throw new TcpcopyError('ERR_BAD_OPTION', `${flag}: expects a value`, { option: flag });
    if (flag === '--module') {
      if (MODULES[v] === undefined)
        throw new TcpcopyError(
          'ERR_BAD_OPTION',
          `--module ${v}: the doctor has checks for ${Object.keys(MODULES).join(', ')} only`,
          { option: '--module', value: v },
        );
      name = v;
      continue;
    }
    const { d, o } = spec as NonNullable<typeof spec>;
    owners.add(d.name);
    let value = v;
    if (o.readsFile === true) {
      try {
        value = readFile(v);
      } catch (e) {
        throw new TcpcopyError('ERR_BAD_OPTION', `${flag} ${v}: cannot read it: ${(e as Error).message}`, {
          option: flag,
          value: v,
        });
      }
    }
    (opts[o.name] ??= []).push(value);
  }
  for (const owner of owners)
    if (owner !== name)
      throw new TcpcopyError('ERR_BAD_OPTION', `options of the ${owner} module need --module ${owner}`, {
        option: '--module',
      });
  if (name === null) return { module: null, rest };
  return { module: { name, definition: MODULES[name] as ModuleDefinition, opts }, rest };
}

/** A target of the replay. */
export interface DoctorTarget {
  host: string;
  port: number;
}

/** How a login is tried (injected in tests). */
export type LoginProber = (host: string, port: number, user: string, password: string) => Promise<LoginOutcome>;

/** The module's checks for each target. Throws ERR_BAD_OPTION on the module's bad options. */
export async function runModuleChecks(
  m: ModuleArgs,
  targets: readonly DoctorTarget[],
  probe: LoginProber = (h, p, u, pw) => probeMysqlLogin(h, p, u, pw, 3000),
): Promise<CheckResult[]> {
  m.definition.createModule(m.opts); // the options as the replay would check them
  const cfg = parseMysqlOptions(m.opts);
  if (cfg.users.size === 0)
    return [
      check(
        'mysql-login',
        'fail',
        'no users configured: every session would end as unknownUser',
        'give --mysql-user USER:PASSWORD (repeatable) or --mysql-users FILE',
      ),
    ];
  const out: CheckResult[] = [];
  for (const t of targets)
    for (const [user, password] of cfg.users)
      out.push(checkMysqlLogin(user, `${t.host}:${t.port}`, await probe(t.host, t.port, user, password)));
  return out;
}
