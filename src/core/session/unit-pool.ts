/**
 * Recycled storage for captured client segments, so the hot path does not allocate per
 * packet: Unit objects come from a free list, and payload bytes are copied into shared chunks
 * (a bump pointer in a 64 KiB Buffer) instead of a Buffer each. A chunk is reused once every
 * unit in it has been released (acknowledged by the target, or its session ended). Payloads
 * larger than a quarter chunk get a Buffer of their own (rare: large segments are few per
 * request).
 */
import type { Unit } from './session';

/** Bytes of one payload chunk. */
export const CHUNK_BYTES = 64 * 1024;
/** Payloads above this get their own Buffer. */
const OWN_BUFFER_ABOVE = CHUNK_BYTES / 4;
/** Spare chunks kept for reuse (4 MiB); beyond that, released chunks are left to the GC. */
const MAX_SPARE_CHUNKS = 64;
/** Spare Unit objects kept. */
const MAX_FREE_UNITS = 65_536;

/** One payload chunk: units point into `buf`; `live` counts them. */
export class PayloadChunk {
  readonly buf: Buffer = Buffer.allocUnsafeSlow(CHUNK_BYTES);
  /** Bytes handed out (bump pointer). */
  used = 0;
  /** Units whose payload lies in this chunk and that are not released yet. */
  live = 0;
}

/** Counters of a pool (for the memory benchmark and tests). */
export interface UnitPoolStats {
  /** Unit objects created (not reused). */
  unitsCreated: number;
  /** Chunks created (not reused). */
  chunksCreated: number;
  /** Payloads that got a Buffer of their own. */
  ownBuffers: number;
}

/** Free lists of Units and payload chunks; one per engine. */
export class UnitPool {
  private readonly freeUnits: Unit[] = [];
  private readonly spare: PayloadChunk[] = [];
  private cur: PayloadChunk = new PayloadChunk();
  readonly stats: UnitPoolStats = { unitsCreated: 0, chunksCreated: 1, ownBuffers: 0 };

  /**
   * A unit at client sequence `seq`, captured at `capturedAt` (ms) with TSval `tsVal` (0: none),
   * with no payload and no FIN or RST; the caller sets those (copyPayload, `fin`, `rst`) and,
   * when they apply, startsExchange/respBytes.
   */
  take(seq: number, capturedAt: number, tsVal: number): Unit {
    const u = this.freeUnits.pop() ?? this.newUnit();
    u.seq = seq;
    u.data = null;
    u.dataOff = 0;
    u.chunk = null;
    u.len = 0;
    u.fin = false;
    u.rst = false;
    u.capturedAt = capturedAt;
    u.startsExchange = false;
    u.respBytes = 0;
    u.tsVal = tsVal;
    u.ackOk = false;
    u.ack = 0;
    return u;
  }

  /**
   * Sets the unit's payload to a copy of `len` bytes of `src` from `off` (none when `src` is
   * null): into the current shared chunk, or a Buffer of its own when large.
   */
  copyPayload(u: Unit, src: Buffer | null, off: number, len: number): void {
    u.len = len;
    if (len === 0 || src === null) return;
    if (len > OWN_BUFFER_ABOVE) {
      const b = Buffer.allocUnsafe(len);
      src.copy(b, 0, off, off + len);
      u.data = b;
      u.dataOff = 0;
      u.chunk = null;
      this.stats.ownBuffers++;
      return;
    }
    let c = this.cur;
    if (c.used + len > CHUNK_BYTES) {
      c = this.nextChunk();
    }
    src.copy(c.buf, c.used, off, off + len);
    u.data = c.buf;
    u.dataOff = c.used;
    u.chunk = c;
    c.used += len;
    c.live++;
  }

  /** Gives a unit (and its share of a chunk) back. The unit must not be used afterwards. */
  release(u: Unit): void {
    const c = u.chunk;
    if (c !== null) {
      c.live--;
      if (c.live === 0) {
        if (c === this.cur)
          c.used = 0; // empty again: start over at its beginning
        else if (this.spare.length < MAX_SPARE_CHUNKS) {
          c.used = 0;
          this.spare.push(c);
        }
      }
    }
    u.data = null;
    u.chunk = null;
    if (this.freeUnits.length < MAX_FREE_UNITS) this.freeUnits.push(u);
  }

  private nextChunk(): PayloadChunk {
    let c = this.spare.pop();
    if (c === undefined) {
      c = new PayloadChunk();
      this.stats.chunksCreated++;
    }
    this.cur = c;
    return c;
  }

  private newUnit(): Unit {
    this.stats.unitsCreated++;
    return {
      seq: 0,
      data: null,
      dataOff: 0,
      chunk: null,
      len: 0,
      fin: false,
      rst: false,
      capturedAt: 0,
      startsExchange: false,
      respBytes: 0,
      tsVal: 0,
      ackOk: false,
      ack: 0,
    };
  }
}
