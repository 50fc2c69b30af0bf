/**
 * Prepared statements of sessions picked up mid-stream, pure: a session whose PREPAREs
 * happened before tcpcopy started executes statement ids the module never saw prepared. Real
 * clients (sysbench, JDBC, connection pools) prepare the same statements, in the same order,
 * on every connection, and servers number a connection's statements from 1: so the text of
 * such a statement is usually known from another connection that was captured preparing it.
 *
 * The catalog (module-global) keeps each statement text captured in a PREPARE that production
 * answered, per scope (online server address and port, and the session's database): its
 * parameter and column counts and column definitions (production's PREPARE_OK and the
 * definitions after it), the parameter types of the first EXECUTE that bound them, and the
 * production ids it had on the sessions that prepared it. An id alone is not proof (ids are
 * per connection): an unknown EXECUTE's candidates are the texts seen with its id whose
 * parameter count fits the EXECUTE's bytes exactly (`executeFit`), then they are checked
 * against production's reply to that very EXECUTE (`ExecProbe`): an OK for a statement without
 * columns, or a result set with the candidate's column count and, when both are known, the
 * same column definitions (schema, table and column names). Exactly one must remain; the
 * module then prepares its text on the target and maps the ids (module.ts).
 *
 * Bounded (MAX_CATALOG entries and MAX_CATALOG_BYTES of text, oldest first; MAX_IDS ids per
 * entry) and expired by the `now` given (CATALOG_TTL_MS after an entry was last learned).
 */
import { readLenEnc } from './packet';
import { headOf, type PacketHead } from './replies';

/** Most statement texts kept (all scopes). */
export const MAX_CATALOG = 4096;
/** An entry is forgotten this long (ms) after it was last learned: 24 h. */
export const CATALOG_TTL_MS = 24 * 3600 * 1000;
/** Most production ids remembered per statement text (beyond: new ids are not added). */
export const MAX_IDS = 64;
/** Longest statement text kept (bytes); longer PREPAREs are not learned. */
export const MAX_TEXT_BYTES = 16 * 1024;
/** Most bytes of statement text kept in all (the oldest forgotten first beyond): 16 MiB. */
export const MAX_CATALOG_BYTES = 16 * 1024 * 1024;
/** How long (ms of engine time) an EXECUTE waits for production's reply to check its candidates; then it is decided without it. */
export const PROBE_WAIT_MS = 2000;
/**
 * How long (ms of engine time, from the session's first such EXECUTE) a session picked up
 * mid-stream holds an EXECUTE whose statement no captured connection has yet taught (no text
 * with that id, or no parameter types): another connection often prepares it moments later (a
 * pool opening a connection, sysbench's next thread). Once per session, so a statement that is
 * never taught costs that session one wait, not one per statement.
 */
export const LEARN_WAIT_MS = 3000;

/** One statement text, as learned. */
export interface CatEntry {
  readonly scope: string;
  /** The statement text: the PREPARE's payload after its command byte. */
  readonly text: Buffer;
  params: number;
  columns: number;
  /** Production's column definitions of its PREPARE_OK (one `colSig` per column, joined by '\n'); null: not read. */
  cols: string | null;
  /** Parameter types (2 bytes per parameter) of a captured EXECUTE that bound them; null: none seen. */
  types: Buffer | null;
  /** Production ids it had, and on how many sessions. */
  readonly ids: Map<number, number>;
  at: number;
}

/** The scope of a session's statements: a statement text means the same on the same server and database. */
export function scopeOf(serverIp: string, serverPort: number, database: string | null): string {
  return `${serverIp}|${serverPort}|${database ?? ''}`;
}

export class StatementCatalog {
  private readonly entries = new Map<string, CatEntry>();
  private readonly byId = new Map<string, Set<CatEntry>>();
  /** Bytes of text held. */
  bytes = 0;

  constructor(
    private readonly max = MAX_CATALOG,
    private readonly ttlMs = CATALOG_TTL_MS,
    private readonly maxBytes = MAX_CATALOG_BYTES,
  ) {}

  /** Entries held. */
  get size(): number {
    return this.entries.size;
  }

  /**
   * Production answered a captured PREPARE of `text` with statement `id` (`params`, `columns`):
   * the entry (new, or updated and made the newest). `fresh`: the text was not known.
   */
  learn(
    scope: string,
    text: Buffer,
    id: number,
    params: number,
    columns: number,
    now: number,
  ): { entry: CatEntry; fresh: boolean } | null {
    if (text.length > MAX_TEXT_BYTES) return null;
    const key = `${scope}\n${text.toString('latin1')}`;
    let e = this.entries.get(key);
    const fresh = e === undefined;
    if (e === undefined || e.params !== params || e.columns !== columns) {
      if (e !== undefined) this.remove(key, e); // the statement changed (a table altered): start again
      e = { scope, text: Buffer.from(text), params, columns, cols: null, types: null, ids: new Map(), at: now };
      this.bytes += e.text.length;
    } else this.entries.delete(key);
    e.at = now;
    this.entries.set(key, e);
    const n = e.ids.get(id);
    if (n !== undefined || e.ids.size < MAX_IDS) {
      e.ids.set(id, (n ?? 0) + 1);
      const ik = `${scope}|${id}`;
      let s = this.byId.get(ik);
      if (s === undefined) this.byId.set(ik, (s = new Set()));
      s.add(e);
    }
    this.expire(now);
    return { entry: e, fresh };
  }

  /** The texts seen with production id `id` in `scope` (not expired). */
  candidates(scope: string, id: number, now: number): CatEntry[] {
    this.expire(now);
    const s = this.byId.get(`${scope}|${id}`);
    return s === undefined ? [] : [...s];
  }

  private expire(now: number): void {
    // the oldest first: drop expired ones and those beyond the bound
    for (const [k, e] of this.entries) {
      if (this.entries.size <= this.max && this.bytes <= this.maxBytes && now - e.at <= this.ttlMs) break;
      this.remove(k, e);
    }
  }

  private remove(key: string, e: CatEntry): void {
    if (this.entries.get(key) === e) {
      this.entries.delete(key);
      this.bytes -= e.text.length;
    }
    for (const id of e.ids.keys()) {
      const ik = `${e.scope}|${id}`;
      const s = this.byId.get(ik);
      s?.delete(e);
      if (s?.size === 0) this.byId.delete(ik);
    }
  }
}

/** Bytes of a value of binary-protocol type `t` at b[o] (-1: unknown type or cut). */
function valueBytes(t: number, b: Buffer, o: number): number {
  switch (t) {
    case 0x06: // NULL
      return 0;
    case 0x01: // TINY
      return 1;
    case 0x02: // SHORT
    case 0x0d: // YEAR
      return 2;
    case 0x03: // LONG
    case 0x04: // FLOAT
    case 0x09: // INT24
      return 4;
    case 0x05: // DOUBLE
    case 0x08: // LONGLONG
      return 8;
    case 0x07: // TIMESTAMP
    case 0x0a: // DATE
    case 0x0b: // TIME
    case 0x0c: // DATETIME
      return o < b.length ? 1 + (b[o] as number) : -1;
    case 0x00: // DECIMAL
    case 0x0f: // VARCHAR
    case 0x10: // BIT
    case 0xf5: // JSON
    case 0xf6: // NEWDECIMAL
    case 0xf7: // ENUM
    case 0xf8: // SET
    case 0xf9: // TINY_BLOB
    case 0xfa: // MEDIUM_BLOB
    case 0xfb: // LONG_BLOB
    case 0xfc: // BLOB
    case 0xfd: // VAR_STRING
    case 0xfe: // STRING
    case 0xff: {
      // GEOMETRY
      const l = readLenEnc(b, o);
      return l === null ? -1 : l.bytes + l.value;
    }
    default:
      return -1;
  }
}

/** Payload offset of an EXECUTE's parameters: command, id (4), flags, iteration count (4). */
const EXEC_PARAMS = 10;

/**
 * Does a COM_STMT_EXECUTE payload (from its command byte) fit a statement of `n` parameters?
 * 'fits': its values parse exactly to its end, with the types it binds or else `types` (those
 * bound before, 2 bytes per parameter); 'noTypes': it binds none and none are known (its
 * values cannot be checked, nor sent to a statement the target never had them for); 'misfit'.
 */
export function executeFit(p: Buffer, n: number, types: Buffer | null): 'fits' | 'noTypes' | 'misfit' {
  if (n === 0) return p.length === EXEC_PARAMS ? 'fits' : 'misfit';
  const nl = (n + 7) >> 3;
  const flag = EXEC_PARAMS + nl;
  if (p.length <= flag) return 'misfit';
  let t: Buffer;
  let o: number;
  if (p[flag] === 1) {
    o = flag + 1 + 2 * n;
    if (o > p.length) return 'misfit';
    t = p.subarray(flag + 1, o);
  } else if (p[flag] === 0) {
    if (types === null || types.length !== 2 * n) return 'noTypes';
    t = types;
    o = flag + 1;
  } else return 'misfit';
  for (let i = 0; i < n; i++) {
    if ((((p[EXEC_PARAMS + (i >> 3)] as number) >> (i & 7)) & 1) === 1) continue; // NULL: no value
    const v = valueBytes(t[2 * i] as number, p, o);
    if (v < 0) return 'misfit';
    o += v;
    if (o > p.length) return 'misfit';
  }
  return o === p.length ? 'fits' : 'misfit';
}

/** The parameter types an EXECUTE payload binds (a copy), null when it binds none. */
export function boundTypes(p: Buffer, n: number): Buffer | null {
  if (n === 0) return null;
  const flag = EXEC_PARAMS + ((n + 7) >> 3);
  if (p[flag] !== 1 || flag + 1 + 2 * n > p.length) return null;
  return Buffer.from(p.subarray(flag + 1, flag + 1 + 2 * n));
}

/**
 * A COM_STMT_EXECUTE packet (`msg`, header included) that binds none, sent to statement
 * `targetId` with `types` bound (new-params-bound 1): what the client sent before the capture.
 */
export function withTypes(msg: Buffer, n: number, types: Buffer, targetId: number): Buffer {
  const flag = 4 + EXEC_PARAMS + ((n + 7) >> 3);
  const out = Buffer.allocUnsafe(msg.length + types.length);
  msg.copy(out, 0, 0, flag);
  out[flag] = 1;
  types.copy(out, flag + 1);
  msg.copy(out, flag + 1 + types.length, flag + 1);
  out.writeUIntLE(out.length - 4, 0, 3);
  out.writeUInt32LE(targetId >>> 0, 5);
  return out;
}

/** A column definition's names (schema, table, original table, name, original name), null when it is not one or was cut. */
export function colSig(h: Buffer): string | null {
  if (h.length < 4 || h[0] !== 3 || h.toString('latin1', 1, 4) !== 'def') return null;
  let o = 4;
  const parts: string[] = [];
  for (let i = 0; i < 5; i++) {
    const l = readLenEnc(h, o);
    if (l === null || o + l.bytes + l.value > h.length) return null;
    parts.push(h.toString('utf8', o + l.bytes, o + l.bytes + l.value));
    o += l.bytes + l.value;
  }
  return parts.join('\t');
}

/**
 * Collects the column definitions of one reply (a PREPARE answer: after `skip` parameter
 * definitions; a result set: none skipped), `want` of them.
 */
export class DefCollector {
  readonly sigs: string[] = [];
  /** A definition could not be read (cut, or the server sent none: MariaDB's cached metadata). */
  broken = false;

  constructor(
    private skip: number,
    readonly want: number,
  ) {}

  /** One packet after the reply's first. */
  packet(p: PacketHead): void {
    if (this.sigs.length >= this.want || this.broken) return;
    const h = headOf(p);
    if (h.length < 4 || h[0] !== 3) return; // an EOF between the runs
    if (this.skip > 0) {
      this.skip--;
      return;
    }
    const s = colSig(h);
    if (s === null) this.broken = true;
    else this.sigs.push(s);
  }

  /** All `want` definitions were read: their signature; else null. */
  result(): string | null {
    return !this.broken && this.sigs.length === this.want ? this.sigs.join('\n') : null;
  }
}

/** What production answered an EXECUTE whose statement is being found. */
export type ProbeReply =
  /** An OK: a statement without columns. */
  | { kind: 'ok' }
  /** A result set of `columns` columns, with their definitions (null: not read). */
  | { kind: 'rows'; columns: number; cols: string | null }
  /** An ERR, or a reply that could not be read: nothing to check the candidates against. */
  | { kind: 'none' };

/**
 * An EXECUTE of a statement id the session never prepared, while production's reply to it is
 * awaited (the tag of the online tracker's expectation).
 */
export class ExecProbe {
  reply: ProbeReply | null = null;
  private defs: DefCollector | null = null;

  /** @param since engine time (ms) the EXECUTE was first offered */
  constructor(readonly since: number) {}

  /** A packet of production's reply (first: its first packet). */
  packet(p: PacketHead, first: boolean): void {
    if (this.reply !== null) return;
    if (!first) {
      this.defs?.packet(p);
      if (this.defs !== null && this.defs.sigs.length === this.defs.want) this.done();
      return;
    }
    const h = headOf(p);
    const b = h[0];
    if (b === 0x00) this.reply = { kind: 'ok' };
    else if (b === 0xff || b === 0xfb || b === undefined) this.reply = { kind: 'none' };
    else {
      const c = readLenEnc(h, 0);
      if (c === null || c.value < 1) this.reply = { kind: 'none' };
      else {
        this.defs = new DefCollector(0, c.value);
        // MariaDB's cached metadata: a 0 after the count says no definitions follow
        if (p.len === c.bytes + 1 && h[c.bytes] === 0) this.defs.broken = true;
        if (this.defs.broken) this.done();
      }
    }
  }

  /** Production's reply ended, was abandoned or could not be read. */
  done(): void {
    if (this.reply !== null) return;
    const d = this.defs;
    this.reply = d === null ? { kind: 'none' } : { kind: 'rows', columns: d.want, cols: d.result() };
  }

  /** The candidates production's reply fits (check `reply` first: null while it is awaited). */
  fitting(candidates: readonly CatEntry[]): CatEntry[] {
    const r = this.reply;
    if (r === null || r.kind === 'none') return [];
    if (r.kind === 'ok') return candidates.filter((c) => c.columns === 0);
    return candidates.filter(
      (c) => c.columns === r.columns && (c.cols === null || r.cols === null || c.cols === r.cols),
    );
  }
}
