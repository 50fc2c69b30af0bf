import * as fs from 'node:fs';
import * as path from 'node:path';
import { TcpcopyError } from '../core/errors';

/**
 * `--report json:FILE`: checked when the replay starts (so a wrong path fails at once, not
 * after the whole replay), written at the end through a temporary file and a rename (so a
 * reader never sees half a report and a failed write leaves an earlier report intact).
 */

function reportError(file: string, why: string): TcpcopyError {
  return new TcpcopyError(
    'ERR_REPORT_FILE',
    `--report json:${file}: cannot write the report there (${why}); fix: give a file in an existing, writable directory`,
    { option: '--report', file },
  );
}

/** Throws ERR_REPORT_FILE (naming --report) when `file` cannot be written: missing or read-only directory, a directory in its place. */
export function checkReportFile(file: string): void {
  const dir = path.dirname(path.resolve(file));
  try {
    if (!fs.statSync(dir).isDirectory()) throw reportError(file, `${dir} is not a directory`);
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (e) {
    if (e instanceof TcpcopyError) throw e;
    throw reportError(file, (e as NodeJS.ErrnoException).code ?? (e as Error).message);
  }
  let st: fs.Stats | null = null;
  try {
    st = fs.statSync(file);
  } catch {
    return; // does not exist yet: fine
  }
  if (st.isDirectory()) throw reportError(file, 'it is a directory');
}

/** Writes `text` to `file` through `file.PID.tmp` and a rename; throws ERR_REPORT_FILE on failure (the temporary file removed). */
export function writeReportFile(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  } catch (e) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      // nothing written
    }
    throw reportError(file, (e as NodeJS.ErrnoException).code ?? (e as Error).message);
  }
}
