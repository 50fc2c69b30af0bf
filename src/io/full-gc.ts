/**
 * A full garbage collection on demand, for the memory governor (src/run/memory-governor.ts).
 * node's `gc` exists only with `--expose-gc` on its command line, and tcpcopy is started as
 * `node tcpcopy-main.js` as often as through its bin; the flag set at run time makes `gc`
 * appear in contexts created after it, so one such context lends its `gc`.
 */
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

/** A function that runs a full (mark-compact) collection of this process's heap. */
export function fullCollector(): () => void {
  const own = (globalThis as { gc?: unknown }).gc;
  if (typeof own === 'function') return own as () => void;
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as unknown;
  v8.setFlagsFromString('--no-expose-gc');
  if (typeof gc !== 'function') throw new Error('this node cannot expose gc');
  return gc as () => void;
}
