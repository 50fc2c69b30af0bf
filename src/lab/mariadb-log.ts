/**
 * The MariaDB general query log as the lab's ground truth: parsing it into records (one per
 * command the server received), telling the lab's own setup connections from the clients',
 * and comparing what the online server ran with what the target ran. Pure: no I/O; parsing
 * never throws.
 *
 * The file format (sql/log.cc, `MYSQL_QUERY_LOG::write`): a header of three lines, then one
 * record per command, `[YYMMDD HH:MM:SS]\t<id right-aligned> <Command>\t<argument>`; the
 * timestamp is written only on the first record of each second, and an argument with
 * newlines (a multi-line query) continues on the next lines as they are.
 */

/** One command as the server logged it. */
export interface GeneralLogRecord {
  /** The server's connection (thread) id. */
  thread: number;
  /** Command name as logged: Connect, Query, Prepare, Execute, Close stmt, Reset stmt, Init DB, Change user, Quit... */
  command: string;
  /** Its argument: the statement text (Execute: with the parameters filled in), `user@host on db using TCP/IP` for Connect. */
  argument: string;
}

/** Result of parsing a whole log. */
export interface ParsedGeneralLog {
  /** Records in file order. */
  records: GeneralLogRecord[];
  /** Lines before the first record that are not the header (count): 0 for a sound log. */
  badLines: number;
}

const RECORD_RE = /^(?:\d{6}\s+\d{1,2}:\d{2}:\d{2})?\t\s*(\d+) ([A-Za-z][A-Za-z_ ]*?)\t(.*)$/;
const HEADER_RE = /^(?:\S+, Version: .*started with:|Tcp port: .*|Time\s+Id Command\s+Argument)$/;

/** Parses a general query log (the server may restart: its header lines may recur). */
export function parseGeneralLog(text: string): ParsedGeneralLog {
  const records: GeneralLogRecord[] = [];
  let badLines = 0;
  let cur: GeneralLogRecord | null = null;
  const lines = text.split('\n');
  // a file being written ends mid-line or with '\n': the last piece is partial or empty
  if (lines.length > 0) lines.pop();
  for (const line of lines) {
    const m = RECORD_RE.exec(line);
    if (m !== null) {
      cur = { thread: Number(m[1]), command: m[2] ?? '', argument: m[3] ?? '' };
      records.push(cur);
    } else if (HEADER_RE.test(line)) {
      cur = null;
    } else if (cur !== null) {
      cur.argument += `\n${line}`;
    } else if (line.trim() !== '') {
      badLines++;
    }
  }
  return { records, badLines };
}

/** The commands that run SQL: what "statements" means in the lab's counts. */
export const STATEMENT_COMMANDS: readonly string[] = ['Query', 'Prepare', 'Execute'];

/**
 * Connection ids of the lab's own connections: those made over the Unix socket (the lab sets
 * servers up and prepares sysbench tables through it; clients and replays always use TCP).
 */
export function labThreads(records: readonly GeneralLogRecord[]): Set<number> {
  const out = new Set<number>();
  for (const r of records) if (r.command === 'Connect' && / using Socket$/.test(r.argument)) out.add(r.thread);
  return out;
}

/** Records of client connections (every connection but the lab's own), from record index `from`. */
export function clientRecords(records: readonly GeneralLogRecord[], from = 0): GeneralLogRecord[] {
  const lab = labThreads(records);
  return records.slice(from).filter((r) => !lab.has(r.thread));
}

/** Records per command, e.g. { Query: 120, Prepare: 9, Execute: 300, Connect: 3 }. */
export function countByCommand(records: readonly GeneralLogRecord[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) out[r.command] = (out[r.command] ?? 0) + 1;
  return out;
}

/** Statements only (Query, Prepare, Execute). */
export function statements(records: readonly GeneralLogRecord[]): GeneralLogRecord[] {
  return records.filter((r) => STATEMENT_COMMANDS.includes(r.command));
}

/** How much of what one server ran another ran too. */
export interface StatementComparison {
  /** Statements of the first log (online). */
  online: number;
  /** Statements of the second log (target). */
  target: number;
  /** Online statements found in the target's log (each target statement matches at most one). */
  matched: number;
  /** matched / online (1 when online is 0). */
  ratio: number;
  /** Per command: online count, matched count. */
  byCommand: Record<string, { online: number; matched: number }>;
  /** Up to 10 online statements the target did not run (command and text, cut to 200 characters). */
  missingSample: string[];
  /** Target statements beyond the matched ones (ran on the target, not on online). */
  extra: number;
}

/**
 * Compares two logs' statements as multisets of (command, text): connection ids differ between
 * the servers, the statements' texts do not (a replay sends the same bytes; Execute is logged
 * with its parameters filled in).
 */
export function compareStatements(
  online: readonly GeneralLogRecord[],
  target: readonly GeneralLogRecord[],
): StatementComparison {
  const key = (r: GeneralLogRecord): string => `${r.command}\t${r.argument}`;
  const pool = new Map<string, number>();
  const tg = statements(target);
  for (const r of tg) pool.set(key(r), (pool.get(key(r)) ?? 0) + 1);
  const on = statements(online);
  const byCommand: Record<string, { online: number; matched: number }> = {};
  const missingSample: string[] = [];
  let matched = 0;
  for (const r of on) {
    const c = byCommand[r.command] ?? { online: 0, matched: 0 };
    byCommand[r.command] = c;
    c.online++;
    const k = key(r);
    const n = pool.get(k) ?? 0;
    if (n > 0) {
      pool.set(k, n - 1);
      matched++;
      c.matched++;
    } else if (missingSample.length < 10) {
      missingSample.push(`${r.command}: ${r.argument.slice(0, 200)}`);
    }
  }
  return {
    online: on.length,
    target: tg.length,
    matched,
    ratio: on.length === 0 ? 1 : matched / on.length,
    byCommand,
    missingSample,
    extra: tg.length - matched,
  };
}

/** One line for a test's output: `online N, target M, matched K (R%), per command ...`. */
export function comparisonLine(c: StatementComparison): string {
  const per = Object.entries(c.byCommand)
    .map(([k, v]) => `${k} ${v.matched}/${v.online}`)
    .join(', ');
  return `online ${c.online} statements, target ${c.target}, matched ${c.matched} (${(c.ratio * 100).toFixed(3)}%), extra ${c.extra}; ${per || 'none'}`;
}
