import { seqAdd, seqAfter, seqBefore, seqBeforeEq, seqDiff } from '../seq';
import type { EngineStats } from '../stats';
import { type Session, type Unit, unitSpan } from './session';
import type { UnitPool } from './unit-pool';

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
 * (retransmissions), parks segments beyond a hole (ooo), decides whether it begins an exchange
 * (the captured ack advanced: the server had answered), and counts requests.
 * Returns false when the segment added nothing (a duplicate). Units come from `pool`.
 */
export function appendCaptured(s: Session, p: CapturedPiece, now: number, stats: EngineStats, pool: UnitPool): boolean {
  if (s.capClosed) {
    stats.clientDuplicates++;
    return false;
  }
  if (p.tsVal !== 0 && seqAfter(p.tsVal, s.lastTsVal)) s.lastTsVal = p.tsVal;
  if (p.rst) {
    // A reset ends the stream wherever it points; it is replayed after all captured data.
    pushUnit(s, pool.take(s.capNxt, null, 0, 0, false, true, now, p.tsVal), p, stats);
    s.capClosed = true;
    s.releaseParked(pool);
    s.gapSince = -1;
    return true;
  }
  let seq = p.seq;
  let off = p.off;
  let len = p.len;
  const span = len + (p.fin ? 1 : 0);
  if (span === 0) {
    // pure ACK: only the handshake's ACK tells us something (the server's ISN + 1)
    if (!s.lastAckValid && p.ackOk && s.requestsCaptured === 0) {
      s.lastAck = p.ack;
      s.lastAckValid = true;
    }
    return false;
  }
  if (seqBefore(seq, s.capNxt)) {
    const skip = seqDiff(s.capNxt, seq);
    if (skip >= span) {
      stats.clientDuplicates++;
      return false;
    }
    seq = s.capNxt;
    off += Math.min(skip, len);
    len = Math.max(0, len - skip);
  }
  if (seqAfter(seq, s.capNxt)) {
    parkOutOfOrder(s, p, seq, off, len, now, pool);
    return true;
  }
  pushUnit(s, pool.take(seq, p.buf, off, len, p.fin, false, now, p.tsVal), p, stats);
  drainOutOfOrder(s, now, stats, pool);
  return true;
}

/** Appends a unit at capNxt, classifying it (exchange start, request count). */
function pushUnit(s: Session, u: Unit, p: CapturedPiece, stats: EngineStats): void {
  if (!s.lastAckValid) {
    if (p.ackOk) {
      s.lastAck = p.ack;
      s.lastAckValid = true;
    }
    u.startsExchange = u.len > 0 && s.requestsCaptured === 0;
  } else if (p.ackOk && seqAfter(p.ack, s.lastAck)) {
    u.startsExchange = true;
    u.respBytes = seqDiff(p.ack, s.lastAck);
    s.lastAck = p.ack;
  } else {
    u.startsExchange = u.len > 0 && s.requestsCaptured === 0;
  }
  if (u.startsExchange && u.len > 0) {
    s.requestsCaptured++;
    stats.requestsCaptured++;
    s.requestSeqs.push(u.seq);
  }
  s.units.push(u);
  s.capNxt = seqAdd(u.seq, unitSpan(u));
  if (u.fin) s.capClosed = true;
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
  if (s.gapSince < 0) s.gapSince = now;
  const ooo = s.ooo;
  let i = ooo.length;
  while (i > 0 && seqAfter((ooo[i - 1] as Unit).seq, seq)) i--;
  if (i > 0 && (ooo[i - 1] as Unit).seq === seq) return; // same hole-side segment again
  const u = pool.take(seq, p.buf, off, len, p.fin, false, now, p.tsVal);
  u.ackOk = p.ackOk;
  u.ack = p.ack;
  ooo.splice(i, 0, u);
}

/** Moves parked segments that now follow capNxt into the stream. */
function drainOutOfOrder(s: Session, now: number, stats: EngineStats, pool: UnitPool): void {
  const ooo = s.ooo;
  while (ooo.length > 0) {
    const first = ooo[0] as Unit;
    if (!seqBeforeEq(first.seq, s.capNxt)) break;
    ooo.shift();
    if (s.capClosed) {
      pool.release(first);
      break;
    }
    // copied again into the stream (a rare path), then the parked copy is given back
    appendCaptured(
      s,
      {
        seq: first.seq,
        buf: first.data,
        off: first.dataOff,
        len: first.len,
        fin: first.fin,
        rst: false,
        ackOk: first.ackOk,
        ack: first.ack,
        tsVal: first.tsVal,
      },
      first.capturedAt,
      stats,
      pool,
    );
    pool.release(first);
  }
  if (ooo.length === 0) s.gapSince = -1;
  else if (s.gapSince < 0) s.gapSince = now;
}

/**
 * Requests among the segments parked beyond a capture hole (not yet counted: a request is
 * counted when it joins the stream). Used when a session ends with its hole unfilled, so the
 * requests behind it are reported as lost instead of vanishing from the accounting.
 */
export function parkedRequests(s: Session): number {
  let n = 0;
  let last = s.lastAck;
  let valid = s.lastAckValid;
  for (const u of s.ooo) {
    if (u.len > 0 && u.ackOk && (!valid || seqAfter(u.ack, last))) n++;
    if (u.ackOk) {
      last = u.ack;
      valid = true;
    }
  }
  return n;
}
