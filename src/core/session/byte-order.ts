/**
 * Puts one direction's payload bytes in sequence order for a protocol module (the target's
 * replies, or the online server's captured replies): duplicates and retransmissions are
 * delivered once, pieces beyond a hole wait in a small bounded store until the hole fills, and
 * what is never available (not carried: payload cap, a hole given up because the store had no
 * room for the pieces beyond it) is delivered as a count of `missing` bytes, so a module's
 * framing can skip it. A hole never stalls the stream: once the store is full, it is given up.
 * Nothing is lost silently: every byte of the sequence space is delivered either as data or as
 * missing.
 * Only module sessions have one (a session without a module pays nothing).
 */
import { seqAdd, seqAfter, seqDiff } from '../seq';

/** Most pieces kept beyond a hole. */
export const MAX_HELD_PIECES = 8;
/** Most payload bytes kept beyond a hole (all pieces together). */
export const MAX_HELD_BYTES = 64 * 1024;

/** What an orderer hands on: `data` (a view, valid during the call), then `missing` bytes not carried. */
export type DeliverBytes = (data: Buffer, missing: number) => void;

/** Counters of an orderer (summed into the engine's module counters). */
export interface OrderStats {
  /** Payload bytes delivered as data. */
  bytes: number;
  /** Bytes delivered as missing (not carried, or not kept beyond a hole). */
  missing: number;
  /** Pieces that arrived beyond a hole and were kept. */
  held: number;
  /**
   * Holes given up: a piece beyond a hole found the store full, so the hole's bytes were
   * delivered as missing (and the kept pieces after it), and the stream moved on.
   */
  notHeld: number;
  /** Pieces that repeated bytes already delivered. */
  duplicates: number;
}

interface Piece {
  seq: number;
  /** Bytes carried (a copy), the first `data.length` bytes of the piece. */
  data: Buffer;
  /** Sequence space of the piece (its payload length on the wire). */
  total: number;
}

const EMPTY = Buffer.alloc(0);

/** One direction's in-order delivery (see the file comment). */
export class ByteOrderer {
  /** Next sequence number to deliver; valid once `started`. */
  nxt = 0;
  started = false;
  private readonly pieces: Piece[] = [];
  private heldBytes = 0;

  constructor(private readonly st: OrderStats) {}

  /** Starts the stream at `seq` (the first payload byte's sequence number). */
  start(seq: number): void {
    this.nxt = seq;
    this.started = true;
  }

  /**
   * One segment: `total` bytes of sequence space at `seq`, of which the first `carried` are in
   * `buf[off ..]` (the rest were not carried). Delivers what is now in order.
   */
  push(seq: number, buf: Buffer | null, off: number, carried: number, total: number, deliver: DeliverBytes): void {
    if (total <= 0) return;
    if (!this.started) this.start(seq);
    const n = buf === null ? 0 : Math.min(carried, total);
    const rel = seqDiff(seq, this.nxt);
    if (rel > 0) {
      if (this.hold(seq, buf, off, n, total)) return;
      // no room beyond the hole: give it up, so that the stream moves on (the online stream has
      // no other way past a segment the capture missed)
      this.st.notHeld++;
      this.giveUpHole(seq, deliver);
      this.push(seq, buf, off, carried, total, deliver);
      return;
    }
    if (-rel >= total) {
      this.st.duplicates++;
      return;
    }
    this.emit(buf, off, n, total, -rel, deliver);
    this.drain(deliver);
  }

  /**
   * The stream is known to have reached `end` (the engine acknowledged it, e.g. past reply
   * ranges it remembered): delivers the kept pieces below `end` and the rest as missing.
   */
  skipTo(end: number, deliver: DeliverBytes): void {
    if (!this.started) return;
    for (;;) {
      this.drain(deliver);
      if (!seqAfter(end, this.nxt)) return;
      const p = this.pieces[0];
      const upTo = p !== undefined && seqAfter(end, p.seq) ? p.seq : end;
      const gap = seqDiff(upTo, this.nxt);
      this.st.missing += gap;
      this.nxt = upTo;
      deliver(EMPTY, gap);
    }
  }

  /** Forgets the kept pieces and the position (the session ended). */
  reset(): void {
    this.pieces.length = 0;
    this.heldBytes = 0;
    this.started = false;
    this.nxt = 0;
  }

  /** Delivers the piece from `skip` bytes in. */
  private emit(buf: Buffer | null, off: number, n: number, total: number, skip: number, deliver: DeliverBytes): void {
    const data = skip < n && buf !== null ? buf.subarray(off + skip, off + n) : EMPTY;
    const missing = total - Math.max(n, skip);
    this.nxt = seqAdd(this.nxt, total - skip);
    this.st.bytes += data.length;
    this.st.missing += missing;
    deliver(data, missing);
  }

  /** Delivers kept pieces that are now in order. */
  private drain(deliver: DeliverBytes): void {
    const ps = this.pieces;
    while (ps.length > 0) {
      const p = ps[0] as Piece;
      const rel = seqDiff(p.seq, this.nxt);
      if (rel > 0) return;
      ps.shift();
      this.heldBytes -= p.data.length;
      if (-rel >= p.total) continue;
      this.emit(p.data, 0, p.data.length, p.total, -rel, deliver);
    }
  }

  /** Delivers the first hole (up to the first kept piece, or to `seq` when none is kept) as missing, then what follows in order. */
  private giveUpHole(seq: number, deliver: DeliverBytes): void {
    const p = this.pieces[0];
    const upTo = p !== undefined && seqAfter(seq, p.seq) ? p.seq : seq;
    const gap = seqDiff(upTo, this.nxt);
    this.st.missing += gap;
    this.nxt = upTo;
    deliver(EMPTY, gap);
    this.drain(deliver);
  }

  /** Keeps a piece beyond a hole; false when the store has no room for it. */
  private hold(seq: number, buf: Buffer | null, off: number, n: number, total: number): boolean {
    const ps = this.pieces;
    let i = ps.length;
    while (i > 0 && seqAfter((ps[i - 1] as Piece).seq, seq)) i--;
    if (i > 0 && (ps[i - 1] as Piece).seq === seq) {
      this.st.duplicates++;
      return true;
    }
    if (ps.length >= MAX_HELD_PIECES || this.heldBytes + n > MAX_HELD_BYTES) return false;
    const data = n > 0 && buf !== null ? Buffer.from(buf.subarray(off, off + n)) : EMPTY;
    ps.splice(i, 0, { seq, data, total });
    this.heldBytes += n;
    this.st.held++;
    return true;
  }
}
