import { performance } from 'node:perf_hooks';
import type { Clock, TimerHandle } from './types';

/** Wall-clock milliseconds (fractional); the one clock the runner gives the engine. */
export function clock(): number {
  return performance.timeOrigin + performance.now();
}

/** The real Clock: {@link clock} and Node's timers. */
export const SYSTEM_CLOCK: Clock = {
  now: clock,
  setTimeout(fn: () => void, ms: number, unref = false): TimerHandle {
    const t = setTimeout(fn, ms);
    if (unref) t.unref();
    return t;
  },
  clearTimeout(h: TimerHandle): void {
    clearTimeout(h as NodeJS.Timeout);
  },
  setImmediate(fn: () => void): void {
    setImmediate(fn);
  },
};
