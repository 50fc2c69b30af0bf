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
/** Ranges further than this beyond rcvNxt are ignored (bytes). */
const MAX_AHEAD = 1 << 26;

/** What reassembly needs from a session: rcvNxt and the range store (flat [start, end, fin] triples). */
export interface ReassemblyState {
  /** Next expected target sequence number. */
  rcvNxt: number;
  /** Out-of-order ranges: start, end (exclusive, FIN included), 1 when the range ends with FIN. */
  rcvOoo: number[];
  /** The target's FIN was received (set here when a covered range ends with it). */
  targetFin: boolean;
}

/** Remembers [seq, end) received beyond rcvNxt (`fin`: the range ends with the target's FIN). */
export function noteOutOfOrder(s: ReassemblyState, seq: number, end: number, fin: boolean): void {
  if (!seqAfter(seq, s.rcvNxt) || seqDiff(end, s.rcvNxt) > MAX_AHEAD) return;
  const r = s.rcvOoo;
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
 * After rcvNxt advanced: moves it past every remembered range it now reaches (setting
 * targetFin when one ends with the FIN). Returns the reply payload bytes newly covered (FIN excluded).
 */
export function absorbOutOfOrder(s: ReassemblyState): number {
  let bytes = 0;
  const r = s.rcvOoo;
  let moved = true;
  while (moved && r.length > 0) {
    moved = false;
    for (let i = 0; i < r.length; i += 3) {
      const a = r[i] as number;
      const b = r[i + 1] as number;
      if (seqBeforeEq(a, s.rcvNxt)) {
        if (seqAfter(b, s.rcvNxt)) {
          const f = r[i + 2] === 1;
          bytes += seqDiff(b, s.rcvNxt) - (f ? 1 : 0);
          if (f) s.targetFin = true;
          s.rcvNxt = b;
        }
        r.splice(i, 3);
        moved = true;
        break;
      }
    }
  }
  return bytes;
}
