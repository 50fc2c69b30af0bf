import { seqAdd, seqAfter, seqAfterEq, seqBefore, seqDiff } from '../seq';
import { TimerKind } from './timers';
import { emitIpv4Tcp, newTcpRepr, type TcpRepr } from '../wire/build';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from '../wire/segment';
import type { EngineConfig } from '../engine-config';
import type { EngineStats } from '../stats';
import { type Session, SessionState, type Unit } from './session';

/** Where the engine's packets and channel registrations go (injected; tests record them). */
export interface EngineOutput {
  /** A complete IPv4 packet for the target, checksums filled. Copy it: `buf` is reused. */
  packet(buf: Buffer, off: number, len: number): void;
  /** Tell every intercept about a client (CLIENT_ADD); always called before that session's SYN. */
  clientAdded(clientIp: number, clientPort: number, targetIp: number, targetPort: number): void;
  /** The session is over (CLIENT_DEL). */
  clientRemoved(clientIp: number, clientPort: number, targetIp: number, targetPort: number): void;
}

/** What transmit functions share: config, counters, the output and reused scratch space. */
export class TxContext {
  readonly repr: TcpRepr = newTcpRepr();
  readonly scratch: Buffer;
  private ipId = 1;
  constructor(
    readonly cfg: EngineConfig,
    readonly stats: EngineStats,
    readonly out: EngineOutput,
  ) {
    this.scratch = Buffer.alloc(Math.max(cfg.mtu, 1500) + 128);
  }

  /** Builds and emits one segment of session `s`. */
  emit(s: Session, seq: number, flags: number, data: Buffer | null, dOff: number, dLen: number, tsVal: number): void {
    const r = this.repr;
    r.srcIp = s.clientIp;
    r.dstIp = s.targetIp;
    r.srcPort = s.clientPort;
    r.dstPort = s.targetPort;
    r.seq = seq;
    r.ack = flags & TCP_ACK ? s.rcvNxt : 0;
    if (flags & TCP_ACK) {
      s.rcvAcked = s.rcvNxt;
      s.timer[TimerKind.DelAck] = Infinity;
    }
    r.flags = flags;
    r.ipId = this.ipId = (this.ipId + 1) & 0xffff;
    r.ttl = 64;
    if (flags & TCP_SYN) {
      r.window = Math.min(65535, this.cfg.advertisedWindow);
      r.mss = s.synMss;
      r.wscale = s.synWscale;
      r.sackOk = false; // we never process SACK blocks, so we do not offer them
      r.hasTs = s.synTs;
      r.tsVal = s.synTsVal;
      r.tsEcr = 0;
      s.tsSent = s.synTsVal;
    } else {
      r.window = this.cfg.advertisedWindow;
      r.mss = 0;
      r.wscale = -1;
      r.sackOk = false;
      r.hasTs = s.tsOn;
      // TSval never goes backwards (PAWS on the target would drop the segment): the captured
      // value of the unit, or the last one sent when that is later
      let ts = s.tsSent;
      if (tsVal !== 0 && ((tsVal - ts) | 0) > 0) ts = tsVal;
      s.tsSent = ts;
      r.tsVal = ts;
      r.tsEcr = s.tsRecent;
    }
    const len = emitIpv4Tcp(r, data, dOff, dLen, this.scratch, 0);
    this.stats.packetsSent++;
    this.stats.bytesSent += len;
    this.out.packet(this.scratch, 0, len);
  }
}

/** Sends (or re-sends) the session's SYN. */
export function sendSyn(ctx: TxContext, s: Session, now: number): void {
  ctx.emit(s, s.isn, TCP_SYN, null, 0, 0, 0);
  ctx.stats.synsSent++;
  if (s.rttSentAt < 0) {
    s.rttSentAt = now;
    s.rttSeq = s.isn;
  }
}

/** Sends a pure ACK for what the target has sent. */
export function sendAck(ctx: TxContext, s: Session): void {
  ctx.emit(s, s.sndNxt, TCP_ACK, null, 0, 0, 0);
  ctx.stats.acksSent++;
  s.ackPending = false;
}

/** Sends a RST at the current send sequence. */
export function sendRst(ctx: TxContext, s: Session, seq: number): void {
  ctx.emit(s, seq, TCP_RST | TCP_ACK, null, 0, 0, 0);
  ctx.stats.resetsSent++;
}

/** Result of the release check for the next unit. */
const enum Release {
  Go = 0,
  Wait = 1,
  GiveUp = 2,
}

/**
 * May unit `u` (which begins an exchange) go now? It waits until the target has answered the
 * previous request: as many reply bytes as the online server sent, or some reply followed by
 * max(`replyQuietMs`, 2 * SRTT) of silence, or the target's FIN. Arms the Wait timer when it must wait.
 */
function releaseCheck(ctx: TxContext, s: Session, u: Unit, now: number): Release {
  const cfg = ctx.cfg;
  if (cfg.noWait || !u.startsExchange || u.respBytes === 0 || s.targetFin) return Release.Go;
  const got = seqDiff(s.rcvNxt, s.respBase);
  if (got >= u.respBytes) return Release.Go;
  if (got > 0) {
    // silence only means "answer complete" on the scale of the round trip: a sender limited by
    // its congestion window pauses about one RTT between flights, so wait at least 2 * SRTT
    const at = s.lastReplyAt + Math.max(cfg.replyQuietMs, 2 * s.srtt);
    if (now >= at) return Release.Go;
    s.timer[TimerKind.Wait] = at;
    return Release.Wait;
  }
  const giveUpAt = s.lastActivity + cfg.replyTimeoutMs;
  if (now >= giveUpAt) return Release.GiveUp;
  s.timer[TimerKind.Wait] = giveUpAt;
  return Release.Wait;
}

/** Arms the retransmission timer if data is outstanding and it is not armed. */
function armRtx(s: Session, now: number): void {
  if (s.timer[TimerKind.Rtx] === Infinity && s.sndMax !== s.sndUna) s.timer[TimerKind.Rtx] = now + s.rto;
}

/**
 * Sends every segment the session may send now: in order, one captured unit per segment (split
 * at the MSS), within the target's window, each exchange released only after the reply to the
 * previous one. Returns 'giveup' when a reply never came (the caller ends the session), 'reset'
 * after replaying a client RST, else 'ok'.
 */
export function transmit(ctx: TxContext, s: Session, now: number): 'ok' | 'giveup' | 'reset' {
  if (s.state !== SessionState.Established) return 'ok';
  s.timer[TimerKind.Wait] = Infinity;
  for (;;) {
    const i = s.unitIndexAt(s.sndNxt);
    if (i >= s.units.length) break;
    const u = s.units[i] as Unit;
    const off = seqDiff(s.sndNxt, u.seq);
    const fresh = off === 0 && seqAfterEq(u.seq, s.sndMax);
    if (fresh) {
      const r = releaseCheck(ctx, s, u, now);
      if (r === Release.Wait) break;
      if (r === Release.GiveUp) return 'giveup';
    }
    if (u.rst) {
      // a reset goes only once everything before it was acknowledged, so no request is cut off
      if (s.sndUna !== u.seq) break;
      sendRst(ctx, s, u.seq);
      return 'reset';
    }
    const remaining = u.len - off;
    let n = 0;
    let flags = TCP_ACK;
    if (remaining > 0) {
      const wndLeft = s.sndWnd - seqDiff(s.sndNxt, s.sndUna);
      if (wndLeft <= 0) {
        if (s.sndNxt === s.sndUna && s.timer[TimerKind.Rtx] === Infinity) s.timer[TimerKind.Rtx] = now + s.rto; // persist timer
        break;
      }
      n = Math.min(remaining, s.sendMss, wndLeft);
      if (n === remaining) {
        flags |= TCP_PSH;
        if (u.fin) flags |= TCP_FIN;
      }
    } else if (u.fin) {
      flags |= TCP_FIN;
    } else {
      break;
    }
    if (fresh && u.startsExchange) {
      s.respBase = s.rcvNxt;
      if (u.len > 0) s.lagFrom = u.capturedAt;
    }
    ctx.emit(s, s.sndNxt, flags, u.data, u.dataOff + off, n, u.tsVal);
    s.ackPending = false;
    const span = n + (flags & TCP_FIN ? 1 : 0);
    const wasNew = seqAfterEq(s.sndNxt, s.sndMax);
    if (wasNew) ctx.stats.payloadBytesSent += n;
    else ctx.stats.retransTimeout++;
    if (wasNew && s.rttSentAt < 0) {
      s.rttSentAt = now;
      s.rttSeq = s.sndNxt;
    }
    s.sndNxt = seqAdd(s.sndNxt, span);
    if (seqAfter(s.sndNxt, s.sndMax)) s.sndMax = s.sndNxt;
    armRtx(s, now);
  }
  return 'ok';
}

/**
 * The retransmission/persist timer fired: go back to sndUna and send again (Go-Back-N within
 * the window), doubling the timeout. Returns false when the retries are exhausted.
 */
export function onRtxTimeout(ctx: TxContext, s: Session, now: number): boolean {
  s.timer[TimerKind.Rtx] = Infinity;
  if (s.state === SessionState.SynSent) {
    if (++s.retries >= ctx.cfg.maxSynTries) return false;
    s.rto = Math.min(s.rto * 2, ctx.cfg.rtoMaxMs);
    s.rttSentAt = -1; // Karn: no RTT sample from a retransmitted SYN
    sendSyn(ctx, s, now);
    s.rttSentAt = -1;
    s.timer[TimerKind.Rtx] = now + s.rto;
    return true;
  }
  if (s.sndMax === s.sndUna && s.sndWnd > 0) return true; // nothing outstanding any more
  if (++s.retries > ctx.cfg.maxRetries) return false;
  s.rto = Math.min(s.rto * 2, ctx.cfg.rtoMaxMs);
  s.rttSentAt = -1;
  s.dupAcks = 0;
  if (s.sndWnd === 0) {
    probeWindow(ctx, s);
  } else {
    s.sndNxt = s.sndUna;
    transmit(ctx, s, now);
  }
  s.timer[TimerKind.Rtx] = now + s.rto;
  return true;
}

/** Zero-window probe: one byte of the next unsent data (or a bare ACK when there is none). */
function probeWindow(ctx: TxContext, s: Session): void {
  const i = s.unitIndexAt(s.sndUna);
  const u = s.units[i];
  ctx.stats.windowProbes++;
  if (u === undefined || u.len === 0) {
    sendAck(ctx, s);
    return;
  }
  const off = seqDiff(s.sndUna, u.seq);
  ctx.emit(s, s.sndUna, TCP_ACK, u.data, u.dataOff + off, Math.min(1, u.len - off), u.tsVal);
  const next = seqAdd(s.sndUna, 1);
  if (seqAfter(next, s.sndMax)) s.sndMax = next;
  if (seqBefore(s.sndNxt, next)) s.sndNxt = next;
}

/** Three duplicate ACKs: resend the segment at sndUna once. */
export function fastRetransmit(ctx: TxContext, s: Session, now: number): void {
  const i = s.unitIndexAt(s.sndUna);
  const u = s.units[i];
  if (u === undefined || u.rst) return;
  const off = seqDiff(s.sndUna, u.seq);
  const rem = u.len - off;
  const n = Math.min(rem, s.sendMss);
  let flags = TCP_ACK;
  if (n === rem && u.fin) flags |= TCP_FIN;
  if (n === 0 && !u.fin) return;
  ctx.emit(s, s.sndUna, flags, u.data, u.dataOff + off, n, u.tsVal);
  ctx.stats.retransFast++;
  s.rttSentAt = -1;
  s.timer[TimerKind.Rtx] = now + s.rto;
}

/** RFC 6298 RTT estimator update with one sample (ms). */
export function rttSample(ctx: TxContext, s: Session, r: number): void {
  if (s.srtt === 0) {
    s.srtt = r;
    s.rttvar = r / 2;
  } else {
    s.rttvar = 0.75 * s.rttvar + 0.25 * Math.abs(s.srtt - r);
    s.srtt = 0.875 * s.srtt + 0.125 * r;
  }
  s.rto = Math.min(ctx.cfg.rtoMaxMs, Math.max(ctx.cfg.rtoInitialMs, s.srtt + 4 * s.rttvar));
}
