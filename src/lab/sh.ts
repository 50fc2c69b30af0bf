/**
 * Running short commands (ip, ethtool, sysctl, redis-cli...) with a time limit.
 * The child is killed by its own pid on timeout; nothing is killed by name.
 */
import { spawn } from 'node:child_process';
import { TcpcopyError } from '../core/errors';

/** Result of a finished command. */
export interface ExecResult {
  /** Exit code; 128+signal number when killed by a signal. */
  code: number;
  /** Everything written to stdout (utf8). */
  stdout: string;
  /** Everything written to stderr (utf8). */
  stderr: string;
}

/** Options of {@link run}. */
export interface RunOptions {
  /** Time limit in milliseconds; on expiry the child gets SIGKILL and the promise rejects. Default 30000. */
  timeoutMs?: number;
  /** Text written to the child's stdin (stdin is closed afterwards). Default: empty stdin. */
  input?: string;
  /** Cap on collected stdout/stderr, bytes each; extra output is dropped. Default 64 MiB. */
  maxBuffer?: number;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

const SIGNALS: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGKILL: 9,
  SIGTERM: 15,
  SIGPIPE: 13,
  SIGABRT: 6,
  SIGSEGV: 11,
};

/**
 * Runs `argv` and resolves its exit code and output. Rejects with ERR_LAB_TIMEOUT when the
 * time limit passes, ERR_LAB_EXEC when the program cannot be started (e.g. not installed).
 */
export function run(argv: readonly string[], opts: RunOptions = {}): Promise<ExecResult> {
  const [cmd, ...args] = argv;
  if (cmd === undefined) return Promise.reject(new TcpcopyError('ERR_LAB_EXEC', 'run: empty argv'));
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const maxBuffer = opts.maxBuffer ?? 64 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ? { ...process.env, ...opts.env } : process.env,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let settled = false;
    child.stdout.on('data', (b: Buffer) => {
      if (outLen < maxBuffer) {
        out.push(b);
        outLen += b.length;
      }
    });
    child.stderr.on('data', (b: Buffer) => {
      if (errLen < maxBuffer) {
        err.push(b);
        errLen += b.length;
      }
    });
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      if (child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      reject(
        new TcpcopyError('ERR_LAB_TIMEOUT', `command timed out after ${timeoutMs} ms: ${argv.join(' ')}`, {
          argv: [...argv],
          timeoutMs,
          stdout: Buffer.concat(out).toString('utf8').slice(-4000),
          stderr: Buffer.concat(err).toString('utf8').slice(-4000),
        }),
      );
    }, timeoutMs);
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(
        new TcpcopyError(
          'ERR_LAB_EXEC',
          `cannot run ${cmd}: ${e.message}${e.code === 'ENOENT' ? ' (is it installed? try scripts/ensure-system.sh)' : ''}`,
          { argv: [...argv], errno: e.code },
        ),
      );
    });
    child.on('close', (code, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({
        code: code ?? 128 + (signal ? (SIGNALS[signal] ?? 0) : 0),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    child.stdin.on('error', () => {
      /* child may exit before reading its input */
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Like {@link run} but rejects with ERR_LAB_COMMAND when the exit code is not 0. */
export async function runOk(argv: readonly string[], opts: RunOptions = {}): Promise<ExecResult> {
  const r = await run(argv, opts);
  if (r.code !== 0) {
    throw new TcpcopyError(
      'ERR_LAB_COMMAND',
      `command failed (exit ${r.code}): ${argv.join(' ')}: ${r.stderr.trim() || r.stdout.trim()}`,
      {
        argv: [...argv],
        code: r.code,
        stderr: r.stderr,
      },
    );
  }
  return r;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A sleep that does not keep the process alive (for grace periods raced against an exit). */
export function sleepUnref(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/** Is a process with this pid alive (signal 0 probe)? */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
