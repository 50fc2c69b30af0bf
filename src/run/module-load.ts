/**
 * Loads the protocol module of `--module` (the runner's job: it reads files, the parser does
 * not): a built-in's definition from the registry, or a user's module file exporting
 * `createModule`; readsFile options are read here and handed to the factory as text. The
 * module the factory returns is checked for the fields of ProtocolModule.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TcpcopyError } from '../core/errors';
import type { ModuleChoice } from '../config/tcpcopy-config';
import type { ModuleFactory, ModuleOptions, ProtocolModule } from '../modules/api';
import { builtinDefinition } from '../modules/registry';

/** Reads a file as text (injectable for tests). */
export type ReadText = (file: string) => string;

const readUtf8: ReadText = (f) => fs.readFileSync(f, 'utf8');

function moduleError(spec: string, why: string): TcpcopyError {
  return new TcpcopyError('ERR_MODULE', `--module ${spec}: ${why}`, { module: spec });
}

/** What is wrong with `m` as a ProtocolModule, or null. */
export function moduleShapeError(m: unknown): string | null {
  if (typeof m !== 'object' || m === null) return 'createModule did not return an object';
  const o = m as Record<string, unknown>;
  if (typeof o['name'] !== 'string' || !/^[A-Za-z][A-Za-z0-9_-]{0,31}$/.test(o['name']))
    return 'name must be a short word (letters, digits, - and _; it names the module in the report and metrics)';
  for (const k of ['wantsTargetPayload', 'wantsOnlineReplies'])
    if (typeof o[k] !== 'boolean') return `${k} must be true or false`;
  const cap = o['targetPayloadMax'];
  if (cap !== undefined && (typeof cap !== 'number' || !Number.isInteger(cap) || cap < 0 || cap > 65535))
    return 'targetPayloadMax must be an integer 0..65535 (bytes per reply) when given';
  for (const k of ['reasons', 'counters']) {
    const v = o[k];
    if (typeof v !== 'object' || v === null || Object.values(v).some((x) => typeof x !== 'string'))
      return `${k} must be an object of name -> one-line meaning`;
  }
  for (const k of ['startSession', 'frameClient', 'onClientMessage', 'onTargetBytes'])
    if (typeof o[k] !== 'function') return `${k} must be a function`;
  for (const k of ['onOnlineBytes', 'endSession', 'comparableReply'])
    if (o[k] !== undefined && typeof o[k] !== 'function') return `${k} must be a function when given`;
  return null;
}

/** The factory a user's module file exports (`createModule`, also under `default`). */
function userFactory(spec: string, cwd: string): ModuleFactory {
  const file = path.resolve(cwd, spec);
  if (!fs.existsSync(file)) throw moduleError(spec, `no such file (${file})`);
  let exp: unknown;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    exp = require(file);
  } catch (e) {
    throw moduleError(spec, `cannot load ${file}: ${(e as Error).message}`);
  }
  const o = exp as { createModule?: unknown; default?: { createModule?: unknown } } | null;
  const f = o?.createModule ?? o?.default?.createModule;
  if (typeof f !== 'function')
    throw moduleError(spec, 'the file does not export createModule (module.exports = { createModule })');
  return f as ModuleFactory;
}

/**
 * The module `choice` names, created with its options; null without --module. Throws
 * ERR_MODULE (naming the module or the option) when it cannot be had.
 */
export function loadModule(
  choice: ModuleChoice | null,
  read: ReadText = readUtf8,
  cwd = process.cwd(),
): ProtocolModule | null {
  if (choice === null) return null;
  const spec = choice.spec;
  let factory: ModuleFactory;
  const opts: Record<string, readonly string[]> = { ...choice.options };
  if (choice.builtin) {
    const d = builtinDefinition(spec);
    for (const o of d.options) {
      const files = opts[o.name];
      if (o.readsFile !== true || files === undefined) continue;
      opts[o.name] = files.map((f) => {
        try {
          return read(f);
        } catch (e) {
          throw new TcpcopyError('ERR_MODULE', `--${o.name} ${f}: cannot read the file (${(e as Error).message})`, {
            option: `--${o.name}`,
            value: f,
          });
        }
      });
    }
    factory = d.createModule;
  } else factory = userFactory(spec, cwd);
  let m: unknown;
  try {
    const frozen: ModuleOptions = Object.freeze(opts);
    m = factory(frozen);
  } catch (e) {
    throw moduleError(spec, (e as Error).message);
  }
  const bad = moduleShapeError(m);
  if (bad !== null) throw moduleError(spec, `not a protocol module: ${bad} (see doc/modules.md)`);
  return m as ProtocolModule;
}
