/**
 * `tcpcopy compare-report DIR`: renders DIR/report.html again from the summary.json and
 * diffs.jsonl a `--compare-out DIR` replay wrote (after a change of the report's code, or
 * from files copied off the replay host), and prints the comparison's text section.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT } from '../core/errors';
import { rerender } from '../compare/out-files';
import { compareReportText } from '../compare/report-text';
import type { CompareSummary } from '../compare/summary';

const USAGE = 'usage: tcpcopy compare-report DIR   (DIR: a --compare-out directory with summary.json and diffs.jsonl)';

/** Runs the subcommand; returns the exit status (2: usage, 1: DIR unreadable or not a comparison's). */
export function runCompareReport(argv: readonly string[], out: NodeJS.WritableStream): number {
  if (argv.includes('-h') || argv.includes('--help')) {
    out.write(`${USAGE}\n`);
    return EXIT.OK;
  }
  const dir = argv[0];
  if (argv.length !== 1 || dir === undefined || dir.startsWith('-')) {
    out.write(`tcpcopy compare-report: expected one directory\n${USAGE}\n`);
    return EXIT.USAGE;
  }
  let path: string;
  let summary: CompareSummary;
  try {
    path = rerender(dir);
    summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as CompareSummary;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why =
      err.code === 'ENOENT' ? `${join(dir, 'summary.json')} not found (not a --compare-out directory?)` : err.message;
    out.write(`tcpcopy compare-report: ${why}\n`);
    return EXIT.FAILURE;
  }
  out.write(`${compareReportText(summary)}\nwrote ${path}\n`);
  return EXIT.OK;
}
