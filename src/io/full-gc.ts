/**
 * A full garbage collection on demand, for the memory governor (src/run/memory-governor.ts).
 * node's `gc` exists only with `--expose-gc` on its command line, and tcpcopy is started as
 * `node tcpcopy-main.js` as often as through its bin; the flag set at run time makes `gc`
 * appear in contexts created after it, so one such context lends its `gc`.
 *
 * The collection also compacts every fragmented page (`--compact-on-every-full-gc`, set for
 * that one collection; V8 reads it at each full GC): sessions that live for seconds end up
 * scattered over pages full of garbage, and a plain full collection frees the garbage but keeps
 * the pages (measured: 1M small objects, every 20th kept: heap 168 MiB after a plain collection,
 * 42 MiB after a compacting one; resident 213 and 92 MiB).
 */
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

/** A function that runs a full, compacting collection of this process's heap. */
export function fullCollector(): () => void {
  const own = (globalThis as { gc?: unknown }).gc;
  let gc: unknown = own;
  if (typeof gc !== 'function') {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as unknown;
    v8.setFlagsFromString('--no-expose-gc');
  }
  if (typeof gc !== 'function') throw new Error('this node cannot expose gc');
  const collect = gc as () => void;
  return () => {
    v8.setFlagsFromString('--compact-on-every-full-gc');
    try {
      collect();
    } finally {
      v8.setFlagsFromString('--no-compact-on-every-full-gc');
    }
  };
}
