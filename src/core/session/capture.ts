import { seqAdd, seqAfter, seqBefore, seqBeforeEq, seqDiff } from '../seq';
import type { EngineStats } from '../stats';
import { type Session, type Unit, unitSpan } from './session';
import type { UnitPool } from './unit-pool';
import type { ModSession } from './module-state';

/** What appendCaptured needs to know of one captured client segment (copied out of the parser). */
export interface CapturedPiece {
  seq: number;
  /** Bytes holding the payload; only [off, off+len) is read, and copied. */
  buf: Buffer | null;
  off: number;
  len: number;
  fin: boolean;
  rst: boolean;
  /** The ACK flag was set and `ack` is meaningful. */
  ackOk: boolean;
  ack: number;
  tsVal: number;
}

/**
 * Adds a captured client segment to the session's stream: trims what was already captured
 * (retransmissions), parks segments beyond a hole (capture.parked), decides whether it begins an exchange
 * (the captured ack advanced: the server had answered), and counts requests.
 * Returns false when the segment added nothing (a duplicate). Units come from `pool`.
 */
export function appendCaptured(s: Session, p: CapturedPiece, now: number, stats: EngineStats, pool: UnitPool): boolean {
  if (s.capture.closed) {
    stats.clientDuplicates++;
    return false;
  }
  if (p.tsVal !== 0 && seqAfter(p.tsVal, s.capture.lastTsVal)) s.capture.lastTsVal = p.tsVal;
  if (p.rst) {
    // A reset ends the stream wherever it points; it is replayed after all captured data.
    const u = pool.take(s.capture.nxt, now, p.tsVal);
    u.rst = true;
    pushUnit(s, u, p, stats, pool);
    s.capture.closed = true;
    s.releaseParked(pool);
    s.capture.gapSince = -1;
    return true;
  }
  let seq = p.seq;
  let off = p.off;
  let len = p.len;
  const span = len + (p.fin ? 1 : 0);
  if (span === 0) {
    // pure ACK: only the handshake's ACK tells us something (the server's ISN + 1)
    if (!s.capture.lastAckValid && p.ackOk && s.requestsCaptured === 0) {
      s.capture.lastAck = p.ack;
      s.capture.lastAckValid = true;
    }
    return false;
  }
  if (seqBefore(seq, s.capture.nxt)) {
    const skip = seqDiff(s.capture.nxt, seq);
    if (skip >= span) {
      stats.clientDuplicates++;
      return false;
    }
    seq = s.capture.nxt;
    off += Math.min(skip, len);
    len = Math.max(0, len - skip);
  }
  if (seqAfter(seq, s.capture.nxt)) {
    parkOutOfOrder(s, p, seq, off, len, now, pool);
    return true;
  }
  pushUnit(s, unitOf(pool, p, seq, off, len, now), p, stats, pool);
  drainOutOfOrder(s, now, stats, pool);
  return true;
}

/** A unit holding `len` bytes of the piece's payload from `off` (at `seq`) and its FIN. */
function unitOf(pool: UnitPool, p: CapturedPiece, seq: number, off: number, len: number, now: number): Unit {
  const u = pool.take(seq, now, p.tsVal);
  pool.copyPayload(u, p.buf, off, len);
  u.fin = p.fin;
  return u;
}

/** Appends a unit at capture.nxt, classifying it (exchange start, request count). */
function pushUnit(s: Session, u: Unit, p: CapturedPiece, stats: EngineStats, pool: UnitPool): void {
  if (!s.capture.lastAckValid) {
    if (p.ackOk) {
      s.capture.lastAck = p.ack;
      s.capture.lastAckValid = true;
    }
    u.startsExchange = u.len > 0 && s.requestsCaptured === 0;
  } else if (p.ackOk && seqAfter(p.ack, s.capture.lastAck)) {
    u.startsExchange = true;
    u.respBytes = seqDiff(p.ack, s.capture.lastAck);
    s.capture.lastAck = p.ack;
  } else {
    u.startsExchange = u.len > 0 && s.requestsCaptured === 0;
  }
  if (u.startsExchange && u.len > 0) {
    s.requestsCaptured++;
    stats.requestsCaptured++;
    if (s.mod === null) s.requestSeqs.push(u.seq);
  }
  s.capture.nxt = seqAdd(u.seq, unitSpan(u));
  if (u.fin) s.capture.closed = true;
  if (s.mod === null) s.units.push(u);
  else toModule(s.mod, u, pool);
}

/**
 * A module session's captured unit: its bytes join the module's pending bytes (framed into
 * messages by engine-module.ts, which builds the sent stream), its exchange start becomes a
 * mark, its FIN or RST waits behind the data; the unit itself goes back to the pool.
 */
function toModule(m: ModSession, u: Unit, pool: UnitPool): void {
  if ((u.fin || u.rst) && u.startsExchange && u.respBytes > 0) m.closeGate = u.respBytes;
  if (u.rst) m.rstPending = true;
  else {
    if (m.pendLen === 0) m.pendSeq = u.seq;
    if (u.startsExchange && u.len > 0) m.marks.push(u.seq, u.respBytes);
    if (u.data !== null) m.appendPending(u.data, u.dataOff, u.len);
    m.capturedAt = u.capturedAt;
    m.tsVal = u.tsVal;
    if (u.fin) m.finPending = true;
  }
  pool.release(u);
}

/** Keeps a segment that lies beyond a hole in the capture until the hole is filled. */
function parkOutOfOrder(
  s: Session,
  p: CapturedPiece,
  seq: number,
  off: number,
  len: number,
  now: number,
  pool: UnitPool,
): void {
  if (s.capture.gapSince < 0) s.capture.gapSince = now;
  const parked = s.capture.parked;
  let i = parked.length;
  while (i > 0 && seqAfter((parked[i - 1] as Unit).seq, seq)) i--;
  if (i > 0 && (parked[i - 1] as Unit).seq === seq) return; // same hole-side segment again
  const u = unitOf(pool, p, seq, off, len, now);
  u.ackOk = p.ackOk;
  u.ack = p.ack;
  parked.splice(i, 0, u);
}

/** A parked segment being moved into the stream (reused). */
const parkedPiece: CapturedPiece = {
  seq: 0,
  buf: null,
  off: 0,
  len: 0,
  fin: false,
  rst: false,
  ackOk: false,
  ack: 0,
  tsVal: 0,
};

/** Moves parked segments that now follow capture.nxt into the stream. */
function drainOutOfOrder(s: Session, now: number, stats: EngineStats, pool: UnitPool): void {
  const parked = s.capture.parked;
  while (parked.length > 0) {
    const first = parked[0] as Unit;
    if (!seqBeforeEq(first.seq, s.capture.nxt)) break;
    parked.shift();
    if (s.capture.closed) {
      pool.release(first);
      break;
    }
    // copied again into the stream (a rare path), then the parked copy is given back; the
    // scratch piece is read only before a nested drain can reuse it
    const p = parkedPiece;
    p.seq = first.seq;
    p.buf = first.data;
    p.off = first.dataOff;
    p.len = first.len;
    p.fin = first.fin;
    p.ackOk = first.ackOk;
    p.ack = first.ack;
    p.tsVal = first.tsVal;
    appendCaptured(s, p, first.capturedAt, stats, pool);
    p.buf = null;
    pool.release(first);
  }
  if (parked.length === 0) s.capture.gapSince = -1;
  else if (s.capture.gapSince < 0) s.capture.gapSince = now;
}

/**
 * Requests among the segments parked beyond a capture hole (not yet counted: a request is
 * counted when it joins the stream). Used when a session ends with its hole unfilled, so the
 * requests behind it are reported as lost instead of vanishing from the accounting.
 */
export function parkedRequests(s: Session): number {
  let n = 0;
  let last = s.capture.lastAck;
  let valid = s.capture.lastAckValid;
  for (const u of s.capture.parked) {
    if (u.len > 0 && u.ackOk && (!valid || seqAfter(u.ack, last))) n++;
    if (u.ackOk) {
      last = u.ack;
      valid = true;
    }
  }
  return n;
}
