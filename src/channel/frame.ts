/**
 * Combined frames of intercept -> tcpcopy records: a u16 count (network order) followed by
 * `count` records of 64 (or 192, or 88 for channel v2) bytes. At most 16 records per frame (6
 * with 192-byte records); a larger count is a protocol error and the receiver closes the
 * connection. A channel v2 record of a session that asked for payload is followed by its
 * payload bytes (a tail whose length the record's header gives: see v2.ts).
 */
import { FRAME_COUNT_BYTES, maxRecordsPerFrame, type FrameRecordBytes } from './constants';

/**
 * Accumulates records into consecutive frames in one growable buffer (intercept side).
 * Steady state is allocation-free except `take()`, which returns one copy per flush.
 */
export class FrameEncoder {
  private buf: Buffer;
  private len = 0;
  /** Offset of the current (open) frame's count, -1 when none is open. */
  private frameOff = -1;
  private frameCount = 0;
  private frames = 0;
  private records = 0;
  /** Most records per frame for this variant. */
  readonly maxRecords: number;
  /** Records refused because the buffer reached `maxBytes`. */
  dropped = 0;

  /**
   * @param recordBytes 64 or 192
   * @param maxBytes most bytes held before records are refused (default 4 MiB)
   */
  constructor(
    readonly recordBytes: FrameRecordBytes,
    private readonly maxBytes = 4 << 20,
  ) {
    this.maxRecords = maxRecordsPerFrame(recordBytes);
    this.buf = Buffer.alloc(FRAME_COUNT_BYTES + this.maxRecords * recordBytes);
  }

  /** The buffer to write the reserved record into (may change after the next `reserve`). */
  get buffer(): Buffer {
    return this.buf;
  }

  /** Bytes pending (complete frames + the open one). */
  get pendingBytes(): number {
    return this.len;
  }

  /**
   * Reserves the next record slot and returns its offset in `buffer`; the caller writes
   * exactly `bytes` bytes there before the next call (`recordBytes`, more for a v2 record with
   * its payload tail). Returns -1 (and counts a drop) when `maxBytes` would be exceeded.
   */
  reserve(bytes: number = this.recordBytes): number {
    const need = (this.frameOff < 0 ? FRAME_COUNT_BYTES : 0) + bytes;
    if (this.len + need > this.maxBytes) {
      this.dropped++;
      return -1;
    }
    if (this.len + need > this.buf.length) {
      const nb = Buffer.alloc(Math.min(this.maxBytes, Math.max(this.buf.length * 2, this.len + need)));
      this.buf.copy(nb, 0, 0, this.len);
      this.buf = nb;
    }
    if (this.frameOff < 0) {
      this.frameOff = this.len;
      this.frameCount = 0;
      this.frames++;
      this.len += FRAME_COUNT_BYTES;
    }
    const at = this.len;
    this.len += bytes;
    this.frameCount++;
    this.records++;
    this.buf.writeUInt16BE(this.frameCount, this.frameOff);
    if (this.frameCount >= this.maxRecords) this.frameOff = -1;
    return at;
  }

  /** Copies a complete record `src[off .. off+recordBytes)`; false when dropped. */
  addRecord(src: Buffer, off: number): boolean {
    const at = this.reserve();
    if (at < 0) return false;
    src.copy(this.buf, at, off, off + this.recordBytes);
    return true;
  }

  /** True when the last frame is full (a good moment to write it out). */
  get frameFull(): boolean {
    return this.len > 0 && this.frameOff < 0;
  }

  /** Number of frames pending (the open one counts). */
  get pendingFrames(): number {
    return this.frames;
  }

  /** Number of records pending. */
  get pendingRecords(): number {
    return this.records;
  }

  /** Closes the open frame and returns a copy of every pending byte (null when none). */
  take(): Buffer | null {
    if (this.len === 0) return null;
    const out = Buffer.allocUnsafe(this.len);
    this.buf.copy(out, 0, 0, this.len);
    this.len = 0;
    this.frameOff = -1;
    this.frameCount = 0;
    this.frames = 0;
    this.records = 0;
    return out;
  }
}

/** Why a frame stream was refused. */
export type FrameVerdict = 'ok' | 'bad-count';

/**
 * Length of the tail that follows a record's fixed `recordBytes` header (v2: its payload),
 * read from the complete header at `b[off]`; 0 for none.
 */
export type TailLength = (b: Buffer, off: number) => number;

/**
 * Streaming frame decoder (tcpcopy side), fed arbitrary chunks. A record lying whole in a
 * chunk is handed to `onRecord` in place; a split one is assembled in one reused buffer
 * (grown once to the largest record with tail seen). Allocation-free in steady state.
 */
export class FrameDecoder {
  private rec: Buffer;
  private recLen = 0;
  /** Length of the record being assembled: recordBytes until its header is complete, then + tail. */
  private need: number;
  private cnt0 = -1;
  /** Records still expected in the current frame; -1 while reading a count. */
  private left = -1;
  private verdict: FrameVerdict = 'ok';
  /** Most records per frame accepted. */
  readonly maxRecords: number;
  /** Frames whose count was read. */
  frames = 0;
  /** Records delivered. */
  records = 0;
  /** The offending count after 'bad-count'. */
  badCount = 0;

  /**
   * @param recordBytes 64, 192 or 88 (v2): the fixed part of each record
   * @param onRecord called with each record `buf[off .. off+len)` (len = recordBytes + tail),
   *   valid only during the call
   * @param tail the tail length of a record (v2 payload); absent = records have none
   */
  constructor(
    readonly recordBytes: FrameRecordBytes,
    private readonly onRecord: (buf: Buffer, off: number, len: number) => void,
    private readonly tail: TailLength | null = null,
  ) {
    this.maxRecords = maxRecordsPerFrame(recordBytes);
    this.rec = Buffer.alloc(recordBytes);
    this.need = recordBytes;
  }

  /** Feeds `buf[off .. off+len)`. After 'bad-count' the stream is dead and stays so. */
  feed(buf: Buffer, off = 0, len = buf.length - off): FrameVerdict {
    if (this.verdict !== 'ok') return this.verdict;
    const rb = this.recordBytes;
    let p = off;
    const end = off + len;
    while (p < end) {
      if (this.left < 0) {
        // Reading the 2-byte count, possibly split.
        if (this.cnt0 < 0) {
          if (end - p >= 2) {
            this.startFrame(buf.readUInt16BE(p));
            p += 2;
          } else {
            this.cnt0 = buf[p] as number;
            p++;
          }
        } else {
          this.startFrame((this.cnt0 << 8) | (buf[p] as number));
          this.cnt0 = -1;
          p++;
        }
        if (this.verdict !== 'ok') return this.verdict;
        continue;
      }
      if (this.recLen === 0 && end - p >= rb) {
        const total = this.tail === null ? rb : rb + this.tail(buf, p);
        if (end - p >= total) {
          this.deliver(buf, p, total);
          p += total;
          continue;
        }
      }
      if (this.recLen < rb) {
        const take = Math.min(rb - this.recLen, end - p);
        buf.copy(this.rec, this.recLen, p, p + take);
        this.recLen += take;
        p += take;
        if (this.recLen < rb) continue;
        this.need = this.tail === null ? rb : rb + this.tail(this.rec, 0);
        if (this.need > this.rec.length) {
          const nb = Buffer.alloc(this.need);
          this.rec.copy(nb, 0, 0, rb);
          this.rec = nb;
        }
      }
      if (this.recLen < this.need) {
        const take = Math.min(this.need - this.recLen, end - p);
        buf.copy(this.rec, this.recLen, p, p + take);
        this.recLen += take;
        p += take;
      }
      if (this.recLen === this.need) {
        this.recLen = 0;
        this.deliver(this.rec, 0, this.need);
      }
    }
    return 'ok';
  }

  private startFrame(count: number): void {
    if (count > this.maxRecords) {
      this.badCount = count;
      this.verdict = 'bad-count';
      return;
    }
    this.frames++;
    this.left = count === 0 ? -1 : count;
  }

  private deliver(b: Buffer, o: number, len: number): void {
    this.records++;
    if (--this.left === 0) this.left = -1;
    this.onRecord(b, o, len);
  }
}
