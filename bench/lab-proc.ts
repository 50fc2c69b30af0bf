/**
 * Process figures the lab benchmark reads from /proc: CPU time in nanoseconds (the sum of
 * every thread's /proc/PID/task/TID/schedstat run time, exact, unlike the 10 ms ticks of
 * /proc/PID/stat) and peak RSS.
 */
import * as fs from 'node:fs';

/** CPU nanoseconds a process's live threads have run so far; NaN when it is gone. */
export function cpuNsOf(pid: number): number {
  let sum = 0;
  let tasks: string[];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return NaN;
  }
  for (const t of tasks) {
    try {
      sum += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // the thread ended between readdir and read: its time is lost, which the caller's
      // before/after difference tolerates (V8's threads live as long as the process)
    }
  }
  return sum;
}

/** Peak resident set (VmHWM) in MiB; NaN when the process is gone. */
export function peakRssMB(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Aggregate CPU tick counters of the machine (/proc/stat "cpu" line): total and steal. */
export function cpuTicks(): { total: number; steal: number } {
  try {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    return { total: v.slice(0, 8).reduce((a, b) => a + b, 0), steal: v[7] ?? 0 };
  } catch {
    return { total: NaN, steal: NaN };
  }
}

/** Steal time (the hypervisor running something else on our vCPUs) between two readings, % of all CPU time. */
export function stealPct(a: { total: number; steal: number }, b: { total: number; steal: number }): number {
  const t = b.total - a.total;
  return t > 0 ? (100 * (b.steal - a.steal)) / t : NaN;
}

/**
 * Waits until the hypervisor's steal time over a 2 s sample is at most `maxPct` (%), or
 * `timeoutMs` passed; returns the last sample. Lets a comparison measure when the VM is quiet.
 */
export async function waitQuiet(maxPct: number, timeoutMs: number): Promise<number> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const a = cpuTicks();
    await new Promise((r) => setTimeout(r, 2000));
    const pct = stealPct(a, cpuTicks());
    if (pct <= maxPct || Date.now() >= until) return pct;
  }
}
