/**
 * `--compare-out DIR`: diffs.jsonl (one line per differing exchange, written as they come),
 * summary.json and report.html at the end. `tcpcopy compare-report DIR` renders report.html
 * again from summary.json and diffs.jsonl. An I/O edge: the comparison itself writes nothing.
 */
import { createWriteStream, mkdirSync, readFileSync, writeFileSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { renderHtml } from './report-html';
import type { CompareSummary, DiffLine } from './summary';

/** Most diff lines read back for the HTML report's examples. */
const HTML_LINES = 200;

export class CompareOut {
  private readonly diffs: WriteStream;
  private readonly firstLines: DiffLine[] = [];

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.diffs = createWriteStream(join(dir, 'diffs.jsonl'));
  }

  /** The DiffSink: appends one line. */
  readonly line = (l: DiffLine): void => {
    if (this.firstLines.length < HTML_LINES) this.firstLines.push(l);
    this.diffs.write(`${JSON.stringify(l)}\n`);
  };

  /** Writes summary.json and report.html, and closes diffs.jsonl. */
  async finish(s: CompareSummary): Promise<void> {
    await new Promise<void>((resolve, reject) => this.diffs.end((e?: Error | null) => (e ? reject(e) : resolve())));
    writeFileSync(join(this.dir, 'summary.json'), `${JSON.stringify(s, null, 1)}\n`);
    writeFileSync(join(this.dir, 'report.html'), renderHtml(s, this.firstLines));
  }
}

/** Reads DIR/summary.json and the first lines of DIR/diffs.jsonl, writes DIR/report.html; returns its path. */
export function rerender(dir: string): string {
  const s = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as CompareSummary;
  if (s.version !== 1) throw new Error(`${dir}/summary.json: version ${String(s.version)}, expected 1`);
  let lines: DiffLine[] = [];
  try {
    lines = readFileSync(join(dir, 'diffs.jsonl'), 'utf8')
      .split('\n')
      .filter((x) => x !== '')
      .slice(0, HTML_LINES)
      .map((x) => JSON.parse(x) as DiffLine);
  } catch {
    lines = [];
  }
  const p = join(dir, 'report.html');
  writeFileSync(p, renderHtml(s, lines));
  return p;
}
