import type { PayloadChunk, UnitPool } from './unit-pool';
import type { HeapItem } from './timer-heap';
import { seqAdd } from '../seq';
import { type TimerTable, disarmAll, newTimerTable } from './timers';

/** Session life cycle. Transitions happen only in engine.ts, engine-*.ts and transmit.ts. */
export const enum SessionState {
  /** Waiting for an older connection with the same client address and port to finish. */
  Queued = 0,
  /** SYN sent to the target, waiting for the SYN-ACK reported by intercept. */
  SynSent = 1,
  /** Handshake done: sending captured data, acknowledging replies. */
  Established = 2,
  /** Ended; removed from the table. */
  Closed = 3,
}

/**
 * A piece of the captured client byte stream: one captured segment's payload (copied), or a
 * FIN or RST. Units keep the captured segment boundaries so pipelined requests replay as sent.
 */
export interface Unit {
  /** Client sequence number of the first byte (of the FIN/RST when len = 0). */
  seq: number;
  /** Buffer holding the payload copy at [dataOff, dataOff + len) (a shared chunk, see unit-pool.ts); null when len = 0. */
  data: Buffer | null;
  /** Offset of the payload in `data`. */
  dataOff: number;
  /** The pool chunk `data` belongs to (null: none, or a Buffer of its own). */
  chunk: PayloadChunk | null;
  /** Payload length. */
  len: number;
  /** The captured segment carried FIN (occupies one sequence number after the data). */
  fin: boolean;
  /** The captured segment was a RST. */
  rst: boolean;
  /** Engine time when the segment was captured/fed (ms): lag is measured from here. */
  capturedAt: number;
  /** This unit begins an exchange: the first data, or the captured ack advanced (the server had answered). */
  startsExchange: boolean;
  /** Reply bytes the online server had sent before this unit (ack advance); the replay waits for the target's. */
  respBytes: number;
  /** Captured TSval of the client, 0 when absent. */
  tsVal: number;
  /** Segments parked beyond a capture hole: the captured ACK flag and number, for when they join the stream. */
  ackOk: boolean;
  ack: number;
}

/** Sequence space a unit occupies (payload + FIN). */
export function unitSpan(u: Unit): number {
  return u.len + (u.fin ? 1 : 0);
}

/**
 * Empties an array and keeps its backing store: `a.length = 0` drops the store (the next push
 * allocates it again) through a slow runtime path; popping a few elements does neither.
 */
function emptyArray(a: unknown[]): void {
  while (a.length > 0) a.pop();
}

/** One simulated client connection replayed to the target. */
export class Session implements HeapItem {
  deadline = Infinity;
  heapIndex = -1;
  state: SessionState = SessionState.Queued;
  /** Deadlines by timer kind (retransmission/persist, release wait, delayed ACK, gap, idle); `deadline` is their minimum. */
  readonly timer: TimerTable = newTimerTable();

  /** Original client address and port as captured. */
  origClientIp = 0;
  origClientPort = 0;
  /** Replay variant (-n copy, -T repetition); 0 = the original. */
  variant = 0;
  /** Client address and port the target sees (after -c and port variants). */
  clientIp = 0;
  clientPort = 0;
  /** Key of (clientIp, clientPort) in the reply table. */
  replyKey = 0;
  /** Key of (origClientIp, origClientPort) in the capture table of this variant. */
  captureKey = 0;
  targetIp = 0;
  targetPort = 0;

  // ---- capture side (what the real client sent) ----
  /** Client initial sequence number (captured SYN, or first data seq - 1 when synthesized). */
  isn = 0;
  /** The SYN was synthesized (session captured mid-stream). */
  synthesized = false;
  /** Options of the captured SYN (or chosen for a synthesized one). */
  synMss = 0;
  synWscale = -1;
  synSackOk = false;
  synTs = false;
  synTsVal = 0;
  /** Next client sequence number expected from the capture. */
  capNxt = 0;
  /** Captured ack of the last data unit (or of the handshake ACK), valid when lastAckValid. */
  lastAck = 0;
  lastAckValid = false;
  /** Units not yet acknowledged by the target, in sequence order, from index `head`. */
  units: Unit[] = [];
  head = 0;
  /** Captured segments beyond a gap in the capture, sorted by seq. */
  ooo: Unit[] = [];
  /** When the current capture gap was first seen (ms), -1 when none. */
  gapSince = -1;
  /** A FIN or RST has been captured: nothing follows it. */
  capClosed = false;
  /** Latest captured client TSval. */
  lastTsVal = 0;
  /** Last TSval sent to the target: what we send never goes below it. */
  tsSent = 0;

  // ---- target side ----
  /** Oldest unacknowledged client seq and next client seq to send. */
  sndUna = 0;
  sndNxt = 0;
  /** Highest sequence sent so far (sndNxt can move back on retransmission). */
  sndMax = 0;
  /** Target's receive window in bytes (scaled). */
  sndWnd = 0;
  /** Window scale the target applies to its window field (-1 = none negotiated). */
  sndWscale = -1;
  /** MSS for segments to the target. */
  sendMss = 536;
  /** Timestamps negotiated (client used them and target answered with them). */
  tsOn = false;
  /** Last TSval seen from the target, echoed as TSecr. */
  tsRecent = 0;
  /** Target's initial sequence number and next expected target sequence number. */
  targetIsn = 0;
  rcvNxt = 0;
  /** Target sent FIN. */
  targetFin = false;
  /** Reply ranges received beyond a hole, flat [start, end, fin] triples (reassembly.ts). */
  rcvOoo: number[] = [];
  /** rcvNxt when the last exchange-starting unit was first sent: reply bytes are counted from here. */
  respBase = 0;
  /** When reply data last advanced rcvNxt (ms). */
  lastReplyAt = 0;
  /** The unit whose first reply is awaited for the lag measurement, captured time; -1 when none. */
  lagFrom = -1;
  /** The intercept channel was down at some time while this session was in SYN-SENT (set by the engine). */
  handshakeOutage = false;
  /** An ACK for new target data is owed. */
  ackPending = false;
  /** rcvNxt as carried by the last segment we sent (what the target knows we have). */
  rcvAcked = 0;

  // ---- retransmission (RFC 6298) ----
  srtt = 0;
  rttvar = 0;
  rto = 0;
  /** Consecutive retransmissions without progress. */
  retries = 0;
  dupAcks = 0;
  /** RTT measurement: sequence being timed and when it was sent (-1 none). */
  rttSeq = 0;
  rttSentAt = -1;

  /** Last time anything happened on this session (ms), for -t / -k. */
  lastActivity = 0;

  // ---- accounting ----
  requestsCaptured = 0;
  requestsReplayed = 0;
  /** Number of exchange-starting units whose bytes the target acknowledged (counted once). */
  /** Seq at the start of each captured request not yet acknowledged (to count replayed requests). */
  requestSeqs: number[] = [];

  /** A newer connection on the same client address/port, waiting for this one to end. */
  successor: Session | null = null;

  /**
   * Puts every field back to its initial value, for a Session taken again from the engine's
   * pool (the arrays are kept, emptied, with their backing stores). Must list every field
   * above (a unit test compares a reset session with a new one).
   */
  reset(): void {
    this.deadline = Infinity;
    this.heapIndex = -1;
    this.state = SessionState.Queued;
    disarmAll(this.timer);
    this.origClientIp = 0;
    this.origClientPort = 0;
    this.variant = 0;
    this.clientIp = 0;
    this.clientPort = 0;
    this.replyKey = 0;
    this.captureKey = 0;
    this.targetIp = 0;
    this.targetPort = 0;
    this.isn = 0;
    this.synthesized = false;
    this.synMss = 0;
    this.synWscale = -1;
    this.synSackOk = false;
    this.synTs = false;
    this.synTsVal = 0;
    this.capNxt = 0;
    this.lastAck = 0;
    this.lastAckValid = false;
    emptyArray(this.units);
    this.head = 0;
    emptyArray(this.ooo);
    this.gapSince = -1;
    this.capClosed = false;
    this.lastTsVal = 0;
    this.tsSent = 0;
    this.sndUna = 0;
    this.sndNxt = 0;
    this.sndMax = 0;
    this.sndWnd = 0;
    this.sndWscale = -1;
    this.sendMss = 536;
    this.tsOn = false;
    this.tsRecent = 0;
    this.targetIsn = 0;
    this.rcvNxt = 0;
    this.targetFin = false;
    emptyArray(this.rcvOoo);
    this.respBase = 0;
    this.lastReplyAt = 0;
    this.lagFrom = -1;
    this.handshakeOutage = false;
    this.ackPending = false;
    this.rcvAcked = 0;
    this.srtt = 0;
    this.rttvar = 0;
    this.rto = 0;
    this.retries = 0;
    this.dupAcks = 0;
    this.rttSeq = 0;
    this.rttSentAt = -1;
    this.lastActivity = 0;
    this.requestsCaptured = 0;
    this.requestsReplayed = 0;
    emptyArray(this.requestSeqs);
    this.successor = null;
  }

  /** Client seq just past the last captured byte/FIN (what must be acknowledged to finish). */
  capturedEnd(): number {
    return this.capNxt;
  }

  /** Index of the unit containing sequence `seq` (head.. units.length), or units.length when past all. */
  unitIndexAt(seq: number): number {
    const units = this.units;
    for (let i = this.head; i < units.length; i++) {
      const u = units[i] as Unit;
      const end = seqAdd(u.seq, unitSpan(u));
      if (((seq - u.seq) | 0) >= 0 && ((seq - end) | 0) < 0) return i;
      if (u.rst && seq === u.seq) return i;
    }
    return units.length;
  }

  /** Drops units wholly acknowledged (below sndUna), giving them back to `pool`; compacts the array now and then. */
  dropAcked(pool: UnitPool): void {
    const units = this.units;
    while (this.head < units.length) {
      const u = units[this.head] as Unit;
      if (u.rst) break;
      const end = seqAdd(u.seq, unitSpan(u));
      if (((end - this.sndUna) | 0) > 0) break;
      units[this.head] = undefined as unknown as Unit;
      this.head++;
      pool.release(u);
    }
    // Compacted now and then, not whenever the array drains: `units.length = 0` goes through a
    // slow runtime path and drops the backing store that the next push then allocates again.
    if (this.head > 32 && this.head * 2 > units.length) {
      this.units = units.slice(this.head);
      this.head = 0;
    }
  }

  /** Gives the segments parked beyond a capture hole back to `pool` and forgets them. */
  releaseParked(pool: UnitPool): void {
    for (const u of this.ooo) pool.release(u);
    emptyArray(this.ooo);
  }

  /** Gives every unit (stream and parked) back to `pool` and empties both lists. */
  releaseUnits(pool: UnitPool): void {
    const units = this.units;
    for (let i = this.head; i < units.length; i++) pool.release(units[i] as Unit);
    emptyArray(units);
    this.head = 0;
    this.releaseParked(pool);
  }
}
