/**
 * The lab layout of the online-latency tests. On a machine with two CPUs or more, the online
 * nginx gets CPU 0 to itself (a production host has cores to spare for tcpcopy); clients,
 * target, assistant and tcpcopy share CPU 1, with the target's and the assistant's receive
 * processing steered there too (RPS: on veth the receiver's stack otherwise runs inside the
 * sender's send call), as if they were other machines. So the comparison measures what copying
 * costs the online server (capture tap in its receive path, cache and interrupt effects), not
 * the lab's other processes taking its CPU. Measured alternatives, generator p99 with vs
 * without: nothing pinned +22% to +111%; tcpcopy on CPU 0 with nginx +77% (+69% at --nice 19).
 */
import { execFileSync } from 'node:child_process';
import * as os from 'node:os';
import { withLab, type Lab } from '../src/lab/lab';
import type { NginxOptions, NginxServer } from '../src/lab/servers';
import { startIntercept } from '../test/e2e/replay-helpers';

/** Pins this process's main thread (so every child spawned from now on) to `cpus`. */
function pinSelf(cpus: string): void {
  execFileSync('taskset', ['-p', '-c', cpus, String(process.pid)], { stdio: 'ignore' });
}

/**
 * Builds a lab with prefix `prefix`, the online nginx (`online` options) pinned as above, the
 * target nginx on 8080 and intercept, runs `fn`, and removes the lab and the pinning even when
 * `fn` fails.
 */
export async function withLatencyLab<T>(
  prefix: string,
  online: NginxOptions,
  fn: (lab: Lab, online: NginxServer, target: NginxServer) => Promise<T>,
): Promise<T> {
  const pinned = os.cpus().length >= 2;
  try {
    return await withLab({ prefix, clientAddresses: 20 }, async (lab) => {
      if (pinned) pinSelf('0');
      const on = await lab.startNginx('online', online);
      if (pinned) {
        pinSelf('1');
        for (const h of ['target', 'assistant'] as const) {
          await lab.exec(h, ['sh', '-c', `echo 2 > /sys/class/net/${lab.hosts[h].dev}/queues/rx-0/rps_cpus`]);
        }
      }
      const target = await lab.startNginx('target', { port: 8080 });
      await startIntercept(lab);
      return fn(lab, on, target);
    });
  } finally {
    if (pinned) pinSelf(`0-${os.cpus().length - 1}`);
  }
}

/** A diagnostic line in the test output. */
export function say(line: string): void {
  process.stdout.write(`# ${line}\n`);
}

/** Latency arrays joined and sorted ascending (for percentiles over several runs). */
export function pooled(parts: readonly Float64Array[]): Float64Array {
  const all = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  return all.sort();
}
