/**
 * The one logger the edges write through (the core logs nothing): text or JSON lines to the
 * -l file (appended) or to stderr. An adapter like the other files in src/io/.
 */
import * as fs from 'node:fs';
import { TcpcopyError } from '../core/errors';

/** Log levels, least to most severe. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** The one logger the edges write through (the core logs nothing). */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** Flushes and closes the log file, if any. */
  close(): void;
}

export interface LoggerOptions {
  /** Program name put on each line. */
  name: string;
  /** Log file (-l); stderr when absent. */
  file?: string | undefined;
  /** Lowest level written; default 'info'. */
  level?: LogLevel;
  /** 'text' (default) or 'json' (one object per line: time, level, name, msg, fields). */
  format?: 'text' | 'json';
}

/**
 * Opens the -l file for appending and returns its descriptor. Throws TcpcopyError ERR_LOG_FILE
 * naming the file, the reason and the fix (a missing directory, no permission, a directory).
 */
export function openLogFile(file: string): number {
  try {
    return fs.openSync(file, 'a');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code !== undefined ? `${err.code}: ${err.message.replace(/^[A-Z]+: /, '')}` : String(e);
    throw new TcpcopyError('ERR_LOG_FILE', `-l ${file}: cannot open the log file (${why}); fix: pick a writable path`, {
      option: '-l',
      value: file,
    });
  }
}

/** Creates the logger: lines go to the -l file (appended) or to stderr. Throws ERR_LOG_FILE (see openLogFile). */
export function createLogger(opts: LoggerOptions): Logger {
  const min = RANK[opts.level ?? 'info'];
  const json = opts.format === 'json';
  let fd = 2;
  if (opts.file !== undefined) fd = openLogFile(opts.file);
  const write = (level: LogLevel, msg: string, fields?: Record<string, unknown>): void => {
    if (RANK[level] < min) return;
    const time = new Date().toISOString();
    let line: string;
    if (json) {
      line = JSON.stringify({ time, level, name: opts.name, msg, ...(fields ?? {}) });
    } else {
      const extra =
        fields !== undefined && Object.keys(fields).length > 0
          ? ' ' +
            Object.entries(fields)
              .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
              .join(' ')
          : '';
      line = `${time} ${opts.name} ${level}: ${msg}${extra}`;
    }
    try {
      fs.writeSync(fd, line + '\n');
    } catch {
      // a full disk or a closed stderr must not stop the replay
    }
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    close: () => {
      if (fd !== 2) {
        try {
          fs.closeSync(fd);
        } catch {
          /* already closed */
        }
        fd = 2;
      }
    },
  };
}
