/**
 * A full garbage collection on demand, for the memory governor (src/run/memory-governor.ts).
 * node's `gc` exists only with `--expose-gc` on its command line, and tcpcopy is started as
 * `node tcpcopy-main.js` as often as through its bin; the flag set at run time makes `gc`
 * appear in contexts created after it, so one such context lends its `gc`.
 *
 * A fragmented heap is then compacted as well (`--compact-on-every-full-gc`, set for that one
 * collection; V8 reads it at each full GC): sessions that live for seconds end up scattered over
 * pages full of garbage, and a plain full collection frees the garbage but keeps the pages
 * (measured: 1M small objects, every 20th kept: heap 168 MiB after a plain collection, 42 MiB
 * after a compacting one; resident 213 and 92 MiB). But compaction copies every live object to
 * new pages before the old ones go, so for a moment it needs the live heap twice over: measured
 * with 60 MiB live on 92 MiB of pages, resident 140 -> 173 MiB during a compacting collection
 * (111 MiB after it), 140 -> 141 MiB with a plain one; under a memory budget that spike is the
 * peak (issue 18 item 13: 180-184 MiB with a 120 MiB budget). So the collection is plain, and
 * it compacts only when what compaction frees is more than twice what it copies (shouldCompact).
 */
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

/** A function that runs a full collection of this process's heap, compacting it when it is fragmented (shouldCompact). */
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
    collect();
    const h = v8.getHeapStatistics();
    if (!shouldCompact(h.total_heap_size, h.used_heap_size)) return;
    v8.setFlagsFromString('--compact-on-every-full-gc');
    try {
      collect();
    } finally {
      v8.setFlagsFromString('--no-compact-on-every-full-gc');
    }
  };
}

/**
 * Whether a compacting collection pays after a plain one left `usedBytes` live on `totalBytes`
 * of heap pages: it frees about the free part (total - used) and needs about `used` more for a
 * moment, so only when the free part is more than twice the live one.
 */
export function shouldCompact(totalBytes: number, usedBytes: number): boolean {
  return totalBytes - usedBytes > 2 * usedBytes;
}
