/**
 * Long-running processes of the lab (servers, tcpdump, tcpcopy, intercept...): spawned in a
 * namespace with `ip netns exec` (which execs, so the child's pid is the program's pid),
 * tracked by pid, stopped by pid only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, createWriteStream, openSync, type WriteStream } from 'node:fs';
import { TcpcopyError } from '../core/errors';
import { pidAlive, sleepUnref } from './sh';

/** Options of Lab.spawn. */
export interface SpawnOptions {
  /** Extra environment variables for the child. */
  env?: Record<string, string>;
  /** Working directory. Default: the lab directory. */
  cwd?: string;
  /** Keep at most this many characters of stdout and of stderr in memory (the tail). Default 1 MiB. */
  maxText?: number;
  /** Also append stdout+stderr to this file (e.g. inside lab.dir). Default: none. */
  logFile?: string;
  /** Signal used by stop() first. Default SIGTERM. */
  stopSignal?: NodeJS.Signals;
  /** Milliseconds stop() waits after the first signal before SIGKILL. Default 3000. */
  graceMs?: number;
  /** Short label used in log messages. Default: argv[0]. */
  label?: string;
  /**
   * Let the process outlive this Node process (own process group, unref'd; used by
   * `lab-main up`). Its stdout/stderr go to `logFile` (default /dev/null) instead of memory,
   * so waitFor() cannot see them. Default false.
   */
  detached?: boolean;
}

/** How a process ended. */
export interface ProcessExit {
  /** Exit code, or null when killed by a signal. */
  code: number | null;
  /** Signal that ended it, or null. */
  signal: NodeJS.Signals | null;
}

/** A process spawned by the lab. */
export class LabProcess {
  /** Pid of the program (ip netns exec has exec'd into it). */
  readonly pid: number;
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<ProcessExit>;
  /** Label for messages. */
  readonly label: string;
  private out = '';
  private err = '';
  private exitInfo: ProcessExit | null = null;
  private readonly maxText: number;
  private readonly stopSignal: NodeJS.Signals;
  private readonly graceMs: number;
  private readonly log: WriteStream | null;
  private waiters: Array<() => void> = [];

  /** Spawns `ip netns exec <ns> argv...` (or argv directly when ns is null). */
  constructor(
    ns: string | null,
    readonly argv: readonly string[],
    opts: SpawnOptions = {},
  ) {
    const full = ns === null ? [...argv] : ['ip', 'netns', 'exec', ns, ...argv];
    const [cmd, ...args] = full;
    if (cmd === undefined) throw new TcpcopyError('ERR_LAB_EXEC', 'spawn: empty argv');
    this.label = opts.label ?? argv[0] ?? 'process';
    this.maxText = opts.maxText ?? 1024 * 1024;
    this.stopSignal = opts.stopSignal ?? 'SIGTERM';
    this.graceMs = opts.graceMs ?? 3000;
    const detached = opts.detached ?? false;
    this.log = opts.logFile && !detached ? createWriteStream(opts.logFile, { flags: 'a' }) : null;
    const fd = detached ? openSync(opts.logFile ?? '/dev/null', 'a') : -1;
    const child: ChildProcess = spawn(cmd, args, {
      stdio: detached ? ['ignore', fd, fd] : ['ignore', 'pipe', 'pipe'],
      detached,
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
      ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    });
    if (detached) {
      closeSync(fd);
      child.unref();
    }
    if (child.pid === undefined) {
      throw new TcpcopyError('ERR_LAB_EXEC', `cannot spawn ${full.join(' ')}`, { argv: full });
    }
    this.pid = child.pid;
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (s: string) => {
      this.out = this.append(this.out, s);
    });
    child.stderr?.on('data', (s: string) => {
      this.err = this.append(this.err, s);
    });
    this.exited = new Promise((resolve) => {
      child.on('error', () => {
        /* reported through close */
      });
      child.on('close', (code, signal) => {
        this.exitInfo = { code, signal };
        this.log?.end();
        this.notify();
        resolve(this.exitInfo);
      });
    });
  }

  private append(buf: string, s: string): string {
    this.log?.write(s);
    let b = buf + s;
    if (b.length > this.maxText) b = b.slice(b.length - this.maxText);
    this.notify();
    return b;
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Collected stdout (the last `maxText` characters). */
  get stdout(): string {
    return this.out;
  }
  /** Collected stderr (the last `maxText` characters). */
  get stderr(): string {
    return this.err;
  }
  /** Exit info once exited, else null. */
  get exit(): ProcessExit | null {
    return this.exitInfo;
  }
  /** True until the process has exited. */
  get running(): boolean {
    return this.exitInfo === null;
  }

  /**
   * Resolves when `pattern` appears in stdout or stderr. Rejects with ERR_LAB_START when the
   * process exits first or `timeoutMs` (default 10000) passes.
   */
  async waitFor(pattern: RegExp, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (pattern.test(this.out) || pattern.test(this.err)) return;
      if (this.exitInfo) throw this.startError(`exited (${JSON.stringify(this.exitInfo)}) before printing ${pattern}`);
      const left = deadline - Date.now();
      if (left <= 0) throw this.startError(`did not print ${pattern} within ${timeoutMs} ms`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** An ERR_LAB_START error carrying the output tail. */
  startError(what: string): TcpcopyError {
    return new TcpcopyError(
      'ERR_LAB_START',
      `${this.label} (pid ${this.pid}) ${what}; stderr: ${this.err.slice(-2000).trim()}`,
      {
        argv: [...this.argv],
        stdout: this.out.slice(-2000),
        stderr: this.err.slice(-2000),
      },
    );
  }

  /** Sends a signal to the pid (no-op when it has exited). */
  signal(sig: NodeJS.Signals): void {
    if (this.exitInfo) return;
    try {
      process.kill(this.pid, sig);
    } catch {
      /* gone */
    }
  }

  /**
   * Stops the process: `stopSignal` (default SIGTERM), then SIGKILL after `graceMs`.
   * Resolves with the exit info; never throws.
   */
  async stop(signal: NodeJS.Signals = this.stopSignal, graceMs = this.graceMs): Promise<ProcessExit> {
    if (this.exitInfo) return this.exitInfo;
    this.signal(signal);
    const t = sleepUnref(graceMs).then(() => 'timeout' as const);
    if ((await Promise.race([this.exited, t])) === 'timeout') {
      this.signal('SIGKILL');
      const t2 = sleepUnref(2000).then(() => 'timeout' as const);
      if ((await Promise.race([this.exited, t2])) === 'timeout' && !pidAlive(this.pid)) {
        return { code: null, signal: 'SIGKILL' };
      }
    }
    return this.exited;
  }
}
