import type { EngineConfig, EngineTransfer } from './engine-config';
import { afterChange, endAll, endIfModuleAsked, endSession, newSession } from './engine-lifecycle';
import { feedModule, onlineBytes } from './engine-module';
import { type ReplyBytes, onReply } from './engine-reply';
import { addressKey } from './address-key';
import { type EngineOutput, EngineState, flushAcks } from './engine-state';
import { pollTimers, rearm } from './engine-timers';
import { type EngineStats, newEngineStats } from './stats';
import { appendCaptured } from './session/capture';
import type { UnitPoolStats } from './session/unit-pool';
import { type Session, SessionState, awaitingTargetClose, backlogBytes, caughtUp, settled } from './session/session';
import { transmit } from './session/transmit';
import { payloadCaptured } from './wire/decode';
import { IPV6_BASE } from './wire/ipv6';
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, type TcpSegment } from './wire/segment';

export type { EngineOutput } from './engine-state';
export type { ReplyBytes } from './engine-reply';

/**
 * The replay engine: one simulated client per captured connection. Pure and deterministic:
 * it is fed captured client packets and intercept's reply headers with the current time, emits
 * packets through `out`, and exposes its next deadline; the caller calls `poll(now)` then.
 *
 * This class is the public face and the client packet path; the rest lives in plain functions
 * over its EngineState: engine-lifecycle.ts (every session state transition, outcomes),
 * engine-reply.ts (the target's replies), engine-timers.ts (the timer table) and
 * session/transmit.ts (sending).
 */
export class ReplayEngine {
  readonly stats: EngineStats = newEngineStats();
  /** Config, counters, output, session tables, timers and scratch space shared with the engine-*.ts functions. */
  private readonly core: EngineState;
  private readonly portIndex = new Map<number, EngineTransfer[]>();
  /** Target addresses of transfers without an online address (their port matches any destination). */
  private readonly targetKeys = new Set<number>();
  /**
   * Transfers of the same online address and port (`-x 80-OLD:8080,80-NEW:8080`): every session
   * goes to each of them, as its own replay variant (client port), keyed by the first one.
   */
  private readonly groups = new Map<EngineTransfer, readonly EngineTransfer[]>();

  constructor(
    readonly cfg: EngineConfig,
    out: EngineOutput,
  ) {
    this.core = new EngineState(cfg, this.stats, out);
    for (const t of cfg.transfers) {
      const list = this.portIndex.get(t.onlinePort) ?? [];
      list.push(t);
      this.portIndex.set(t.onlinePort, list);
      if (t.onlineIp === 0) this.targetKeys.add(addressKey(t.targetIp, t.targetPort));
    }
    for (const t of cfg.transfers) {
      const first = this.transferOf(
        t.onlineIp === 0 ? (t.targetIp >= IPV6_BASE ? IPV6_BASE : 1) : t.onlineIp,
        t.onlinePort,
      );
      if (first === undefined) continue;
      const g = this.groups.get(first) ?? [];
      if (first.onlineIp === t.onlineIp) this.groups.set(first, [...g, t]);
    }
  }

  /** The transfer a client->server packet belongs to, or undefined when it is not ours. */
  transferOf(dstIp: number, dstPort: number): EngineTransfer | undefined {
    const list = this.portIndex.get(dstPort);
    if (list === undefined) return undefined;
    const v6 = dstIp >= IPV6_BASE;
    for (const t of list) {
      if (t.onlineIp === dstIp || (t.onlineIp === 0 && t.targetIp >= IPV6_BASE === v6)) return t;
    }
    return undefined;
  }

  /** Units and payload chunks the engine's pool created so far (a steady state creates none: see session/unit-pool.ts). */
  get allocations(): Readonly<UnitPoolStats & { sessionObjectsCreated: number }> {
    return { ...this.core.pool.stats, sessionObjectsCreated: this.core.sessionsAllocated };
  }

  /** Sessions currently in the table. */
  get activeSessions(): number {
    return this.stats.sessionsActive;
  }

  /**
   * Sessions that still have captured data not yet acknowledged by the target, or whose client
   * closed while the target has not yet (awaitingTargetClose: it may still be reading what it
   * acknowledged). The end of an offline input waits for both, so that finish() does not reset
   * a connection whose last requests the target has not read yet.
   */
  busySessions(): number {
    let n = 0;
    for (const s of this.core.byReply.values()) if (!settled(s) || awaitingTargetClose(s)) n++;
    return n;
  }

  /** Sessions whose client closed (FIN acknowledged) while the target has not closed yet (awaitingTargetClose). */
  awaitingCloseSessions(): number {
    let n = 0;
    for (const s of this.core.byReply.values()) if (awaitingTargetClose(s)) n++;
    return n;
  }

  /**
   * Requests captured in sessions still open (started or queued) and not yet acknowledged by
   * the target: what the accounting may call "in flight". Counted from the open sessions
   * themselves, not from the global counters, so that a request the counters lost track of shows
   * up as an unexplained remainder (src/run/report.ts). Read-only; walks every session (the
   * report and metrics call it, not the packet path).
   */
  requestsInFlight(): number {
    const seen = new Set<Session>();
    let n = 0;
    const count = (first: Session): void => {
      for (let s: Session | null = first; s !== null && !seen.has(s); s = s.successor) {
        seen.add(s);
        if (s.state !== SessionState.Closed) n += s.requestsCaptured - s.requestsReplayed - s.requestsSettled;
      }
    };
    for (const s of this.core.byReply.values()) count(s);
    for (const map of this.core.byCapture) for (const s of map.values()) count(s);
    return n;
  }

  /**
   * Calls `fn` for every session that owns a client address on the target (to re-register it
   * with an intercept that reconnected); `payload` and `payloadMax` as in EngineOutput.clientAdded.
   */
  forEachClient(
    fn: (
      clientIp: number,
      clientPort: number,
      targetIp: number,
      targetPort: number,
      payload: boolean,
      payloadMax: number,
    ) => void,
  ): void {
    const p = this.core.wantsPayload;
    const m = this.core.payloadMax;
    for (const s of this.core.byReply.values()) fn(s.clientIp, s.clientPort, s.targetIp, s.targetPort, p, m);
  }

  /** The protocol module wants the online server's replies (tcpcopy captures server->client too). */
  get wantsOnlineReplies(): boolean {
    return this.cfg.module?.wantsOnlineReplies === true;
  }

  /**
   * The runner tells the engine when the intercept channel goes down or comes back. Sessions in
   * SYN-SENT during an outage that then time out, and sessions that time out or stay unfinished
   * while it is down, end as 'channelDown' instead of a target failure.
   */
  setChannelUp(up: boolean): void {
    const e = this.core;
    if (e.channelUp === up) return;
    e.channelUp = up;
    if (!up) for (const s of e.byReply.values()) if (s.state === SessionState.SynSent) s.handshakeOutage = true;
  }

  /**
   * The runner's memory governor (src/run/memory-governor.ts): while `open` is false, new
   * connections are not replayed; they and the rest of their packets are counted as lost
   * 'overload'. Sessions already replaying go on.
   */
  setAdmitting(open: boolean): void {
    this.core.admitting = open;
  }

  /** Whether new connections are replayed (see setAdmitting). */
  get isAdmitting(): boolean {
    return this.core.admitting;
  }

  /**
   * Over the memory budget with no new connection left to refuse: ends, as 'overload', the open
   * session with the most captured requests not yet acknowledged by the target (they are lost
   * with that reason; the rest of its connection is counted, not replayed). Returns the number
   * of requests it gave up, 0 when no session has any waiting. Walks every session.
   */
  shedLargest(now: number): number {
    const e = this.core;
    let worst: Session | null = null;
    let most = 0;
    for (const map of e.byCapture)
      for (const s of map.values()) {
        if (s.state === SessionState.Closed) continue;
        const waiting = s.requestsCaptured - s.requestsReplayed - s.requestsSettled;
        if (waiting > most) {
          most = waiting;
          worst = s;
        }
      }
    if (worst === null) return 0;
    endSession(e, worst, 'overload', now);
    return most;
  }

  /**
   * Over the memory budget: ends, as 'completed' (what the keep-alive timeout `-k` would end
   * them as), up to `max` established sessions that have nothing waiting (every captured byte
   * acknowledged by the target) and saw no packet for at least `idleMs`. Nothing is lost: these
   * are mostly short connections whose captured FIN never arrived (the kernel ring dropped it
   * while tcpcopy waited for CPU), which would otherwise stay for `-k` (600 s). A later packet
   * of such a connection starts a mid-stream session as after `-k`. Returns how many it ended.
   */
  shedIdle(now: number, idleMs: number, max: number): number {
    const e = this.core;
    const idle: Session[] = [];
    for (const map of e.byCapture)
      for (const s of map.values()) {
        if (idle.length >= max) break;
        if (s.state !== SessionState.Established || now - s.lastActivity < idleMs) continue;
        if (s.requestsCaptured - s.requestsReplayed - s.requestsSettled > 0 || !caughtUp(s)) continue;
        idle.push(s);
      }
    for (const s of idle) {
      e.unreplayed.rememberIdleEnded(s.variant, s.captureKey, s.capture.nxt, now);
      endSession(e, s, 'completed', now);
    }
    return idle.length;
  }

  /** Whether the engine was last told the channel is up. */
  get isChannelUp(): boolean {
    return this.core.channelUp;
  }

  /** Earliest time poll() has work to do (Infinity when none). */
  nextDeadline(): number {
    const e = this.core;
    return e.ackQueue.length > 0 ? -Infinity : e.timers.peekDeadline();
  }

  /**
   * A captured client->server packet. `rep` is the offline repetition index (-T), 0 live.
   * Returns false when it belongs to no transfer (the caller counts it).
   */
  onClientPacket(seg: TcpSegment, now: number, rep = 0): boolean {
    const t = this.transferOf(seg.dstIp, seg.dstPort);
    if (t === undefined) return false;
    if (t.onlineIp === 0 && this.targetKeys.has(addressKey(seg.dstIp, seg.dstPort))) {
      this.stats.clientToTarget++; // our own packet to the target, read back: never replayed
      return true;
    }
    const e = this.core;
    const st = this.stats;
    st.clientPackets++;
    const p = e.piece;
    const captured = payloadCaptured(seg);
    p.seq = seg.seq;
    p.buf = seg.buf;
    p.off = seg.payloadOff;
    p.len = captured;
    p.fin = (seg.flags & TCP_FIN) !== 0;
    p.rst = (seg.flags & TCP_RST) !== 0;
    p.ackOk = (seg.flags & TCP_ACK) !== 0;
    p.ack = seg.ack;
    p.tsVal = seg.hasTs ? seg.tsVal : 0;
    st.clientBytes += captured;
    const origKey = addressKey(seg.srcIp, seg.srcPort);
    const isSyn = (seg.flags & (TCP_SYN | TCP_ACK)) === TCP_SYN;
    if (
      e.unreplayed.isSampledOut(seg.srcIp, seg.srcPort, origKey, isSyn, e.byCapture[0]?.has(origKey) === true, p, now)
    )
      return true;
    const group = this.groups.get(t);
    const fan = group === undefined ? 1 : group.length;
    const n = this.cfg.replicas;
    if (!this.cfg.ipv6Channel && seg.srcIp >= IPV6_BASE) {
      // a 1.x channel cannot register IPv6 clients: not replayed, counted with its own reason
      for (let ti = 0; ti < fan; ti++)
        for (let v = 0; v < n; v++) e.unreplayed.countNoIpv6Channel((rep * fan + ti) * n + v, origKey, p);
      return true;
    }
    for (let ti = 0; ti < fan; ti++) {
      const tt = group === undefined ? t : (group[ti] as EngineTransfer);
      for (let v = 0; v < n; v++)
        this.clientVariant(seg, now, tt, (rep * fan + ti) * n + v, origKey, isSyn, captured < seg.payloadLen);
    }
    return true;
  }

  private clientVariant(
    seg: TcpSegment,
    now: number,
    t: EngineTransfer,
    variant: number,
    origKey: number,
    isSyn: boolean,
    cut: boolean,
  ): void {
    const e = this.core;
    let map = e.byCapture[variant];
    if (map === undefined) {
      map = new Map();
      e.byCapture[variant] = map;
    }
    let s = map.get(origKey);
    if (isSyn) {
      if (s !== undefined && s.isn === seg.seq && s.state !== SessionState.Closed) return; // SYN retransmitted
      e.unreplayed.forgetEnded(variant, origKey);
      if (newSession(e, seg, now, t, variant, origKey, map, s, false) === undefined)
        e.unreplayed.countRefused(variant, origKey, e.piece, e.admitting ? 'evicted' : 'overload');
      return;
    }
    if (s === undefined && e.unreplayed.refusal(variant, origKey) !== null) {
      // the rest of a connection refused at the session cap or over the memory budget
      e.unreplayed.countRefused(variant, origKey, e.piece, e.unreplayed.refusal(variant, origKey) ?? 'evicted');
      return;
    }
    if (s === undefined && e.unreplayed.afterEnd(variant, origKey, e.piece, now)) return;
    if (s === undefined && e.unreplayed.afterIdleEnd(variant, origKey, e.piece, now)) return;
    if (s === undefined) {
      const p = e.piece;
      if (p.rst || (p.len === 0 && !p.fin)) {
        this.stats.clientOrphans++;
        return;
      }
      if (this.cfg.onlySyn) {
        // counted once per connection; its requests are lost as 'noSyn'
        e.unreplayed.countNoSyn(variant, origKey, p);
        return;
      }
      s = newSession(e, seg, now, t, variant, origKey, map, undefined, true);
      if (s === undefined) {
        e.unreplayed.countRefused(variant, origKey, p, e.admitting ? 'evicted' : 'overload');
        return;
      }
    }
    if (cut) {
      // the capture kept fewer payload bytes than the packet had (snaplen): replaying would send garbage
      endSession(e, s, 'captureGap', now);
      return;
    }
    s.lastActivity = now;
    if (appendCaptured(s, e.piece, now, this.stats, e.pool)) {
      if (s.mod !== null) {
        feedModule(e, s, now);
        if (endIfModuleAsked(e, s, now)) return;
      }
      if (backlogBytes(s) > this.cfg.maxBacklogBytes) {
        // fallen this far behind the client: given up, counted (the rest of the connection too)
        endSession(e, s, 'backlog', now);
        return;
      }
      if (s.state === SessionState.Established) {
        afterChange(e, s, now, transmit(e, s, now));
        return;
      }
    }
    rearm(e, s);
  }

  /**
   * A captured online server -> client packet (only with a module that wantsOnlineReplies): its
   * payload goes, in order, to the module of every replay variant of that connection. Returns
   * false when it belongs to no transfer or no session.
   */
  onOnlinePacket(seg: TcpSegment, now: number): boolean {
    const e = this.core;
    if (e.modules === null || !this.wantsOnlineReplies) return false;
    if (this.transferOf(seg.srcIp, seg.srcPort) === undefined) return false;
    const key = addressKey(seg.dstIp, seg.dstPort);
    const syn = (seg.flags & TCP_SYN) !== 0;
    const carried = payloadCaptured(seg);
    let found = false;
    for (const map of e.byCapture) {
      const s = map.get(key);
      if (s === undefined || s.mod === null || s.state === SessionState.Closed) continue;
      found = true;
      onlineBytes(
        e,
        s,
        seg.seq,
        (seg.flags & TCP_ACK) !== 0 ? seg.ack : -1,
        syn,
        seg.buf,
        seg.payloadOff,
        carried,
        seg.payloadLen,
        now,
      );
      if (endIfModuleAsked(e, s, now)) continue;
      if (s.state === SessionState.Established) afterChange(e, s, now, transmit(e, s, now));
      else rearm(e, s);
    }
    return found;
  }

  /**
   * One reply reported by intercept (its IPv4 and TCP headers; the payload length comes from the
   * IP total length), with the payload bytes intercept sent for it (`payload`: channel v2 for a
   * session that asked, or a 1.x 192-byte record), null when none. The payload matters only to
   * module sessions. Returns false when no session owns it.
   */
  onReply(seg: TcpSegment, now: number, payload: ReplyBytes | null = null): boolean {
    return onReply(this.core, seg, now, payload);
  }

  /** Sends the ACKs owed for reply data received in this batch. Call after each batch. */
  flush(): void {
    flushAcks(this.core);
  }

  /** Runs every timer due at `now` (retransmissions, release waits, gaps, idle ends). */
  poll(now: number): void {
    pollTimers(this.core, now);
  }

  /**
   * Ends every session (end of an offline replay, shutdown): those whose captured data was all
   * acknowledged count as completed, those waiting for a capture hole as captureGap, the rest as unfinished.
   */
  finish(now: number): void {
    endAll(this.core, now);
    flushAcks(this.core);
  }
}
