/**
 * Receive-side reassembly of the target's reply stream, sequence ranges only (tcpcopy never
 * needs the reply bytes). A reply segment that arrives beyond a hole (reordered, or the one
 * before it was lost) is remembered, so once the hole is filled the cumulative ACK jumps past
 * it, as a real client's would. Without this, every reordered reply segment acted as a loss:
 * the target (no SACK) retransmitted one segment per round trip and its replies crawled.
 * Memory is bounded: at most {@link MAX_RANGES} ranges per session, the rest are forgotten
 * (the target retransmits them, which is always correct).
 */
import { seqAfter, seqBeforeEq, seqDiff } from '../seq';

/** Most out-of-order ranges remembered per session. */
export const MAX_RANGES = 8;
/** Ranges further than this beyond nxt are ignored (bytes). */
const MAX_AHEAD = 1 << 26;

/** The target's reply stream as the session tracks it: sequence numbers only, never the bytes. */
export class ReplyStream {
  /** Next expected target sequence number (rcv_nxt). */
  nxt = 0;
  /** Ranges received beyond a hole, flat [start, end, fin] triples: end exclusive (FIN included), fin 1 when the range ends with the FIN. */
  readonly ranges: number[] = [];
  /** The target's FIN was received (in order). */
  fin = false;
  /** `nxt` as carried by the last segment we sent (what the target knows we have). */
  acked = 0;

  /** Back to the initial values (the range array is kept, emptied). */
  reset(): void {
    this.nxt = 0;
    const r = this.ranges;
    while (r.length > 0) r.pop();
    this.fin = false;
    this.acked = 0;
  }
}

/** Remembers [seq, end) received beyond nxt (`fin`: the range ends with the target's FIN). */
export function noteOutOfOrder(s: ReplyStream, seq: number, end: number, fin: boolean): void {
  if (!seqAfter(seq, s.nxt) || seqDiff(end, s.nxt) > MAX_AHEAD) return;
  const r = s.ranges;
  for (let i = 0; i < r.length; i += 3) {
    const a = r[i] as number;
    const b = r[i + 1] as number;
    if (seqBeforeEq(seq, b) && seqBeforeEq(a, end)) {
      // overlaps or touches: merge
      if (seqAfter(a, seq)) r[i] = seq;
      if (seqAfter(end, b)) {
        r[i + 1] = end;
        r[i + 2] = fin ? 1 : 0;
      }
      return;
    }
  }
  if (r.length >= MAX_RANGES * 3) return;
  r.push(seq, end, fin ? 1 : 0);
}

/**
 * After nxt advanced: moves it past every remembered range it now reaches (setting
 * fin when one ends with the FIN). Returns the reply payload bytes newly covered (FIN excluded).
 */
export function absorbOutOfOrder(s: ReplyStream): number {
  let bytes = 0;
  const r = s.ranges;
  let moved = true;
  while (moved && r.length > 0) {
    moved = false;
    for (let i = 0; i < r.length; i += 3) {
      const a = r[i] as number;
      const b = r[i + 1] as number;
      if (seqBeforeEq(a, s.nxt)) {
        if (seqAfter(b, s.nxt)) {
          const f = r[i + 2] === 1;
          bytes += seqDiff(b, s.nxt) - (f ? 1 : 0);
          if (f) s.fin = true;
          s.nxt = b;
        }
        r.splice(i, 3);
        moved = true;
        break;
      }
    }
  }
  return bytes;
}
