/**
 * What a module session keeps besides a plain one (engine-module.ts drives it): the captured
 * client bytes not yet framed into messages, the messages the module held, the end of the
 * stream built for the target (sent space), and the in-order delivery of the target's (and the online server's) reply bytes.
 * Allocated only for sessions replayed through a module.
 */
import { seqAdd, seqAfter } from '../seq';
import { ByteOrderer, type OrderStats } from './byte-order';

/** A message the module held: offered again after the next target bytes, and at `until`. */
export interface HeldMessage {
  /** The message bytes (a copy). */
  bytes: Buffer;
  /** Captured sequence number of its first byte. */
  capSeq: number;
  /** Reply bytes the online server had sent before it (the release wait), -1 when it does not begin an exchange. */
  gate: number;
  /** Captured requests it carries. */
  requests: number;
  capturedAt: number;
  tsVal: number;
  /** Engine time its hold limit passes (from the first hold; Infinity: none). */
  until: number;
}

/** The module side of one session. */
export class ModSession {
  /** The module's per-session state (startSession's value). */
  st: unknown = undefined;
  /** Captured bytes not yet framed: pending[pendOff, pendOff + pendLen), the first at captured seq `pendSeq`. */
  pending: Buffer = Buffer.alloc(0);
  pendOff = 0;
  pendLen = 0;
  pendSeq = 0;
  /** Exchange starts among the pending bytes: flat [captured seq, respBytes] pairs, in order. */
  readonly marks: number[] = [];
  /** Capture time and TSval of the latest captured segment (units built from pending bytes carry them). */
  capturedAt = 0;
  tsVal = 0;
  /** Messages held by the module, oldest first. */
  readonly held: HeldMessage[] = [];
  /** The module gave up framing (frameClient returned -1): captured bytes pass through unframed. */
  unframed = false;
  /** The client's FIN / RST was captured and is not yet in the sent stream (it follows the data). */
  finPending = false;
  rstPending = false;
  /**
   * The production bytes the captured FIN / RST acknowledged beyond the client's previous ACK
   * (its respBytes; -1: none): the close waits for the target's answer like a request would
   * (transmit.ts releaseCheck, closeQuietMs), instead of cutting a slow answer short.
   */
  closeGate = -1;
  /** Next sequence number of the stream built for the target (sent space), and its first. */
  sentEnd = 0;
  sentBase = 0;
  /**
   * Captured client bytes (from the session's first, sentBase: the captured and the sent stream
   * start at the same number) that the online server had acknowledged in its latest captured
   * reply segment (the highest seen); undefined until one came with an ACK.
   */
  onlineAcked: number | undefined = undefined;
  /** The last request was dropped: the next message's release does not wait for an answer to it. */
  answerless = false;
  /** A module call asked to end the session (the engine ends it once the call returned). */
  ending: string | null = null;
  /** A module call is running (no re-entrant framing from inside it). */
  busy = false;
  /** The target's reply bytes in sequence order. */
  readonly target: ByteOrderer;
  /** The online server's captured reply bytes in sequence order (wantsOnlineReplies). */
  readonly online: ByteOrderer;

  constructor(targetStats: OrderStats, onlineStats: OrderStats) {
    this.target = new ByteOrderer(targetStats);
    this.online = new ByteOrderer(onlineStats);
  }

  /** When the oldest held message's hold limit passes (Infinity: none held, or no limit). */
  holdDeadline(): number {
    const h = this.held[0];
    return h === undefined ? Infinity : h.until;
  }

  /** Nothing captured waits in the module: no partial or held message, no FIN/RST behind them. */
  idle(): boolean {
    return this.pendLen === 0 && this.held.length === 0 && !this.finPending && !this.rstPending;
  }

  /** Appends captured bytes (seq must be pendSeq + pendLen) to the pending bytes. */
  appendPending(src: Buffer, off: number, len: number): void {
    if (len === 0) return;
    if (this.pendLen === 0) this.pendOff = 0;
    let b = this.pending;
    if (this.pendOff + this.pendLen + len > b.length) {
      const need = this.pendLen + len;
      if (need > b.length / 2 || this.pendOff === 0) {
        const nb = Buffer.allocUnsafe(Math.max(need * 2, 2048));
        b.copy(nb, 0, this.pendOff, this.pendOff + this.pendLen);
        b = this.pending = nb;
      } else b.copy(b, 0, this.pendOff, this.pendOff + this.pendLen);
      this.pendOff = 0;
    }
    src.copy(b, this.pendOff + this.pendLen, off, off + len);
    this.pendLen += len;
  }

  /** Removes the first `n` pending bytes. */
  consume(n: number): void {
    this.pendOff += n;
    this.pendLen -= n;
    this.pendSeq = seqAdd(this.pendSeq, n);
    if (this.pendLen === 0) this.pendOff = 0;
  }

  /**
   * Takes the exchange marks of captured bytes before `end`: returns the number of requests
   * they start and sets `gateOut[0]` to the first one's respBytes (-1 when none).
   */
  takeMarks(end: number, gateOut: number[]): number {
    const mk = this.marks;
    let n = 0;
    gateOut[0] = -1;
    while (mk.length > 0 && seqAfter(end, mk[0] as number)) {
      if (n === 0) gateOut[0] = mk[1] as number;
      mk.shift();
      mk.shift();
      n++;
    }
    return n;
  }
}
