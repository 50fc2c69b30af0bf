/**
 * A bound on how far V8 lets the old generation grow between full collections (issue 18, item
 * 13). After each full (mark-compact) collection V8 sets the next one's trigger at the live
 * heap times a growing factor that it picks between 1.1 and 4 from its GC speed and the
 * mutator's utilization: a busy tcpcopy (high allocation rate, cheap collections) gets close
 * to 4. Measured in the lab at 7k short connections/s: a full collection at 5.5 s left 42.8 MB
 * live, and the next came only at the end of the run, with the heap at 130 MB: tcpcopy's peak
 * resident set was 210 MiB, most of it garbage. `--heap-growing-percent=N` fixes the factor at
 * 1 + N/100; V8 reads it at every full collection, so unlike `--max-old-space-size` it works
 * when set at run time (tcpcopy is started as `node tcpcopy-main.js` as often as through its
 * bin). An explicit `--heap-growing-percent` on node's command line wins (then nothing is
 * done), which is also how a comparison runs V8's default.
 */
import * as v8 from 'node:v8';

/**
 * Default growth of the old generation between full collections, % of the live heap: 50 (the
 * next full collection when the old generation reaches 1.5 x what the last one kept; V8's own
 * factor is 1.1 to 4, up to 4 under load).
 */
export const HEAP_GROWING_PERCENT = 50;

/**
 * Sets V8's heap growing factor to 1 + `percent`/100 unless node's command line already sets
 * it; returns whether it did. `percent` <= 0 leaves V8's dynamic factor.
 */
export function boundHeapGrowth(percent = HEAP_GROWING_PERCENT, execArgv = process.execArgv): boolean {
  if (!(percent > 0) || execArgv.some((a) => /^--heap[-_]growing[-_]percent\b/.test(a))) return false;
  v8.setFlagsFromString(`--heap-growing-percent=${Math.round(percent)}`);
  return true;
}
