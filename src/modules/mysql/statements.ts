/**
 * One session's prepared statements: each client COM_STMT_PREPARE gets a record, filled in by
 * the online server's answer (production's statement id) and the target's (the target's id),
 * each from its own reply stream, in the order of the client's PREPAREs. A command naming a
 * production id is rewritten to the target's id.
 *
 * When production's answer was not seen (the online capture missed it), the production id is
 * inferred from the client's own use of it: servers number a connection's statements
 * increasingly, so an unknown id used by the client belongs to the one PREPARE without a known
 * id whose known neighbours (by PREPARE order) bracket it; when no single one fits, none is
 * chosen. Bounded: beyond MAX_STATEMENTS records the oldest is forgotten.
 *
 * A record may also be *adopted*: a statement a session picked up mid-stream executes, whose
 * PREPARE was before the capture, found in the catalog (catalog.ts) and prepared on the target
 * by the module.
 */
import type { CatEntry, DefCollector } from './catalog';

/** Most statements held per session (a server's max_prepared_stmt_count is per server; 1024 per connection is plenty). */
export const MAX_STATEMENTS = 1024;
/** Statement id pairs remembered per session for the comparison (Statements.paired). */
const MAX_PAIRS = 256;

/** One client PREPARE. */
export interface PrepareRec {
  /** Production's statement id, null while unknown. */
  onlineId: number | null;
  online: 'pending' | 'ok' | 'err' | 'inferred';
  /** The target's statement id, null while unknown. */
  targetId: number | null;
  target: 'unsent' | 'pending' | 'ok' | 'err';
  /** The statement text (the PREPARE's payload after its command byte); null: not kept. */
  text: Buffer | null;
  /** Parameters, from production's PREPARE_OK (or the catalog). */
  params: number;
  /** The parameter types the client bound (2 bytes per parameter); null until seen. */
  types: Buffer | null;
  /** Prepared on the target by the module (adopted): the target has not had its types yet while false `typesSent`. */
  adopted: boolean;
  typesSent: boolean;
  /** Adopted: engine time (ms) the module sent its PREPARE to the target. */
  sentAt: number;
  /** The target answered its PREPARE with an ERR (not merely unread). */
  refused: boolean;
  /** PREPAREs of this statement sent to the target on the session so far (see `redo`). */
  tries: number;
  /** Its catalog entry (production's answer learned), and the column definitions being read for it. */
  entry: CatEntry | null;
  defs: DefCollector | null;
}

export class Statements {
  /** In PREPARE order. */
  private recs: PrepareRec[] = [];
  /** Adopted records, oldest first. */
  private adopted: PrepareRec[] = [];
  private readonly byOnline = new Map<number, PrepareRec>();
  /** Production's id -> the target's, of statements both answered (the latest MAX_PAIRS, kept after a CLOSE). */
  private readonly pairs = new Map<number, number>();
  /** Records forgotten because of the bound. */
  evicted = 0;

  /** @param fromStart the session was seen from its start (ids above 0 bound the first PREPARE's id) */
  constructor(private readonly fromStart: boolean) {}

  get size(): number {
    return this.recs.length;
  }

  /** A client PREPARE (of `text`, kept as given: copy it): its record. */
  add(text: Buffer | null = null): PrepareRec {
    return this.push(record(text, 'pending', null));
  }

  /** Production's statement `id`, never seen prepared, is the catalog's `entry`: its record (to prepare on the target). */
  adopt(id: number, entry: CatEntry): PrepareRec {
    const r = record(entry.text, 'ok', id);
    r.params = entry.params;
    r.types = entry.types;
    r.adopted = true;
    r.entry = entry;
    this.pushAdopted(r);
    this.byOnline.set(id, r);
    return r;
  }

  /** Adopted records are not among the client's PREPAREs (their order bounds inferred ids); bounded on their own. */
  private pushAdopted(r: PrepareRec): void {
    this.adopted.push(r);
    if (this.adopted.length > MAX_STATEMENTS) {
      const old = this.adopted.shift() as PrepareRec;
      if (old.onlineId !== null && this.byOnline.get(old.onlineId) === old) this.byOnline.delete(old.onlineId);
      this.evicted++;
    }
  }

  /**
   * The target's answer to `r`'s PREPARE was not read (missed in bytes cut at the payload cap):
   * a new record for production's id, to prepare the same text on the target again, adopted
   * (its types sent at the next EXECUTE: the target's new statement never had them). `r` stays
   * among the client's PREPAREs (their order bounds inferred ids) but no longer maps the id.
   */
  redo(r: PrepareRec, text: Buffer): PrepareRec {
    const n = record(text, 'ok', r.onlineId);
    n.params = r.params;
    n.types = r.types;
    n.entry = r.entry;
    n.tries = r.tries;
    n.adopted = true;
    this.pushAdopted(n);
    if (r.onlineId !== null) this.byOnline.set(r.onlineId, n);
    return n;
  }

  /** Production's statement `id` is known (no inference). */
  has(id: number): boolean {
    return this.byOnline.has(id);
  }

  private push(r: PrepareRec): PrepareRec {
    this.recs.push(r);
    if (this.recs.length > MAX_STATEMENTS) {
      const old = this.recs.shift() as PrepareRec;
      if (old.onlineId !== null && this.byOnline.get(old.onlineId) === old) this.byOnline.delete(old.onlineId);
      this.evicted++;
    }
    return r;
  }

  /** Production answered a PREPARE (null: with an error). */
  online(r: PrepareRec, id: number | null): void {
    if (r.onlineId !== null && this.byOnline.get(r.onlineId) === r) this.byOnline.delete(r.onlineId);
    r.onlineId = id;
    r.online = id === null ? 'err' : 'ok';
    if (id !== null && this.recs.includes(r)) this.byOnline.set(id, r);
    this.pair(r);
  }

  /** The target answered a PREPARE (null: with an error, `refused`, or the answer could not be read). */
  target(r: PrepareRec, id: number | null, refused = false): void {
    r.targetId = id;
    r.target = id === null ? 'err' : 'ok';
    r.refused = id === null && refused;
    this.pair(r);
  }

  private pair(r: PrepareRec): void {
    if (r.onlineId === null || r.targetId === null) return;
    this.pairs.delete(r.onlineId);
    this.pairs.set(r.onlineId, r.targetId);
    if (this.pairs.size > MAX_PAIRS) this.pairs.delete(this.pairs.keys().next().value as number);
  }

  /** Production's statement `onlineId` and the target's `targetId` answer the same client PREPARE (both ids known). */
  paired(onlineId: number, targetId: number): boolean {
    return this.pairs.get(onlineId) === targetId;
  }

  /** The record of production's statement `id`, inferring it (see above) when unknown; `inferred` tells. */
  find(id: number): { rec: PrepareRec; inferred: boolean } | null {
    const r = this.byOnline.get(id);
    if (r !== undefined) return { rec: r, inferred: false };
    let found: PrepareRec | null = null;
    let lo: number | null = this.fromStart ? 0 : null;
    for (let i = 0; i < this.recs.length; i++) {
      const c = this.recs[i] as PrepareRec;
      if (c.onlineId !== null) {
        lo = c.onlineId;
        continue;
      }
      if (c.online !== 'pending' || lo === null || id <= lo) continue;
      let hi = Infinity;
      for (let j = i + 1; j < this.recs.length; j++) {
        const n = (this.recs[j] as PrepareRec).onlineId;
        if (n !== null) {
          hi = n;
          break;
        }
      }
      if (id >= hi) continue;
      if (found !== null) return null; // two fit: no guess
      found = c;
    }
    if (found === null) return null;
    found.onlineId = id;
    found.online = 'inferred';
    this.byOnline.set(id, found);
    return { rec: found, inferred: true };
  }

  /** COM_STMT_CLOSE of a statement. */
  close(r: PrepareRec): void {
    const list = r.adopted ? this.adopted : this.recs;
    const i = list.indexOf(r);
    if (i >= 0) list.splice(i, 1);
    if (r.onlineId !== null && this.byOnline.get(r.onlineId) === r) this.byOnline.delete(r.onlineId);
  }

  /** COM_CHANGE_USER, COM_RESET_CONNECTION: the server closes every statement. */
  clear(): void {
    this.recs = [];
    this.adopted = [];
    this.byOnline.clear();
  }
}

function record(text: Buffer | null, online: PrepareRec['online'], id: number | null): PrepareRec {
  return {
    onlineId: id,
    online,
    targetId: null,
    target: 'unsent',
    text,
    params: 0,
    types: null,
    adopted: false,
    typesSent: false,
    sentAt: 0,
    refused: false,
    tries: 0,
    entry: null,
    defs: null,
  };
}
