/**
 * intercept's route table: which tcpcopy connection registered a client (ip, port), and for
 * which target. Keys are integers (ip * 65536 + port) in a Map; several targets per client
 * are chained. Routes expire after `idleMs` without use; CLIENT_DEL makes a route expire
 * after `delGraceMs`.
 *
 * The 1.x channel is unauthenticated, so the table defends itself by the owner's *origin* (the
 * address its connection comes from): a client with a live route of one origin cannot be
 * registered by another origin (any target: a made-up target would otherwise get the client's
 * replies through the fallback), and each origin holds at most `maxPerOrigin` routes. A
 * reconnect from the same address takes its routes over as before.
 */
import { addressKey } from '../core/address-key';

/** The address a route owner connects from, with the routes it holds (shared by its connections). */
export interface RouteOrigin {
  /** The remote address (no port), e.g. "198.18.0.1". */
  readonly addr: string;
  /** Routes in the table whose owner has this origin (maintained by the RouteTable). */
  routes: number;
}

/** A route owner: anything with a liveness flag (a tcpcopy connection) and an origin. */
export interface RouteOwner {
  /** False once the connection is gone: its routes are dropped lazily. */
  alive: boolean;
  /** Where the connection comes from; connections from one address share one object. */
  readonly origin: RouteOrigin;
}

interface Route<P> {
  owner: P;
  targetIp: number;
  targetPort: number;
  lastUsed: number;
  /** Expiry forced by CLIENT_DEL; Infinity when none. */
  delAt: number;
  next: Route<P> | null;
}

/**
 * Result of RouteTable.add: 'refused' = the table is full; 'quota' = the owner's origin holds
 * `maxPerOrigin` routes; 'owned' = a live connection from another address owns that client.
 */
export type RouteAddResult = 'added' | 'updated' | 'refused' | 'quota' | 'owned';

/** Integer key of a client address: ip * 65536 + port (exact in a double); the engine's key (core/address-key.ts). */
export const clientKey = addressKey;

/** The route table (one per intercept). */
export class RouteTable<P extends RouteOwner> {
  private readonly map = new Map<number, Route<P>>();
  private count = 0;
  /** Routes removed by expiry (idle, deleted or owner gone). */
  expired = 0;

  /**
   * @param idleMs a route unused for this long expires (`--route-timeout`, default 120 s)
   * @param maxRoutes most routes held; more CLIENT_ADDs are refused (default 1,000,000)
   * @param delGraceMs a CLIENT_DEL'd route lives this much longer for late replies (default 2 s)
   * @param maxPerOrigin most routes of one origin (`--max-routes-per-peer`, default 250,000)
   */
  constructor(
    readonly idleMs = 120_000,
    readonly maxRoutes = 1_000_000,
    readonly delGraceMs = 2000,
    readonly maxPerOrigin = 250_000,
  ) {}

  /** Routes held now. */
  get size(): number {
    return this.count;
  }

  /**
   * Registers (or refreshes) client -> owner for a target. Refused when a live route of the
   * client belongs to another origin ('owned'), when the owner's origin is at its quota
   * ('quota') or when the table is full ('refused').
   */
  add(cIp: number, cPort: number, tIp: number, tPort: number, owner: P, now: number): RouteAddResult {
    const key = clientKey(cIp, cPort);
    const head = this.map.get(key);
    const origin = owner.origin;
    let same: Route<P> | null = null;
    let dead: Route<P> | null = null;
    for (let r: Route<P> | null | undefined = head; r; r = r.next) {
      if (!r.owner.alive) {
        if (!dead) dead = r;
      } else if (r.owner.origin !== origin) return 'owned';
      if (!same && r.targetIp === tIp && r.targetPort === tPort) same = r;
    }
    const reuse = same ?? dead;
    if (reuse) {
      if (reuse.owner.origin !== origin) {
        if (origin.routes >= this.maxPerOrigin) return 'quota';
        reuse.owner.origin.routes--;
        origin.routes++;
      }
      reuse.owner = owner;
      reuse.targetIp = tIp;
      reuse.targetPort = tPort;
      reuse.lastUsed = now;
      reuse.delAt = Infinity;
      return 'updated';
    }
    if (origin.routes >= this.maxPerOrigin) return 'quota';
    if (this.count >= this.maxRoutes) return 'refused';
    this.map.set(key, { owner, targetIp: tIp, targetPort: tPort, lastUsed: now, delAt: Infinity, next: head ?? null });
    this.count++;
    origin.routes++;
    return 'added';
  }

  /** CLIENT_DEL: the matching route (same owner and target) expires after delGraceMs. */
  del(cIp: number, cPort: number, tIp: number, tPort: number, owner: P, now: number): boolean {
    for (let r: Route<P> | null | undefined = this.map.get(clientKey(cIp, cPort)); r; r = r.next) {
      if (r.owner === owner && r.targetIp === tIp && r.targetPort === tPort) {
        r.delAt = now + this.delGraceMs;
        return true;
      }
    }
    return false;
  }

  /**
   * The owner for a reply from (srcIp, srcPort) to client (dstIp, dstPort): the route with the
   * matching target, else any live route of that client; null when none. Refreshes lastUsed.
   */
  lookup(dstIp: number, dstPort: number, srcIp: number, srcPort: number, now: number): P | null {
    let any: Route<P> | null = null;
    for (let r: Route<P> | null | undefined = this.map.get(clientKey(dstIp, dstPort)); r; r = r.next) {
      if (!r.owner.alive) continue;
      if (r.targetIp === srcIp && r.targetPort === srcPort) {
        r.lastUsed = now;
        return r.owner;
      }
      if (!any) any = r;
    }
    if (!any) return null;
    any.lastUsed = now;
    return any.owner;
  }

  /** True when some live route exists for the client key. */
  has(key: number): boolean {
    for (let r: Route<P> | null | undefined = this.map.get(key); r; r = r.next) if (r.owner.alive) return true;
    return false;
  }

  /** Removes idle, deleted and orphaned routes; returns how many. O(routes): call about once a second. */
  sweep(now: number): number {
    let n = 0;
    for (const [key, head] of this.map) {
      let first: Route<P> | null = head;
      let prev: Route<P> | null = null;
      for (let r: Route<P> | null = head; r; r = r.next) {
        if (!r.owner.alive || r.delAt <= now || now - r.lastUsed >= this.idleMs) {
          n++;
          r.owner.origin.routes--;
          if (prev) prev.next = r.next;
          else first = r.next;
        } else prev = r;
      }
      if (!first) this.map.delete(key);
      else if (first !== head) this.map.set(key, first);
    }
    this.count -= n;
    this.expired += n;
    return n;
  }
}
