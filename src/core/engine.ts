import { mapClientIp, nextVariantPort, variantPort } from './client-map';
import { Unreplayed } from './unreplayed';
import type { EngineConfig, EngineTransfer } from './engine-config';
import { seqAdd, seqAfter, seqBeforeEq, seqDiff } from './seq';
import { type EngineStats, newEngineStats, type Outcome, recordLag } from './stats';
import { appendCaptured, type CapturedPiece, parkedRequests } from './session/capture';
import { absorbOutOfOrder, noteOutOfOrder } from './session/reassembly';
import { Session, SessionState } from './session/session';
import { TimerHeap } from './session/timer-heap';
import { type EngineOutput, TxContext, fastRetransmit, onRtxTimeout, rttSample, sendAck, sendRst, sendSyn, transmit } from './session/transmit';
import { payloadCaptured } from './wire/decode';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, type TcpSegment } from './wire/segment';

export type { EngineOutput } from './session/transmit';

/** Integer key of an address and port (exact in a double: < 2^48). */
function key(ip: number, port: number): number {
  return ip * 65536 + port;
}

/**
 * The replay engine: one simulated client per captured connection. Pure and deterministic:
 * it is fed captured client packets and intercept's reply headers with the current time, emits
 * packets through `out`, and exposes its next deadline; the caller calls `poll(now)` then.
 */
export class ReplayEngine {
  readonly stats: EngineStats = newEngineStats();
  private readonly ctx: TxContext;
  /** Per replay variant: original client ip:port -> the newest session of that connection. */
  private readonly byCapture: Map<number, Session>[] = [];
  /** Replayed client ip:port -> the session that owns the target's replies to it. */
  private readonly byReply = new Map<number, Session>();
  private readonly timers = new TimerHeap<Session>();
  /** Sessions that owe the target an ACK, flushed by flush(). */
  private readonly ackQueue: Session[] = [];
  private readonly piece: CapturedPiece = { seq: 0, buf: null, off: 0, len: 0, fin: false, rst: false, ackOk: false, ack: 0, tsVal: 0 };
  private readonly portIndex = new Map<number, EngineTransfer[]>();
  /** Whether the intercept channel is up (told by the runner through setChannelUp). */
  private channelUp = true;
  /** Per replay variant: connections skipped by -O (no SYN) or refused at the session cap -> last captured ack. */
  /** Connections seen but not replayed (sampling, -O, session cap, tails of ended replays). */
  private readonly unreplayed: Unreplayed;

  constructor(readonly cfg: EngineConfig, out: EngineOutput) {
    this.ctx = new TxContext(cfg, this.stats, out);
    this.unreplayed = new Unreplayed(cfg, this.stats);
    for (const t of cfg.transfers) {
      const list = this.portIndex.get(t.onlinePort) ?? [];
      list.push(t);
      this.portIndex.set(t.onlinePort, list);
    }
  }

  /** The transfer a client->server packet belongs to, or undefined when it is not ours. */
  transferOf(dstIp: number, dstPort: number): EngineTransfer | undefined {
    const list = this.portIndex.get(dstPort);
    if (list === undefined) return undefined;
    for (const t of list) if (t.onlineIp === 0 || t.onlineIp === dstIp) return t;
    return undefined;
  }

  /** Sessions currently in the table. */
  get activeSessions(): number {
    return this.stats.sessionsActive;
  }

  /** Sessions that still have captured data not yet acknowledged by the target. */
  busySessions(): number {
    let n = 0;
    for (const s of this.byReply.values()) if (s.sndUna !== s.capNxt || s.state !== SessionState.Established || s.successor !== null || s.ooo.length > 0) n++;
    return n;
  }

  /** Calls `fn` for every session that owns a client address on the target (to re-register it with an intercept that reconnected). */
  forEachClient(fn: (clientIp: number, clientPort: number, targetIp: number, targetPort: number) => void): void {
    for (const s of this.byReply.values()) fn(s.clientIp, s.clientPort, s.targetIp, s.targetPort);
  }

  /**
   * The runner tells the engine when the intercept channel goes down or comes back. Sessions in
   * SYN-SENT during an outage that then time out, and sessions that time out or stay unfinished
   * while it is down, end as 'channelDown' instead of a target failure.
   */
  setChannelUp(up: boolean): void {
    if (this.channelUp === up) return;
    this.channelUp = up;
    if (!up) for (const s of this.byReply.values()) if (s.state === SessionState.SynSent) s.handshakeOutage = true;
  }

  /** Whether the engine was last told the channel is up. */
  get isChannelUp(): boolean {
    return this.channelUp;
  }

  /** Earliest time poll() has work to do (Infinity when none). */
  nextDeadline(): number {
    return this.ackQueue.length > 0 ? -Infinity : this.timers.peekDeadline();
  }

  /**
   * A captured client->server packet. `rep` is the offline repetition index (-T), 0 live.
   * Returns false when it belongs to no transfer (the caller counts it).
   */
  onClientPacket(seg: TcpSegment, now: number, rep = 0): boolean {
    const t = this.transferOf(seg.dstIp, seg.dstPort);
    if (t === undefined) return false;
    const st = this.stats;
    st.clientPackets++;
    const p = this.piece;
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
    const origKey = key(seg.srcIp, seg.srcPort);
    const isSyn = (seg.flags & (TCP_SYN | TCP_ACK)) === TCP_SYN;
    if (this.unreplayed.isSampledOut(seg.srcIp, seg.srcPort, origKey, isSyn, this.byCapture[0]?.has(origKey) === true, p, now)) return true;
    for (let v = 0; v < this.cfg.replicas; v++) {
      this.clientVariant(seg, now, t, rep * this.cfg.replicas + v, origKey, isSyn, captured < seg.payloadLen);
    }
    return true;
  }

  private clientVariant(seg: TcpSegment, now: number, t: EngineTransfer, variant: number, origKey: number, isSyn: boolean, cut: boolean): void {
    let map = this.byCapture[variant];
    if (map === undefined) {
      map = new Map();
      this.byCapture[variant] = map;
    }
    let s = map.get(origKey);
    if (isSyn) {
      if (s !== undefined && s.isn === seg.seq && s.state !== SessionState.Closed) return; // SYN retransmitted
      this.unreplayed.forgetEnded(variant, origKey);
      if (this.newSession(seg, now, t, variant, origKey, map, s, false) === undefined) this.unreplayed.countEvicted(variant, origKey, this.piece);
      return;
    }
    if (s === undefined && this.unreplayed.isEvicted(variant, origKey)) {
      this.unreplayed.countEvicted(variant, origKey, this.piece); // the rest of a connection refused at the session cap
      return;
    }
    if (s === undefined && this.unreplayed.afterEnd(variant, origKey, this.piece, now)) return;
    if (s === undefined) {
      const p = this.piece;
      if (p.rst || (p.len === 0 && !p.fin)) {
        this.stats.clientOrphans++;
        return;
      }
      if (this.cfg.onlySyn) {
        // counted once per connection; its requests are lost as 'noSyn'
        this.unreplayed.countNoSyn(variant, origKey, p);
        return;
      }
      s = this.newSession(seg, now, t, variant, origKey, map, undefined, true);
      if (s === undefined) {
        this.unreplayed.countEvicted(variant, origKey, p);
        return;
      }
    }
    if (cut) {
      // the capture kept fewer payload bytes than the packet had (snaplen): replaying would send garbage
      this.endSession(s, 'captureGap', now);
      return;
    }
    s.lastActivity = now;
    if (appendCaptured(s, this.piece, now, this.stats) && s.state === SessionState.Established) {
      this.afterChange(s, now, transmit(this.ctx, s, now));
      return;
    }
    this.rearm(s);
  }

  private newSession(seg: TcpSegment, now: number, t: EngineTransfer, variant: number, origKey: number, map: Map<number, Session>, prev: Session | undefined, synth: boolean): Session | undefined {
    const st = this.stats;
    const cfg = this.cfg;
    if (st.sessionsActive >= cfg.maxSessions) return undefined; // counted by unreplayed.countEvicted
    const s = new Session();
    s.origClientIp = seg.srcIp;
    s.origClientPort = seg.srcPort;
    s.variant = variant;
    s.captureKey = origKey;
    s.targetIp = t.targetIp;
    s.targetPort = t.targetPort;
    s.synthesized = synth;
    s.isn = synth ? seqAdd(seg.seq, -1) : seg.seq;
    s.capNxt = seqAdd(s.isn, 1);
    if (synth) {
      s.synMss = cfg.mss;
      s.synWscale = cfg.synthWscale;
      s.synTs = seg.hasTs;
      s.synTsVal = seg.hasTs ? seqAdd(seg.tsVal, -1) : 0;
      st.sessionsSynthesized++;
    } else {
      s.synMss = seg.mss !== 0 ? Math.min(seg.mss, cfg.mss) : cfg.mss;
      s.synWscale = seg.wscale;
      s.synSackOk = seg.sackOk;
      s.synTs = seg.hasTs;
      s.synTsVal = seg.tsVal;
    }
    s.lastTsVal = s.synTsVal;
    s.rto = cfg.rtoInitialMs;
    s.lastActivity = now;
    st.sessionsCreated++;
    st.sessionsActive++;
    map.set(origKey, s);
    if (prev !== undefined && prev.state !== SessionState.Closed) {
      // the client reused its address and port while the previous replay is still closing:
      // the new connection waits for it instead of being lost
      s.clientIp = prev.clientIp;
      s.clientPort = prev.clientPort;
      s.replyKey = prev.replyKey;
      let tail = prev;
      while (tail.successor !== null) tail = tail.successor;
      tail.successor = s;
      if (prev.sndUna === prev.capNxt && prev.capClosed) this.endSession(prev, 'completed', now);
      else if (prev.sndUna === prev.capNxt) this.endSession(prev, 'superseded', now);
      return s;
    }
    const src = cfg.localhostIp !== 0 && seg.srcIp >>> 24 === 127 ? cfg.localhostIp : seg.srcIp;
    s.clientIp = mapClientIp(cfg.clientIps, src);
    let port = variantPort(seg.srcPort, variant, cfg.portOffset);
    let rk = key(s.clientIp, port);
    for (let tries = 0; this.byReply.has(rk) && tries < 65536; tries++) {
      port = nextVariantPort(port);
      rk = key(s.clientIp, port);
    }
    s.clientPort = port;
    s.replyKey = rk;
    this.start(s, now);
    return s;
  }

  /** Registers the client with intercept, then sends the SYN. */
  private start(s: Session, now: number): void {
    this.byReply.set(s.replyKey, s);
    this.ctx.out.clientAdded(s.clientIp, s.clientPort, s.targetIp, s.targetPort);
    s.state = SessionState.SynSent;
    if (!this.channelUp) s.handshakeOutage = true;
    s.lastActivity = now;
    sendSyn(this.ctx, s, now);
    s.rtxAt = now + s.rto;
    this.rearm(s);
  }

  /**
   * One reply reported by intercept (its IPv4 and TCP headers; the payload length comes from the
   * IP total length). Returns false when no session owns it.
   */
  onReply(seg: TcpSegment, now: number): boolean {
    const st = this.stats;
    st.replies++;
    const s = this.byReply.get(key(seg.dstIp, seg.dstPort));
    if (s === undefined || s.state === SessionState.Queued || seg.srcPort !== s.targetPort || seg.srcIp !== s.targetIp) {
      st.repliesNoSession++;
      return false;
    }
    s.lastActivity = now;
    const flags = seg.flags;
    if (s.state === SessionState.SynSent) {
      if ((flags & TCP_RST) !== 0) {
        if ((flags & TCP_ACK) !== 0 && seg.ack === seqAdd(s.isn, 1)) this.endSession(s, 'targetRefused', now);
        return true;
      }
      if ((flags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK) && seg.ack === seqAdd(s.isn, 1)) {
        this.established(s, seg, now);
      } else if ((flags & (TCP_ACK | TCP_SYN)) === TCP_ACK) {
        // an ACK without SYN: the target still holds an older connection on this port (a
        // challenge ACK, possibly even acking our ISN when a capture is replayed twice); reset
        // it with <SEQ=SEG.ACK> (RFC 9293 3.10.7.3) so the next SYN gets through
        this.ctx.emit(s, seg.ack, TCP_RST, null, 0, 0, 0);
        this.stats.resetsSent++;
        if (s.rtxAt > now + 1) {
          s.rtxAt = now + 1;
          this.rearm(s);
        }
      }
      return true;
    }
    if ((flags & TCP_RST) !== 0) {
      const done = s.sndUna === s.capNxt;
      this.endSession(s, done ? 'completed' : 'targetReset', now, true);
      return true;
    }
    if ((flags & TCP_SYN) !== 0) {
      // our handshake ACK was lost: the target repeats its SYN-ACK
      this.queueAck(s);
      return true;
    }
    if (seg.hasTs && s.tsOn && seqBeforeEq(seg.seq, s.rcvNxt)) s.tsRecent = seg.tsVal;
    if ((flags & TCP_ACK) !== 0) this.onAck(s, seg, now);
    if (s.state === SessionState.Closed) return true;
    const len = seg.payloadLen + ((flags & TCP_FIN) !== 0 ? 1 : 0);
    if (len > 0) {
      const end = seqAdd(seg.seq, len);
      const inOrder = seqBeforeEq(seg.seq, s.rcvNxt) && seqAfter(end, s.rcvNxt);
      if (inOrder) {
        const fresh = seqDiff(end, s.rcvNxt);
        st.replyBytes += fresh - ((flags & TCP_FIN) !== 0 ? 1 : 0);
        s.rcvNxt = end;
        s.lastReplyAt = now;
        if ((flags & TCP_FIN) !== 0) s.targetFin = true;
        if (s.rcvOoo.length > 0) st.replyBytes += absorbOutOfOrder(s);
        if (s.lagFrom >= 0 && seg.payloadLen > 0) {
          recordLag(st, now - s.lagFrom);
          s.lagFrom = -1;
        }
      } else if (seqAfter(seg.seq, s.rcvNxt)) {
        noteOutOfOrder(s, seg.seq, end, (flags & TCP_FIN) !== 0);
      }
      // duplicates and segments beyond a hole are acknowledged at once (the target is retransmitting)
      // Only the end of a reply (PSH) waits for a request to carry its ACK: the target has
      // nothing more to send until that request, so no Nagle stall can follow. Segments in the
      // middle of a reply, FINs, duplicates and segments beyond a hole are acknowledged at once.
      this.ackReplyData(s, now, (flags & (TCP_FIN | TCP_PSH)) !== TCP_PSH || !inOrder);
    }
    this.afterChange(s, now, transmit(this.ctx, s, now));
    return true;
  }

  private established(s: Session, seg: TcpSegment, now: number): void {
    const cfg = this.cfg;
    s.targetIsn = seg.seq;
    s.rcvNxt = seqAdd(seg.seq, 1);
    s.respBase = s.rcvNxt;
    s.sndWscale = s.synWscale >= 0 && seg.wscale >= 0 ? seg.wscale : -1;
    if (s.sndWscale < 0) s.synWscale = -1;
    s.tsOn = s.synTs && seg.hasTs;
    if (s.tsOn) s.tsRecent = seg.tsVal;
    const mss = Math.min(seg.mss !== 0 ? seg.mss : 536, cfg.mtu - 40);
    s.sendMss = Math.max(1, mss - (s.tsOn ? 12 : 0));
    s.sndWnd = seg.window;
    s.sndUna = s.sndNxt = s.sndMax = seqAdd(s.isn, 1);
    s.state = SessionState.Established;
    if (s.rttSentAt >= 0) rttSample(this.ctx, s, now - s.rttSentAt);
    s.rttSentAt = -1;
    s.rtxAt = Infinity;
    s.retries = 0;
    // the third handshake segment may carry data: when a captured request is ready it completes
    // the handshake itself (one packet fewer per connection); otherwise a bare ACK does
    const before = this.stats.packetsSent;
    const r = transmit(this.ctx, s, now);
    if (this.stats.packetsSent === before || s.state !== SessionState.Established) sendAck(this.ctx, s);
    this.afterChange(s, now, r);
  }

  private onAck(s: Session, seg: TcpSegment, now: number): void {
    const ack = seg.ack;
    const oldWnd = s.sndWnd;
    s.sndWnd = seg.window << (s.sndWscale > 0 ? s.sndWscale : 0);
    if (seqAfter(ack, s.sndMax)) return; // acknowledges what we never sent
    if (seqAfter(ack, s.sndUna)) {
      if (s.rttSentAt >= 0 && seqAfter(ack, s.rttSeq)) {
        rttSample(this.ctx, s, now - s.rttSentAt);
        s.rttSentAt = -1;
      }
      s.sndUna = ack;
      if (seqAfter(s.sndUna, s.sndNxt)) s.sndNxt = s.sndUna;
      s.retries = 0;
      s.dupAcks = 0;
      s.rtxAt = s.sndUna === s.sndMax ? Infinity : now + s.rto;
      const rs = s.requestSeqs;
      while (rs.length > 0 && seqAfter(ack, rs[0] as number)) {
        rs.shift();
        s.requestsReplayed++;
        this.stats.requestsReplayed++;
      }
      s.dropAcked();
    } else if (ack === s.sndUna && seg.payloadLen === 0 && (seg.flags & TCP_FIN) === 0 && s.sndMax !== s.sndUna && s.sndWnd === oldWnd) {
      if (++s.dupAcks === 3) fastRetransmit(this.ctx, s, now);
    }
  }

  /**
   * Reply data arrived: acknowledge it now (two full segments unacknowledged, a FIN, a hole,
   * delayed ACKs off) or within delayedAckMs, unless a request carries the ACK first.
   */
  private ackReplyData(s: Session, now: number, urgent: boolean): void {
    const d = this.cfg.delayedAckMs;
    if (d <= 0 || urgent || seqDiff(s.rcvNxt, s.rcvAcked) >= 2 * Math.max(536, s.sendMss)) {
      this.queueAck(s);
    } else if (s.delackAt === Infinity) {
      s.delackAt = now + d;
    }
  }

  private queueAck(s: Session): void {
    if (!s.ackPending) {
      s.ackPending = true;
      this.ackQueue.push(s);
    }
  }

  /** After anything changed: ends finished sessions, re-arms the timer. */
  private afterChange(s: Session, now: number, r: 'ok' | 'giveup' | 'reset'): void {
    if (s.state === SessionState.Closed) return;
    if (r === 'giveup') return this.endSession(s, 'targetTimeout', now);
    if (r === 'reset') return this.endSession(s, 'clientReset', now, true);
    if (s.capClosed && s.sndUna === s.capNxt && s.ooo.length === 0) {
      if (s.targetFin) {
        if (s.ackPending || s.rcvAcked !== s.rcvNxt) sendAck(this.ctx, s); // acknowledge the target's FIN before forgetting
        return this.endSession(s, 'completed', now, true);
      }
      // our FIN is acknowledged and a newer connection waits for this client port
      if (s.successor !== null) return this.endSession(s, 'completed', now, true);
    }
    this.rearm(s);
  }

  /** Sends the ACKs owed for reply data received in this batch. Call after each batch. */
  flush(): void {
    const q = this.ackQueue;
    for (let i = 0; i < q.length; i++) {
      const s = q[i] as typeof q[number];
      if (s.ackPending && s.state === SessionState.Established) sendAck(this.ctx, s);
      s.ackPending = false;
    }
    q.length = 0;
  }

  /** Runs every timer due at `now` (retransmissions, release waits, gaps, idle ends). */
  poll(now: number): void {
    this.flush();
    const timers = this.timers;
    for (let guard = 0; timers.peekDeadline() <= now && guard < 1_000_000; guard++) {
      const s = timers.peek() as Session;
      timers.remove(s);
      this.onTimer(s, now);
    }
    this.flush();
  }

  private onTimer(s: Session, now: number): void {
    const cfg = this.cfg;
    if (s.state === SessionState.Closed) return;
    if (s.gapSince >= 0 && now >= s.gapSince + cfg.gapTimeoutMs && s.sndNxt === s.capNxt) {
      return this.endSession(s, 'captureGap', now);
    }
    if (now >= s.rtxAt) {
      if (!onRtxTimeout(this.ctx, s, now)) {
        return this.endSession(s, s.state === SessionState.SynSent ? 'targetNoHandshake' : 'targetTimeout', now);
      }
    }
    if (now >= s.delackAt) {
      s.delackAt = Infinity;
      if (s.state === SessionState.Established && s.rcvAcked !== s.rcvNxt) sendAck(this.ctx, s);
    }
    if (now >= s.waitAt) {
      const r = transmit(this.ctx, s, now);
      if (r !== 'ok') return this.afterChange(s, now, r);
    }
    if (now >= this.idleDeadline(s)) {
      const drained = s.sndUna === s.capNxt && s.state === SessionState.Established;
      return this.endSession(s, drained ? 'completed' : 'idleTimeout', now);
    }
    this.afterChange(s, now, 'ok');
  }

  private idleDeadline(s: Session): number {
    const drained = s.sndUna === s.capNxt;
    return s.lastActivity + (drained ? this.cfg.keepaliveTimeoutMs : this.cfg.sessionTimeoutMs);
  }

  private rearm(s: Session): void {
    if (s.state === SessionState.Closed || s.state === SessionState.Queued) return;
    let d = Math.min(s.rtxAt, s.waitAt, s.delackAt, this.idleDeadline(s));
    if (s.gapSince >= 0) d = Math.min(d, s.gapSince + this.cfg.gapTimeoutMs);
    this.timers.set(s, d);
  }

  /** Ends a session with exactly one outcome; frees the target side; starts a queued successor. */
  private endSession(s: Session, reason: Outcome, now: number, closedOnTarget = false): void {
    if (s.state === SessionState.Closed) return;
    const st = this.stats;
    let outcome = reason;
    // the target's replies could not be seen: blame the channel, not the target
    if (reason === 'targetNoHandshake' && (s.handshakeOutage || !this.channelUp)) outcome = 'channelDown';
    else if (!this.channelUp && (reason === 'targetTimeout' || reason === 'idleTimeout' || reason === 'unfinished') && s.state !== SessionState.Queued) outcome = 'channelDown';
    if (s.state === SessionState.Established && !closedOnTarget) {
      // the target accepts a RST only at exactly its rcv_nxt: what it last acknowledged, or,
      // if that ACK was lost, the highest sequence sent
      sendRst(this.ctx, s, s.sndUna);
      if (s.sndMax !== s.sndUna) sendRst(this.ctx, s, s.sndMax);
    }
    const wasStarted = s.state !== SessionState.Queued;
    s.state = SessionState.Closed;
    this.timers.remove(s);
    st.sessionsActive--;
    st.outcomes[outcome]++;
    if (s.ooo.length > 0) {
      // requests parked behind a capture hole that was never filled: captured, and lost
      const parked = parkedRequests(s);
      s.requestsCaptured += parked;
      st.requestsCaptured += parked;
    }
    const lost = s.requestsCaptured - s.requestsReplayed;
    if (lost > 0) st.requestsLost[outcome] += lost;
    if (!s.capClosed && (s.ooo.length > 0 || s.sndUna !== s.capNxt) && reason !== 'superseded') {
      this.unreplayed.rememberEnded(s.variant, s.captureKey, s.lastAckValid ? s.lastAck : -1, outcome, now);
    }
    s.units.length = 0;
    s.ooo.length = 0;
    const map = this.byCapture[s.variant];
    if (map !== undefined && map.get(s.captureKey) === s) map.delete(s.captureKey);
    if (wasStarted) {
      if (this.byReply.get(s.replyKey) === s) this.byReply.delete(s.replyKey);
      this.ctx.out.clientRemoved(s.clientIp, s.clientPort, s.targetIp, s.targetPort);
    }
    const next = s.successor;
    s.successor = null;
    if (next !== null && next.state === SessionState.Queued) {
      next.successor = next.successor ?? null;
      this.start(next, now);
      if (next.units.length > 0) this.rearm(next);
    }
  }

  /**
   * Ends every session (end of an offline replay, shutdown): those whose captured data was all
   * acknowledged count as completed, those waiting for a capture hole as captureGap, the rest as unfinished.
   */
  finish(now: number): void {
    for (const map of this.byCapture) {
      for (const s of [...map.values()]) {
        let x: Session | null = s;
        while (x !== null) {
          const nx: Session | null = x.successor;
          const drained = x.sndUna === x.capNxt && x.state === SessionState.Established;
          x.successor = null;
          this.endSession(x, x.ooo.length > 0 ? 'captureGap' : drained ? 'completed' : 'unfinished', now);
          x = nx;
        }
      }
    }
    for (const s of [...this.byReply.values()]) this.endSession(s, 'unfinished', now);
    this.flush();
  }
}
