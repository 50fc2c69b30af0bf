/**
 * A bound on V8's young generation for the CLIs (issue 18, item 13). Under a high packet rate
 * V8 doubles the new space at scavenges up to 2 x 16 MiB semi-spaces (Node 20 on 64 bit): 32
 * MiB that stay resident, a fifth of tcpcopy's RSS at 40k requests/s. `--max-semi-space-size`
 * would bound it but only works on node's command line (set at run time it does nothing: the
 * heap is configured when the isolate starts), and tcpcopy is started as `node tcpcopy-main.js`
 * as often as through its bin. The growth factor, though, is read at every scavenge, so a
 * watcher lets the new space grow (factor 2) while it is below the bound and stops it
 * (factor 1) once it reaches it, checked after every scavenge (a `gc` performance observer,
 * called at the next event-loop turn): with a power-of-two bound the new space stops at it.
 * An explicit `--max-semi-space-size` or `--semi-space-growth-factor` on node's command line
 * wins (then nothing is done), which is also how a comparison runs V8's default.
 */
import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';
import * as v8 from 'node:v8';

/** Default bound of the new space (both semi-spaces), MiB: 8 (4 MiB semi-spaces; V8's own is 32). */
export const YOUNG_GEN_MB = 8;

/** The new space's current size (both semi-spaces), bytes. */
export function newSpaceBytes(): number {
  return v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')?.space_size ?? 0;
}

/**
 * Starts the watcher (a performance observer of scavenges; it never keeps the process alive) unless node's
 * command line already sets the young generation; returns a function that stops it, or null
 * when nothing was done. `mb` <= 0 disables it.
 */
export function boundYoungGeneration(mb = YOUNG_GEN_MB, execArgv = process.execArgv): (() => void) | null {
  if (!(mb > 0) || execArgv.some((a) => /^--(max-semi-space-size|semi-space-growth-factor)\b/.test(a))) return null;
  const cap = mb * 1048576;
  let frozen = false;
  const check = (): void => {
    const want = newSpaceBytes() >= cap;
    if (want !== frozen) {
      frozen = want;
      v8.setFlagsFromString(`--semi-space-growth-factor=${frozen ? 1 : 2}`);
    }
  };
  check();
  const obs = new PerformanceObserver((list) => {
    if (
      list
        .getEntries()
        .some(
          (e) =>
            (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ===
            constants.NODE_PERFORMANCE_GC_MINOR,
        )
    )
      check();
  });
  obs.observe({ entryTypes: ['gc'] });
  return () => {
    obs.disconnect();
    if (frozen) v8.setFlagsFromString('--semi-space-growth-factor=2');
  };
}
