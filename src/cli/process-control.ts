import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { openLogFile } from '../io/logger';
import { exitCodeFor, type ExitCode, TcpcopyError } from '../core/errors';

/** Env marker set on the re-spawned background process. */
const DAEMON_ENV = 'TCPCOPY_DAEMONIZED';

/**
 * -d: re-runs this program detached in the background (output to the -l file, or discarded)
 * and returns true in the parent, which should exit; returns false in the child.
 */
export function daemonize(logFile: string | null): boolean {
  if (process.env[DAEMON_ENV] === '1') return false;
  const out = logFile !== null ? openLogFile(logFile) : 'ignore';
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
    throw new TcpcopyError('ERR_PID_FILE', `-P ${file}: cannot write the pid file (${(e as Error).message})`, {
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

/** --nice: sets this process's scheduling niceness; throws ERR_PRIORITY (e.g. a negative value without root). */
export function setNice(nice: number): void {
  try {
    os.setPriority(nice);
  } catch (e) {
    throw new TcpcopyError(
      'ERR_PRIORITY',
      `--nice ${nice}: cannot set the scheduling priority (${(e as Error).message}); fix: run as root for a negative niceness, or use 0..19`,
      { option: '--nice', value: nice },
    );
  }
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

/**
 * Prints an error that stopped a program at start-up as one line, `PROG: message [ERR_CODE]`,
 * and returns its exit status (EXIT.USAGE for a wrong command line, else EXIT.FAILURE). An
 * unexpected error (a bug) is printed with its stack and gets EXIT.FAILURE.
 */
export function reportStartupError(prog: string, e: unknown, err: NodeJS.WritableStream = process.stderr): ExitCode {
  if (e instanceof TcpcopyError) err.write(`${prog}: ${e.message} [${e.code}]\n`);
  else err.write(`${prog}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return exitCodeFor(e);
}
