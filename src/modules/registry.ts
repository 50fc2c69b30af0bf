/**
 * The built-in protocol modules: name -> `src/modules/<name>/index` exporting
 * `definition: ModuleDefinition`, required lazily (a replay without `--module` loads none,
 * and a build without one of them still runs). A user's own module is a file path instead
 * (`--module ./my-module.js`, loaded by the runner: src/run/module-load.ts).
 */
import { TcpcopyError } from '../core/errors';
import type { ModuleDefinition } from './api';

/** The built-in module names, in help order. */
export const BUILTIN_MODULES: readonly string[] = Object.freeze(['mysql', 'postgres', 'redis']);

/** Whether `name` is a built-in module's name. */
export function isBuiltinModule(name: string): boolean {
  return BUILTIN_MODULES.includes(name);
}

/** Whether a `--module` value names a file (it has a slash, or a .js/.cjs/.mjs ending) rather than a built-in. */
export function isModulePath(spec: string): boolean {
  return spec.includes('/') || spec.includes('\\') || /\.(c|m)?js$/.test(spec);
}

const loaded = new Map<string, ModuleDefinition | string>();

/**
 * The definition of built-in module `name`, or the reason it cannot be had (not in this build,
 * or its index does not export a valid `definition`).
 */
function tryDefinition(name: string): ModuleDefinition | string {
  const hit = loaded.get(name);
  if (hit !== undefined) return hit;
  let r: ModuleDefinition | string;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const m = require(`./${name}/index`) as { definition?: unknown };
    const d = m.definition as Partial<ModuleDefinition> | undefined;
    if (d === undefined || typeof d.createModule !== 'function' || !Array.isArray(d.options))
      r = `src/modules/${name}/index does not export a valid \`definition\` (name, summary, options, createModule)`;
    else r = d as ModuleDefinition;
  } catch (e) {
    const code = (e as { code?: string }).code;
    r =
      code === 'MODULE_NOT_FOUND' && String((e as Error).message).includes(`${name}/index`)
        ? `the built-in module '${name}' is not in this build (src/modules/${name}/index is missing)`
        : `the built-in module '${name}' failed to load: ${(e as Error).message}`;
  }
  loaded.set(name, r);
  return r;
}

/** The definition of built-in module `name`; throws ERR_MODULE saying why it is not available. */
export function builtinDefinition(name: string): ModuleDefinition {
  const d = tryDefinition(name);
  if (typeof d === 'string') throw new TcpcopyError('ERR_MODULE', `--module ${name}: ${d}`, { module: name });
  return d;
}

/** The built-in modules present in this build (their options go into tcpcopy's option table). */
export function availableDefinitions(): ModuleDefinition[] {
  const out: ModuleDefinition[] = [];
  for (const n of BUILTIN_MODULES) {
    const d = tryDefinition(n);
    if (typeof d !== 'string') out.push(d);
  }
  return out;
}
