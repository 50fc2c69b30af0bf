/**
 * Named prepared statements of sessions picked up mid-stream, pure: a connection opened before
 * tcpcopy started sent its Parse messages before the capture began, and then Binds statements
 * the target never had. Clients name their statements the same way on every connection
 * (pgbench -M prepared: P_0..P_n per script command; JDBC S_1, S_2...; node-postgres the names
 * the application gives), so another connection captured parsing it usually teaches the
 * statement: its Parse (query text and parameter types) is inserted before the Bind.
 *
 * The catalog (module-global) keeps, per online server and database, statement name -> the
 * Parse body captured under it. A name taught with different bodies (two applications, or one
 * that re-prepares a name with another text) is ambiguous: such Binds are lost with their own
 * reason rather than run with a guessed text. It also keeps, per online server and name, the
 * logins (StartupMessage parameters) of the sessions that taught it, when they were captured
 * from their start: a mid-stream session whose first message Binds a name that one login alone
 * taught logs in as that role (module.ts, doc/modules.md).
 *
 * Bounded (MAX_STATEMENTS names, MAX_CATALOG_BYTES of Parse bodies, the oldest forgotten first;
 * Parse bodies longer than MAX_PARSE_BYTES are not learned) and expired by the `now` given
 * (CATALOG_TTL_MS after a name was last taught).
 */
import { Bounded, type LoginParams } from './tables';

/** Most statement names kept (all servers and databases); as many role entries. */
export const MAX_STATEMENTS = 4096;
/** Longest Parse body learned (bytes: name, query text, parameter types). */
export const MAX_PARSE_BYTES = 16 * 1024;
/** Most bytes of Parse bodies kept in all: 16 MiB. */
export const MAX_CATALOG_BYTES = 16 * 1024 * 1024;
/** A name is forgotten this long (ms) after it was last taught: 24 h. */
export const CATALOG_TTL_MS = 24 * 3600 * 1000;
/**
 * How long (ms of engine time, from the session's first such hold) a mid-stream session holds a
 * Bind of a statement nobody taught yet (src/modules/learn-wait.ts): once per session. 10 s:
 * with 3 s (the MySQL module's) the lab's pgbench opened after tcpcopy started taught its P_n
 * too late under load (e2e 2026-12-02 18:16, load 12.9: 81% of the before group's statements).
 */
export const LEARN_WAIT_MS = 10_000;

/** One name in one database. */
interface Taught {
  /** The Parse body (a copy), null once the name was taught with two different bodies. */
  body: Buffer | null;
}

/** Who taught a name on a server: up to two distinct logins (two mean: not one role). */
type Teachers = Map<string, LoginParams>;

/** What the catalog knows of a name. */
export type Lookup = { kind: 'one'; body: Buffer } | { kind: 'ambiguous' } | { kind: 'none' };

export class ParseCatalog {
  private readonly names: Bounded<Taught>;
  private readonly teachers: Bounded<Teachers>;

  constructor(
    max = MAX_STATEMENTS,
    maxBytes = MAX_CATALOG_BYTES,
    private readonly ttlMs = CATALOG_TTL_MS,
  ) {
    this.names = new Bounded(max, maxBytes);
    this.teachers = new Bounded(max);
  }

  get size(): number {
    return this.names.size;
  }

  /**
   * A captured Parse of the named statement `name` (body: the whole Parse body, from the name)
   * on `server` in `database`; `login`: the teaching session's captured login (null: not
   * captured from its start). True when the name was not known before.
   */
  learn(server: string, database: string, name: string, body: Buffer, login: LoginParams | null, now: number): boolean {
    if (name === '' || body.length > MAX_PARSE_BYTES) return false;
    const key = `${server}|${database}|${name}`;
    const t = this.names.get(key, now);
    const until = now + this.ttlMs;
    if (t === null) this.names.put(key, { body: Buffer.from(body) }, until, now, body.length);
    else {
      if (t.body !== null && !t.body.equals(body)) t.body = null; // two texts under one name
      this.names.put(key, t, until, now, t.body?.length ?? 0);
    }
    if (login !== null) {
      const rk = `${server}|${name}`;
      const ts = this.teachers.get(rk, now) ?? new Map<string, LoginParams>();
      const lk = `${login.get('user') ?? ''}\0${login.get('database') ?? ''}`;
      if (ts.size < 2 || ts.has(lk)) ts.set(lk, login);
      this.teachers.put(rk, ts, until, now);
    }
    return t === null;
  }

  /** The Parse body to insert for `name` in `database` on `server`. */
  find(server: string, database: string, name: string, now: number): Lookup {
    const t = this.names.get(`${server}|${database}|${name}`, now);
    if (t === null) return { kind: 'none' };
    return t.body === null ? { kind: 'ambiguous' } : { kind: 'one', body: t.body };
  }

  /** The one login that taught `name` on `server`, null when none did yet or several did. */
  teacher(server: string, name: string, now: number): LoginParams | null {
    const ts = this.teachers.get(`${server}|${name}`, now);
    return ts === null || ts.size !== 1 ? null : (ts.values().next().value as LoginParams);
  }
}
