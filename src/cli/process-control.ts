import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { TcpcopyError } from '../core/errors';

/** Env marker set on the re-spawned background process. */
const DAEMON_ENV = 'TCPCOPY_DAEMONIZED';

/**
 * -d: re-runs this program detached in the background (output to the -l file, or discarded)
 * and returns true in the parent, which should exit; returns false in the child.
 */
export function daemonize(logFile: string | null): boolean {
  if (process.env[DAEMON_ENV] === '1') return false;
  const out = logFile !== null ? fs.openSync(logFile, 'a') : 'ignore';
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, [DAEMON_ENV]: '1' },
  });
  child.unref();
  process.stdout.write(`started in the background, pid ${child.pid ?? '?'}\n`);
  return true;
}

/** -P: writes the pid file; removed again at exit. */
export function writePidFile(file: string): void {
  try {
    fs.writeFileSync(file, `${process.pid}\n`);
  } catch (e) {
    throw new TcpcopyError('ERR_PIDFILE', `-P ${file}: cannot write the pid file (${(e as Error).message})`, {
      option: '-P',
      value: file,
    });
  }
  process.on('exit', () => {
    try {
      if (fs.readFileSync(file, 'utf8').trim() === String(process.pid)) fs.unlinkSync(file);
    } catch {
      /* already gone */
    }
  });
}

/** The package version. */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(require.resolve('../../../package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** Prints a TcpcopyError as one line (code and message) and returns exit code 1; rethrows anything else. */
export function reportStartupError(prog: string, e: unknown): number {
  if (e instanceof TcpcopyError) {
    process.stderr.write(`${prog}: ${e.message} [${e.code}]\n`);
    return 1;
  }
  throw e;
}
