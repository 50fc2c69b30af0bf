import { clientHash } from './client-map';
import type { EngineConfig } from './engine-config';
import { seqAdd, seqAfter, seqBeforeEq } from './seq';
import type { CapturedPiece } from './session/capture';
import type { EngineStats, Outcome } from './stats';

/** What is remembered of a connection whose replay ended mid-stream. */
interface Tombstone {
  /** Captured ack of the last data seen, -1 when none: data whose ack advances is a new request. */
  lastAck: number;
  /** The outcome that ended the replay: later requests are lost with it. */
  outcome: Outcome;
  /** With outcome 'moduleEnded': the module's reason, which later requests are lost with instead. */
  moduleReason: string | null;
  /** Forgotten after this time (ms). */
  until: number;
}

/** Per replay variant, original client key -> last captured data ack (-1: none yet). */
type AckMaps = Map<number, number>[];

function mapOf<T>(maps: Map<number, T>[], variant: number): Map<number, T> {
  let m = maps[variant];
  if (m === undefined) {
    m = new Map();
    maps[variant] = m;
  }
  return m;
}

/**
 * The connections the engine sees but does not replay, so that every captured request is
 * still counted (replayed + lost by reason = captured): sampled out (-r, -g), no SYN with -O,
 * IPv6 over a 1.x channel,
 * refused at the session cap, and the rest of a connection whose replay ended mid-stream.
 * A request is data whose captured ack advanced (the server had answered), as in the engine.
 */
export class Unreplayed {
  /** Sampled-out connections (variant independent): key -> last data ack. */
  private readonly sampledOut = new Map<number, number>();
  private readonly noSyn: AckMaps = [];
  private readonly noIpv6: AckMaps = [];
  private readonly evicted: AckMaps = [];
  private readonly overloaded: AckMaps = [];
  private readonly ended: Map<number, Tombstone>[] = [];
  /** Connections ended idle over the memory budget (shedIdle): key -> captured end (nxt) and expiry. */
  private readonly idleEnded: Map<number, { nxt: number; until: number }>[] = [];
  private startedAt = -1;

  constructor(
    private readonly cfg: EngineConfig,
    private readonly stats: EngineStats,
  ) {}

  /**
   * Sampling (-r, -g): true when this connection is not replayed (its session and requests are
   * counted as sampled out). `live` says a replayed session exists for it already.
   */
  isSampledOut(
    srcIp: number,
    srcPort: number,
    origKey: number,
    isSyn: boolean,
    live: boolean,
    p: CapturedPiece,
    now: number,
  ): boolean {
    const cfg = this.cfg;
    if (this.startedAt < 0) this.startedAt = now;
    if (cfg.samplePercent >= 100 && cfg.rampMs === 0) return false;
    let last = this.sampledOut.get(origKey);
    if (isSyn || last === undefined) {
      if (!isSyn && live) return false;
      let pct = cfg.samplePercent;
      if (cfg.rampMs > 0) pct = Math.min(pct, 1 + ((pct - 1) * Math.max(0, now - this.startedAt)) / cfg.rampMs);
      if (clientHash(srcIp, srcPort) % 10000 < pct * 100) {
        if (last !== undefined) this.sampledOut.delete(origKey);
        return false;
      }
      this.stats.sessionsSampledOut++;
      if (this.sampledOut.size >= cfg.maxSessions) this.sampledOut.clear();
      last = -1;
      this.sampledOut.set(origKey, last);
    }
    if (p.len > 0) {
      if (last === -1 || (p.ackOk && seqAfter(p.ack, last))) this.stats.requestsSampledOut++;
      this.sampledOut.set(origKey, p.ackOk ? p.ack : Math.max(last, 0));
    }
    if (p.fin || p.rst) this.sampledOut.delete(origKey);
    return true;
  }

  /** -O and no SYN captured: counts the connection once and its requests as lost 'noSyn'. */
  countNoSyn(variant: number, origKey: number, p: CapturedPiece): void {
    const st = this.stats;
    const isNew = this.track(this.noSyn, variant, origKey, p, () => st.requestsNoSyn++);
    st.clientOrphans++;
    if (isNew) st.sessionsNoSyn++;
  }

  /**
   * An IPv6 connection over a 1.x channel (EngineConfig.ipv6Channel false): counts the connection
   * once and its requests as lost 'noIpv6Channel'.
   */
  countNoIpv6Channel(variant: number, origKey: number, p: CapturedPiece): void {
    const st = this.stats;
    const isNew = this.track(this.noIpv6, variant, origKey, p, () => st.requestsNoIpv6Channel++);
    st.clientOrphans++;
    if (isNew) st.sessionsNoIpv6Channel++;
  }

  /**
   * A connection refused at the session cap ('evicted') or while over the memory budget
   * ('overload'): counted once as a session with that outcome, its requests lost with it.
   */
  countRefused(variant: number, origKey: number, p: CapturedPiece, why: 'evicted' | 'overload'): void {
    const st = this.stats;
    const isNew = this.track(why === 'evicted' ? this.evicted : this.overloaded, variant, origKey, p, () => {
      st.requestsCaptured++;
      st.requestsLost[why]++;
    });
    if (isNew) {
      st.outcomes[why]++;
      st.sessionsCreated++;
    }
  }

  /** Why this connection was refused (its rest is counted, not replayed), or null when it was not. */
  refusal(variant: number, origKey: number): 'evicted' | 'overload' | null {
    if (this.evicted[variant]?.has(origKey) === true) return 'evicted';
    return this.overloaded[variant]?.has(origKey) === true ? 'overload' : null;
  }

  /**
   * Remembers a connection whose replay ended while the client was still talking, so that its
   * tail is not replayed as a new mid-stream session (the target would get half a request).
   */
  rememberEnded(
    variant: number,
    origKey: number,
    lastAck: number,
    outcome: Outcome,
    now: number,
    moduleReason: string | null = null,
  ): void {
    const m = mapOf(this.ended, variant);
    if (m.size >= this.cfg.maxSessions) m.clear();
    m.set(origKey, { lastAck, outcome, moduleReason, until: now + this.cfg.sessionTimeoutMs });
  }

  /** A new SYN on that client address and port: a new connection, replayed normally. */
  forgetEnded(variant: number, origKey: number): void {
    this.ended[variant]?.delete(origKey);
    this.idleEnded[variant]?.delete(origKey);
  }

  /**
   * Remembers where the captured stream of a connection ended early with nothing waiting
   * (ReplayEngine.shedIdle) stood, `nxt`: a later copy of bytes before it (the client's
   * retransmission of a request already replayed, read late from a backlogged ring) is a
   * duplicate, not the start of a new mid-stream session that would replay it again.
   */
  rememberIdleEnded(variant: number, origKey: number, nxt: number, now: number): void {
    const m = mapOf(this.idleEnded, variant);
    if (m.size >= this.cfg.maxSessions) m.clear();
    m.set(origKey, { nxt, until: now + this.cfg.sessionTimeoutMs });
  }

  /**
   * A packet of a connection ended by shedIdle: true when it is dealt with here (bytes already
   * replayed: a duplicate; its FIN alone: the end of a connection with nothing left, an orphan);
   * false when it carries new data (a mid-stream session replays it) or is not such a packet.
   */
  afterIdleEnd(variant: number, origKey: number, p: CapturedPiece, now: number): boolean {
    const m = this.idleEnded[variant];
    const t = m?.get(origKey);
    if (m === undefined || t === undefined) return false;
    const span = p.len + (p.fin ? 1 : 0);
    if (now >= t.until || p.rst || span === 0) {
      if (now >= t.until || p.rst) m.delete(origKey);
      return false;
    }
    if (seqBeforeEq(seqAdd(p.seq, span), t.nxt)) {
      this.stats.clientDuplicates++;
      return true;
    }
    m.delete(origKey);
    if (p.len === 0 && p.seq === t.nxt) {
      this.stats.clientOrphans++; // its FIN: nothing left to replay
      return true;
    }
    return false;
  }

  /** The rest of a connection whose replay ended mid-stream: counted (not replayed) when true. */
  afterEnd(variant: number, origKey: number, p: CapturedPiece, now: number): boolean {
    const m = this.ended[variant];
    const t = m?.get(origKey);
    if (m === undefined || t === undefined) return false;
    if (now >= t.until) {
      m.delete(origKey);
      return false;
    }
    const st = this.stats;
    if (p.len > 0 && (t.lastAck === -1 || (p.ackOk && seqAfter(p.ack, t.lastAck)))) {
      st.requestsCaptured++;
      const ms = st.module;
      if (t.moduleReason !== null && ms !== null) ms.lost[t.moduleReason] = (ms.lost[t.moduleReason] ?? 0) + 1;
      else st.requestsLost[t.outcome]++;
    }
    if (p.len > 0 && p.ackOk) t.lastAck = p.ack;
    if (p.fin || p.rst) m.delete(origKey);
    st.clientOrphans++;
    return true;
  }

  /** Follows one untracked connection; calls `request` for each request; true on its first packet. */
  private track(maps: AckMaps, variant: number, origKey: number, p: CapturedPiece, request: () => void): boolean {
    const m = mapOf(maps, variant);
    let last = m.get(origKey);
    const isNew = last === undefined;
    if (last === undefined) {
      if (m.size >= this.cfg.maxSessions) m.clear();
      last = -1;
    }
    if (p.len > 0 && (last === -1 || (p.ackOk && seqAfter(p.ack, last)))) request();
    if (p.fin || p.rst) m.delete(origKey);
    else m.set(origKey, p.len > 0 && p.ackOk ? p.ack : last);
    return isNew;
  }
}
