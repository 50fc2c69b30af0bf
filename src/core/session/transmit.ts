import { seqAdd, seqAfter, seqAfterEq, seqBefore, seqDiff } from '../seq';
import { emitIpTcp } from '../wire/build';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from '../wire/segment';
import type { EngineState } from '../engine-state';
import { type Session, SessionState, type Unit } from './session';
import { TimerKind } from './timers';
import { moduleAnswered } from '../engine-module';

/**
 * Builds and emits one segment of session `s`: `len` payload bytes from `data[off ..]` (none
 * when len is 0), TSval at least `tsVal` (0: the last one sent). Callers use the named helpers
 * below (sendBare, sendUnitBytes) rather than this positional form.
 */
function emitSegment(
  e: EngineState,
  s: Session,
  seq: number,
  flags: number,
  data: Buffer | null,
  off: number,
  len: number,
  tsVal: number,
): void {
  const r = e.repr;
  const cfg = e.cfg;
  const reply = s.reply;
  r.srcIp = s.clientIp;
  r.dstIp = s.targetIp;
  r.srcPort = s.clientPort;
  r.dstPort = s.targetPort;
  r.seq = seq;
  r.ack = flags & TCP_ACK ? reply.nxt : 0;
  if (flags & TCP_ACK) {
    reply.acked = reply.nxt;
    s.timer[TimerKind.DelAck] = Infinity;
  }
  r.flags = flags;
  r.ipId = e.nextIpId();
  r.ttl = 64;
  if (flags & TCP_SYN) {
    r.window = Math.min(65535, cfg.advertisedWindow);
    r.mss = s.synMss;
    r.wscale = s.synWscale;
    r.sackOk = false; // we never process SACK blocks, so we do not offer them
    r.hasTs = s.synTs;
    r.tsVal = s.synTsVal;
    r.tsEcr = 0;
    s.tsSent = s.synTsVal;
  } else {
    r.window = cfg.advertisedWindow;
    r.mss = 0;
    r.wscale = -1;
    r.sackOk = false;
    r.hasTs = s.tsOn;
    // TSval never goes backwards (PAWS on the target would drop the segment): the captured
    // value of the unit, or the last one sent when that is later
    let ts = s.tsSent;
    if (tsVal !== 0 && seqAfter(tsVal, ts)) ts = tsVal;
    s.tsSent = ts;
    r.tsVal = ts;
    r.tsEcr = s.tsRecent;
  }
  const n = emitIpTcp(r, data, off, len, e.scratch, 0);
  e.stats.packetsSent++;
  e.stats.bytesSent += n;
  e.out.packet(e.scratch, 0, n);
}

/** Emits a segment without payload (SYN, ACK, RST, FIN alone) at `seq`. */
export function sendBare(e: EngineState, s: Session, seq: number, flags: number): void {
  emitSegment(e, s, seq, flags, null, 0, 0, 0);
}

/** Emits `n` bytes of unit `u` from `off` bytes into it, at `seq`, with the unit's captured TSval. */
function sendUnitBytes(e: EngineState, s: Session, seq: number, flags: number, u: Unit, off: number, n: number): void {
  emitSegment(e, s, seq, flags, u.data, u.dataOff + off, n, u.tsVal);
}

/** Sends (or re-sends) the session's SYN. */
export function sendSyn(e: EngineState, s: Session, now: number): void {
  sendBare(e, s, s.isn, TCP_SYN);
  e.stats.synsSent++;
  s.rtt.time(s.isn, now);
}

/** Sends a pure ACK for what the target has sent. */
export function sendAck(e: EngineState, s: Session): void {
  sendBare(e, s, s.sndNxt, TCP_ACK);
  e.stats.acksSent++;
  s.ackPending = false;
}

/** Sends a RST at the current send sequence. */
export function sendRst(e: EngineState, s: Session, seq: number): void {
  sendBare(e, s, seq, TCP_RST | TCP_ACK);
  e.stats.resetsSent++;
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
 * max(`replyQuietMs`, 2 * SRTT) of silence (`closeQuietMs` before the client's FIN or RST),
 * or the target's FIN. Arms the Wait timer when it must wait.
 * Never waits with -W or a pipelined module (ProtocolModule.pipelined).
 */
function releaseCheck(e: EngineState, s: Session, u: Unit, now: number): Release {
  const cfg = e.cfg;
  if (cfg.noWait || !u.startsExchange || u.respBytes === 0 || s.reply.fin || cfg.module?.pipelined === true)
    return Release.Go;
  const got = seqDiff(s.reply.nxt, s.respBase);
  if (got >= u.respBytes) return Release.Go;
  // a module that follows the replies knows when the target's answer is complete
  if (s.mod !== null && moduleAnswered(e, s, u.seq)) return Release.Go;
  if (got > 0) {
    // silence only means "answer complete" on the scale of the round trip: a sender limited by
    // its congestion window pauses about one RTT between flights, so wait at least 2 * SRTT
    // the end of the stream waits longer: an early FIN ends the target's answer (closeQuietMs)
    const quiet = u.len === 0 ? cfg.closeQuietMs : cfg.replyQuietMs;
    const at = s.lastReplyAt + Math.max(quiet, 2 * s.rtt.srtt);
    if (now >= at) return Release.Go;
    s.timer[TimerKind.Wait] = at;
    return Release.Wait;
  }
  const giveUpAt = s.lastActivity + cfg.replyTimeoutMs;
  if (now >= giveUpAt) return Release.GiveUp;
  s.timer[TimerKind.Wait] = giveUpAt;
  return Release.Wait;
}

/**
 * Most units in flight (sent, not yet acknowledged) of a session replayed through a pipelined
 * module (ProtocolModule.pipelined), which does not wait for replies: without a bound, a
 * backlog (the messages held during a login, a Go-Back-N after a timeout) went out as thousands
 * of segments in one turn, and on a veth the send call runs the target's TCP stack for each:
 * seconds in one sendmmsg, the capture ring unread meanwhile (kernel drops, sessions ended as
 * captureGap). 32 units keep a pipelined pgbench session well ahead of production (measured
 * ~1,000 tx/s for 8 connections) while one turn sends at most 32 segments per session.
 */
export const PIPELINE_DEPTH = 32;

/** Arms the retransmission timer if data is outstanding and it is not armed. */
function armRtx(s: Session, now: number): void {
  if (s.timer[TimerKind.Rtx] === Infinity && s.sndMax !== s.sndUna) s.timer[TimerKind.Rtx] = now + s.rtt.rto;
}

/**
 * Sends every segment the session may send now: in order, one captured unit per segment (split
 * at the MSS), within the target's window, each exchange released only after the reply to the
 * previous one. Returns 'giveup' when a reply never came (the caller ends the session), 'reset'
 * after replaying a client RST, else 'ok'.
 */
export function transmit(e: EngineState, s: Session, now: number): 'ok' | 'giveup' | 'reset' {
  if (s.state !== SessionState.Established) return 'ok';
  s.timer[TimerKind.Wait] = Infinity;
  for (;;) {
    const i = s.unitIndexAt(s.sndNxt);
    if (i >= s.units.length) break;
    const u = s.units[i] as Unit;
    const off = seqDiff(s.sndNxt, u.seq);
    const fresh = off === 0 && seqAfterEq(u.seq, s.sndMax);
    if (fresh && i - s.head >= PIPELINE_DEPTH && e.cfg.module?.pipelined === true) break;
    if (fresh) {
      const r = releaseCheck(e, s, u, now);
      if (r === Release.Wait) break;
      if (r === Release.GiveUp) return 'giveup';
    }
    if (u.rst) {
      // a reset goes only once everything before it was acknowledged, so no request is cut off
      if (s.sndUna !== u.seq) break;
      sendRst(e, s, u.seq);
      return 'reset';
    }
    const remaining = u.len - off;
    let n = 0;
    let flags = TCP_ACK;
    if (remaining > 0) {
      const wndLeft = s.sndWnd - seqDiff(s.sndNxt, s.sndUna);
      if (wndLeft <= 0) {
        if (s.sndNxt === s.sndUna && s.timer[TimerKind.Rtx] === Infinity) s.timer[TimerKind.Rtx] = now + s.rtt.rto; // persist timer
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
      s.respBase = s.reply.nxt;
      if (u.len > 0) s.lagFrom = u.capturedAt;
    }
    sendUnitBytes(e, s, s.sndNxt, flags, u, off, n);
    s.ackPending = false;
    const span = n + (flags & TCP_FIN ? 1 : 0);
    const wasNew = seqAfterEq(s.sndNxt, s.sndMax);
    if (wasNew) e.stats.payloadBytesSent += n;
    else e.stats.retransTimeout++;
    if (wasNew) s.rtt.time(s.sndNxt, now);
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
export function onRtxTimeout(e: EngineState, s: Session, now: number): boolean {
  s.timer[TimerKind.Rtx] = Infinity;
  if (s.state === SessionState.SynSent) {
    if (++s.retries >= e.cfg.maxSynTries) return false;
    s.rtt.backOff(e.cfg.rtoMaxMs);
    s.rtt.cancel(); // Karn: no RTT sample from a retransmitted SYN
    sendSyn(e, s, now);
    s.rtt.cancel();
    s.timer[TimerKind.Rtx] = now + s.rtt.rto;
    return true;
  }
  if (s.sndMax === s.sndUna && s.sndWnd > 0) return true; // nothing outstanding any more
  if (++s.retries > e.cfg.maxRetries) return false;
  s.rtt.backOff(e.cfg.rtoMaxMs);
  s.rtt.cancel();
  s.dupAcks = 0;
  if (s.sndWnd === 0) {
    probeWindow(e, s);
  } else {
    s.sndNxt = s.sndUna;
    transmit(e, s, now);
  }
  s.timer[TimerKind.Rtx] = now + s.rtt.rto;
  return true;
}

/** Zero-window probe: one byte of the next unsent data (or a bare ACK when there is none). */
function probeWindow(e: EngineState, s: Session): void {
  const i = s.unitIndexAt(s.sndUna);
  const u = s.units[i];
  e.stats.windowProbes++;
  if (u === undefined || u.len === 0) {
    sendAck(e, s);
    return;
  }
  const off = seqDiff(s.sndUna, u.seq);
  sendUnitBytes(e, s, s.sndUna, TCP_ACK, u, off, Math.min(1, u.len - off));
  const next = seqAdd(s.sndUna, 1);
  if (seqAfter(next, s.sndMax)) s.sndMax = next;
  if (seqBefore(s.sndNxt, next)) s.sndNxt = next;
}

/** Three duplicate ACKs: resend the segment at sndUna once. */
export function fastRetransmit(e: EngineState, s: Session, now: number): void {
  const i = s.unitIndexAt(s.sndUna);
  const u = s.units[i];
  if (u === undefined || u.rst) return;
  const off = seqDiff(s.sndUna, u.seq);
  const rem = u.len - off;
  const n = Math.min(rem, s.sendMss);
  let flags = TCP_ACK;
  if (n === rem && u.fin) flags |= TCP_FIN;
  if (n === 0 && !u.fin) return;
  sendUnitBytes(e, s, s.sndUna, flags, u, off, n);
  e.stats.retransFast++;
  s.rtt.cancel();
  s.timer[TimerKind.Rtx] = now + s.rtt.rto;
}

/** One RTT sample (ms) for the session's estimator, the RTO kept within [-R, rtoMaxMs]. */
export function rttSample(e: EngineState, s: Session, r: number): void {
  s.rtt.sample(r, e.cfg.rtoInitialMs, e.cfg.rtoMaxMs);
}
