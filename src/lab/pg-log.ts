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
  /** The session's application_name (libpq: PGAPPNAME; pgbench's default `pgbench`), '' when none. */
  application: string;
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
    application: f[22] ?? '',
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

/** One client connection (`host:port`) of a per-connection comparison. */
export interface PgConnComparison {
  from: string;
  online: number;
  target: number;
  matched: number;
  /** The first online statements (in order) the target's same connection did not run. */
  missing: string[];
}

function byFrom(recs: readonly PgLogRecord[]): Map<string, PgLogRecord[]> {
  const m = new Map<string, PgLogRecord[]>();
  for (const r of recs) {
    const l = m.get(r.from);
    if (l === undefined) m.set(r.from, [r]);
    else l.push(r);
  }
  return m;
}

/**
 * The comparison per client connection: the target sees the clients' own addresses and ports
 * (tcpcopy keeps them), so each online connection's statements are looked for in the target's
 * records of the same `host:port` only (not in another connection's identical BEGIN or END).
 */
export function compareByConnection(
  online: readonly PgLogRecord[],
  target: readonly PgLogRecord[],
): PgConnComparison[] {
  const t = byFrom(target);
  return [...byFrom(online)].map(([from, recs]) => {
    const theirs = t.get(from) ?? [];
    const left = new Map<string, number>();
    for (const r of theirs) left.set(statementKey(r), (left.get(statementKey(r)) ?? 0) + 1);
    const missing: string[] = [];
    let matched = 0;
    for (const r of recs) {
      const k = statementKey(r);
      const n = left.get(k) ?? 0;
      if (n > 0) {
        left.set(k, n - 1);
        matched++;
      } else if (missing.length < 5) missing.push(k);
    }
    return { from, online: recs.length, target: theirs.length, matched, missing };
  });
}

/** Transactions (a connection's statements up to each `END;`) the target replayed whole on the same connection. */
export interface PgTxComparison {
  online: number;
  replayed: number;
  /** replayed / online (1 when online is 0). */
  ratio: number;
}

/**
 * pgbench transactions compared per connection: an online transaction (its statements from
 * the previous END to its own `END;`, parameters included) counts as replayed when the target's
 * same connection ran every one of its statements.
 */
export function compareTransactions(online: readonly PgLogRecord[], target: readonly PgLogRecord[]): PgTxComparison {
  const t = byFrom(target);
  let total = 0;
  let replayed = 0;
  for (const [from, recs] of byFrom(online)) {
    const left = new Map<string, number>();
    for (const r of t.get(from) ?? []) left.set(statementKey(r), (left.get(statementKey(r)) ?? 0) + 1);
    let whole = true;
    for (const r of recs) {
      const k = statementKey(r);
      const n = left.get(k) ?? 0;
      if (n > 0) left.set(k, n - 1);
      else whole = false;
      if (/(^|: )END;$/.test(r.message)) {
        total++;
        if (whole) replayed++;
        whole = true;
      }
    }
  }
  return { online: total, replayed, ratio: total === 0 ? 1 : replayed / total };
}
