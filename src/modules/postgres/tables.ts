/**
 * The module-global tables of `--module postgres`, bounded and expired by the `now` given:
 *
 * - stored logins (the StartupMessage parameters of captured logins), for sessions picked up
 *   mid-stream. As whom such a session logs in (first match wins): the login stored for the
 *   same connection (a rebuilt session); the latest stored for the same client ip and online
 *   port (a pool opens its connections as one user); the first `--pg-login` for that port,
 *   then the first without a port. No match: the session ends as `noLogin`.
 * - backend keys: production's BackendKeyData -> the target's, for CancelRequests (they come
 *   on a connection of their own). An entry lives while its session does and CANCEL_GRACE_MS
 *   after it ended.
 */
import type { ConfiguredLogin } from './options';

/** Most logins stored. */
export const MAX_LOGINS = 4096;
/** A stored login is forgotten this long (ms) after it was last stored: 24 h. */
export const LOGIN_TTL_MS = 24 * 3600 * 1000;
/** Most backend keys kept. */
export const MAX_KEYS = 16384;
/** A key is kept this long (ms) after its session ended (a cancel racing the end). */
export const CANCEL_GRACE_MS = 10_000;

/** The parameters of a login's StartupMessage (user, database, and the client's others). */
export type LoginParams = ReadonlyMap<string, string>;

/** Where a session is. */
export interface ConnKey {
  clientIp: string;
  clientPort: number;
  serverIp: string;
  serverPort: number;
}

interface Entry<T> {
  v: T;
  /** Expiry (ms of engine time). */
  until: number;
}

/**
 * A Map in insertion order, bounded (entries, and optionally their total weight: bytes), its
 * entries expiring; the oldest are forgotten first. Also the statement catalog's (catalog.ts).
 */
export class Bounded<T> {
  private readonly m = new Map<string, Entry<T> & { w: number }>();
  /** Total weight held. */
  weight = 0;
  constructor(
    private readonly max: number,
    private readonly maxWeight = Infinity,
  ) {}
  get size(): number {
    return this.m.size;
  }
  /** Stores (or refreshes, as the newest) `key`; `w` is its weight (bytes). */
  put(key: string, v: T, until: number, now: number, w = 0): void {
    this.remove(key);
    this.m.set(key, { v, until, w });
    this.weight += w;
    for (const [k, e] of this.m) {
      if (this.m.size <= this.max && this.weight <= this.maxWeight && e.until >= now) break;
      this.remove(k);
    }
  }
  get(key: string, now: number): T | null {
    const e = this.m.get(key);
    if (e === undefined) return null;
    if (e.until < now) {
      this.remove(key);
      return null;
    }
    return e.v;
  }
  /** Moves the expiry of an entry holding `v` (by identity). */
  expire(key: string, v: T, until: number): void {
    const e = this.m.get(key);
    if (e !== undefined && e.v === v) e.until = until;
  }
  private remove(key: string): void {
    const e = this.m.get(key);
    if (e === undefined) return;
    this.weight -= e.w;
    this.m.delete(key);
  }
}

export class LoginTable {
  private readonly byConn: Bounded<LoginParams>;
  private readonly byClient: Bounded<LoginParams>;
  constructor(
    private readonly configured: readonly ConfiguredLogin[],
    max = MAX_LOGINS,
    private readonly ttlMs = LOGIN_TTL_MS,
  ) {
    this.byConn = new Bounded(max);
    this.byClient = new Bounded(max);
  }
  store(k: ConnKey, p: LoginParams, now: number): void {
    this.byConn.put(connKey(k), p, now + this.ttlMs, now);
    this.byClient.put(clientKey(k), p, now + this.ttlMs, now);
  }
  /** The login stored for this very connection (a rebuilt session: its own), null when none. */
  own(k: ConnKey, now: number): LoginParams | null {
    return this.byConn.get(connKey(k), now);
  }
  /** The login for a mid-stream session, null when none applies. */
  find(k: ConnKey, now: number): LoginParams | null {
    const p = this.byConn.get(connKey(k), now) ?? this.byClient.get(clientKey(k), now);
    if (p !== null) return p;
    const c =
      this.configured.find((l) => l.port === k.serverPort) ?? this.configured.find((l) => l.port === null) ?? null;
    return c === null
      ? null
      : new Map([
          ['user', c.user],
          ['database', c.database],
        ]);
  }
}

/** A backend key (BackendKeyData). */
export interface BackendKey {
  pid: number;
  secret: number;
}

export class KeyTable {
  private readonly keys: Bounded<BackendKey>;
  constructor(max = MAX_KEYS) {
    this.keys = new Bounded(max);
  }
  get size(): number {
    return this.keys.size;
  }
  /** Production's key `from` is the target's `to` while the session lives. */
  put(from: BackendKey, to: BackendKey, now: number): void {
    this.keys.put(keyOf(from), to, Infinity, now);
  }
  /** The session ended at `now`: its key is kept CANCEL_GRACE_MS more. */
  ended(from: BackendKey, to: BackendKey, now: number): void {
    this.keys.expire(keyOf(from), to, now + CANCEL_GRACE_MS);
  }
  get(from: BackendKey, now: number): BackendKey | null {
    return this.keys.get(keyOf(from), now);
  }
}

function keyOf(k: BackendKey): string {
  return `${k.pid >>> 0}:${k.secret >>> 0}`;
}
function connKey(k: ConnKey): string {
  return `${k.clientIp}|${k.clientPort}|${k.serverIp}|${k.serverPort}`;
}
function clientKey(k: ConnKey): string {
  return `${k.clientIp}|${k.serverPort}`;
}
