import type { PayloadChunk, UnitPool } from './unit-pool';
import type { HeapItem } from './timer-heap';
import { seqAdd, seqAfter, seqAfterEq, seqBefore, seqDiff } from '../seq';
import { RttEstimator } from './rtt';
import { ReplyStream } from './reassembly';
import { type TimerTable, disarmAll, newTimerTable } from './timers';
import type { ModSession } from './module-state';

/**
 * Session life cycle. Every assignment of `state` is in engine-lifecycle.ts:
 *
 * | from        | event                                                        | to          | function       |
 * |-------------|--------------------------------------------------------------|-------------|----------------|
 * | (new)       | SYN (or first data, synthesized) captured, client port free  | SynSent     | startSession   |
 * | (new)       | the same, while an older replay of that client port closes   | Queued      | newSession     |
 * | Queued      | the older replay ended                                       | SynSent     | startSession   |
 * | SynSent     | the target's SYN-ACK                                         | Established | establish      |
 * | Established | clientFinished() and the target's FIN (or a successor waits) | Closed      | afterChange    |
 * | any         | timeout, RST, capture gap, finish(): one outcome             | Closed      | endSession     |
 *
 * Closing is not a state of its own: while Established, how far the two sides got is told by
 * the predicates below (caughtUp, drained, clientFinished, settled) and the target's FIN
 * (`reply.fin`), each defined once here.
 */
export const enum SessionState {
  /** Waiting for an older connection with the same client address and port to finish. */
  Queued = 0,
  /** SYN sent to the target, waiting for the SYN-ACK reported by intercept. */
  SynSent = 1,
  /** Handshake done: sending captured data, acknowledging replies, closing. */
  Established = 2,
  /** Ended with one outcome; removed from the tables. */
  Closed = 3,
}

/**
 * Every captured byte (and FIN) so far was acknowledged by the target: sndUna reached the
 * capture's end. With a module, the end of the stream built for the target (sent space), and
 * nothing captured is still waiting in the module (a partial or held message, the FIN behind it).
 */
export function caughtUp(s: Session): boolean {
  const m = s.mod;
  return m === null ? s.sndUna === s.capture.nxt : s.sndUna === m.sentEnd && m.idle();
}

/** Everything captured so far was sent (what a capture hole is waited for, before it counts). */
export function allSent(s: Session): boolean {
  const m = s.mod;
  return m === null ? s.sndNxt === s.capture.nxt : s.sndNxt === m.sentEnd && m.idle();
}

/** Caught up, and nothing is parked behind a capture hole: nothing left to replay for now. */
export function drained(s: Session): boolean {
  return caughtUp(s) && s.capture.parked.length === 0;
}

/** The client's end (FIN or RST) was captured and everything up to it acknowledged: our side is done. */
export function clientFinished(s: Session): boolean {
  return s.capture.closed && drained(s);
}

/**
 * The client's FIN was replayed and acknowledged but the target has not closed yet. Its kernel
 * acknowledged bytes its application may not have read: a slow target (a PostgreSQL backend
 * waiting for a lock) still has them in its receive buffer, and a RST now would discard them
 * without a trace (they count as replayed once acknowledged). The target's own FIN, sent after
 * it read up to ours, ends the session as completed.
 */
export function awaitingTargetClose(s: Session): boolean {
  return s.state === SessionState.Established && clientFinished(s) && !s.reply.fin && s.successor === null;
}

/**
 * What one held captured segment costs beyond its payload, bytes: the Unit object and its
 * slot in the session's array (measured about 120 bytes of heap per unit), for the backlog bound.
 */
export const UNIT_COST_BYTES = 128;

/**
 * The captured data the session holds waiting for the target (EngineConfig.maxBacklogBytes),
 * bytes: from its first unit not yet acknowledged to the end of its last, plus UNIT_COST_BYTES
 * per unit held (parked ones beyond a capture hole too). O(1).
 */
export function backlogBytes(s: Session): number {
  const units = s.units;
  const n = units.length - s.head;
  let bytes = 0;
  if (n > 0) {
    const first = units[s.head] as Unit;
    const last = units[units.length - 1] as Unit;
    bytes = seqDiff(seqAdd(last.seq, unitSpan(last)), first.seq);
  }
  return bytes + (n + s.capture.parked.length) * UNIT_COST_BYTES;
}

/** Established, drained and no newer connection queued behind: waiting only for more capture or the idle timer. */
export function settled(s: Session): boolean {
  return s.state === SessionState.Established && drained(s) && s.successor === null;
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

/** The captured client stream's reassembly state (what the real client sent, in order). */
export class CaptureStream {
  /** Next client sequence number expected from the capture (just past the last byte or FIN). */
  nxt = 0;
  /** Captured segments beyond a hole in the capture, sorted by seq. */
  readonly parked: Unit[] = [];
  /** When the current capture hole was first seen (ms), -1 when none. */
  gapSince = -1;
  /** A FIN or RST has been captured: nothing follows it. */
  closed = false;
  /** Captured ack of the last data unit (or of the handshake ACK), valid when lastAckValid. */
  lastAck = 0;
  lastAckValid = false;
  /** Latest captured client TSval. */
  lastTsVal = 0;

  /** Back to the initial values (the parked list is kept, emptied; its units must be released first). */
  reset(): void {
    this.nxt = 0;
    emptyArray(this.parked);
    this.gapSince = -1;
    this.closed = false;
    this.lastAck = 0;
    this.lastAckValid = false;
    this.lastTsVal = 0;
  }
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
  /** The online server the captured client talked to (the captured destination). */
  serverIp = 0;
  serverPort = 0;

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
  /** The captured stream: next expected seq, parked segments, holes, its end. */
  readonly capture = new CaptureStream();
  /** Units not yet acknowledged by the target, in sequence order, from index `head`. */
  units: Unit[] = [];
  head = 0;
  /** Where unitIndexAt found its last unit (a search hint; any value is safe). */
  private hint = 0;
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
  /** Target's initial sequence number. */
  targetIsn = 0;
  /** The target's reply stream: next expected seq, ranges beyond a hole, its FIN, what we acknowledged. */
  readonly reply = new ReplyStream();
  /** reply.nxt when the last exchange-starting unit was first sent: reply bytes are counted from here. */
  respBase = 0;
  /** When reply data last advanced reply.nxt (ms). */
  lastReplyAt = 0;
  /** The unit whose first reply is awaited for the lag measurement, captured time; -1 when none. */
  lagFrom = -1;
  /** The intercept channel was down at some time while this session was in SYN-SENT (set by the engine). */
  handshakeOutage = false;
  /** An ACK for new target data is owed. */
  ackPending = false;

  // ---- retransmission (RFC 6298) ----
  /** Round-trip estimate and retransmission timeout. */
  readonly rtt = new RttEstimator();
  /** Consecutive retransmissions without progress. */
  retries = 0;
  dupAcks = 0;

  /** Last time anything happened on this session (ms), for -t / -k. */
  lastActivity = 0;

  // ---- accounting ----
  requestsCaptured = 0;
  /** Number of exchange-starting units whose bytes the target acknowledged (counted once). */
  requestsReplayed = 0;
  /** Seq at the start of each captured request not yet acknowledged (to count replayed requests). */
  requestSeqs: number[] = [];

  /** Captured requests whose fate was settled without the target's ACK: a module dropped them (lost with its reason, or not needed). */
  requestsSettled = 0;

  /** A newer connection on the same client address/port, waiting for this one to end. */
  successor: Session | null = null;

  /**
   * The protocol module's side of the session (engine-module.ts), null without a module. With
   * one, `units` hold the stream built for the target (sent space) rather than the capture.
   */
  mod: ModSession | null = null;

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
    this.serverIp = 0;
    this.serverPort = 0;
    this.isn = 0;
    this.synthesized = false;
    this.synMss = 0;
    this.synWscale = -1;
    this.synSackOk = false;
    this.synTs = false;
    this.synTsVal = 0;
    this.capture.reset();
    emptyArray(this.units);
    this.head = 0;
    this.hint = 0;
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
    this.reply.reset();
    this.respBase = 0;
    this.lastReplyAt = 0;
    this.lagFrom = -1;
    this.handshakeOutage = false;
    this.ackPending = false;
    this.rtt.reset();
    this.retries = 0;
    this.dupAcks = 0;
    this.lastActivity = 0;
    this.requestsCaptured = 0;
    this.requestsReplayed = 0;
    emptyArray(this.requestSeqs);
    this.requestsSettled = 0;
    this.successor = null;
    this.mod = null;
  }

  /**
   * Index of the unit containing sequence `seq` (head.. units.length), or units.length when past
   * all. The search starts at the unit found last when `seq` is not before it (transmit walks
   * the units in order): O(1) per segment instead of a walk from `head`, which with thousands of
   * units in flight (a pipelined module session) made every transmit quadratic.
   */
  unitIndexAt(seq: number): number {
    const units = this.units;
    let i = this.hint;
    if (i < this.head || i >= units.length || seqBefore(seq, (units[i] as Unit).seq)) i = this.head;
    for (; i < units.length; i++) {
      const u = units[i] as Unit;
      const end = seqAdd(u.seq, unitSpan(u));
      if ((seqAfterEq(seq, u.seq) && seqBefore(seq, end)) || (u.rst && seq === u.seq)) {
        this.hint = i;
        return i;
      }
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
      if (seqAfter(end, this.sndUna)) break;
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
    const parked = this.capture.parked;
    for (const u of parked) pool.release(u);
    emptyArray(parked);
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
