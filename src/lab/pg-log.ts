/**
 * PostgreSQL's csvlog (log_destination = 'csvlog', log_statement = 'all'): the ground truth of
 * the PostgreSQL replay tests. Each statement a client ran is one record whose message starts
 * with `statement: ` (simple query) or `execute NAME: ` (extended protocol; its parameters in
 * the detail field). Records of connections over the Unix socket (`[local]`: the lab's own
 * setup) are left out of the client counts.
 */

/** One csvlog record (the fields the tests use). */
export interface PgLogRecord {
  time: string;
  user: string;
  database: string;
  pid: number;
  /** `host:port` of a TCP client, `[local]` for the Unix socket, '' for background processes. */
  from: string;
  severity: string;
  message: string;
  detail: string;
}

/** Splits csvlog text into records (RFC 4180 quoting: fields may hold commas, quotes and newlines). */
export function parseCsvLog(text: string): PgLogRecord[] {
  const out: PgLogRecord[] = [];
  let fields: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          cur += '"';
          i++;
        } else quoted = false;
      } else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      fields.push(cur);
      cur = '';
    } else if (ch === '\n') {
      fields.push(cur);
      cur = '';
      if (fields.length >= 15) out.push(record(fields));
      fields = [];
    } else cur += ch;
  }
  return out;
}

function record(f: string[]): PgLogRecord {
  return {
    time: f[0] ?? '',
    user: f[1] ?? '',
    database: f[2] ?? '',
    pid: Number(f[3]),
    from: f[4] ?? '',
    severity: f[11] ?? '',
    message: f[13] ?? '',
    detail: f[14] ?? '',
  };
}

/** Statements run by TCP clients: `statement: ...` and `execute ...: ...` records, not the lab's own. */
export function clientStatements(recs: readonly PgLogRecord[]): PgLogRecord[] {
  return recs.filter(
    (r) =>
      r.from !== '' &&
      r.from !== '[local]' &&
      r.severity === 'LOG' &&
      (r.message.startsWith('statement: ') || /^execute [^:]*: /.test(r.message)),
  );
}

/** A statement's identity across servers: its text (prepared statements' names and parameters kept). */
export function statementKey(r: PgLogRecord): string {
  return r.detail === '' ? r.message : `${r.message} | ${r.detail}`;
}

/** Online statements matched by the target's (a multiset inclusion). */
export interface PgComparison {
  online: number;
  target: number;
  matched: number;
  /** matched / online (1 when online is 0). */
  ratio: number;
  /** A few online statements the target did not run. */
  missingSample: string[];
}

/** Which of the online server's statements the target ran too (same text, same parameters). */
export function compareStatementLogs(online: readonly PgLogRecord[], target: readonly PgLogRecord[]): PgComparison {
  const left = new Map<string, number>();
  for (const r of target) {
    const k = statementKey(r);
    left.set(k, (left.get(k) ?? 0) + 1);
  }
  let matched = 0;
  const missingSample: string[] = [];
  for (const r of online) {
    const k = statementKey(r);
    const n = left.get(k) ?? 0;
    if (n > 0) {
      matched++;
      left.set(k, n - 1);
    } else if (missingSample.length < 5) missingSample.push(k);
  }
  return {
    online: online.length,
    target: target.length,
    matched,
    ratio: online.length === 0 ? 1 : matched / online.length,
    missingSample,
  };
}

/** "online N, target M, matched K (R%)". */
export function pgComparisonLine(c: PgComparison): string {
  return `online ${c.online} statements, target ${c.target}, matched ${c.matched} (${(c.ratio * 100).toFixed(3)}%)`;
}
