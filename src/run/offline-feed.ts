import { CaptureFileReader } from '../io/capture-file/reader';
import type { CaptureRecordReceiver } from '../io/capture-file/types';
import { TCPCOPY_DEFAULTS } from '../config/tcpcopy-config';

/**
 * Reads a capture file in batches and hands its frames out at the recorded pace (-a speeds it
 * up, 0 = unpaced; -I skips idle gaps; -T repeats the file). Frames are copied into one reused
 * arena per batch, so memory stays bounded whatever the file size.
 */
export interface OfflineFrameSink {
  /** One frame, due now. `rep` is the repetition index (-T). */
  /** `tsMs`: the frame's recorded capture time (ms since the Unix epoch, fractional). */
  frame(linkType: number, buf: Buffer, off: number, len: number, origLen: number, rep: number, tsMs: number): void;
}

export interface OfflineFeedOptions {
  file: string;
  /** -a: speed-up factor; 0 = as fast as possible. */
  accelerate: number;
  /** -I: gaps longer than this (ms) are skipped; 0 = off. */
  idleGapMs: number;
  /** -T: how many times the file is replayed. */
  repeats: number;
  /**
   * --max-gap in ms: a jump between consecutive recorded timestamps longer than this, forward
   * or back (a corrupt timestamp, a capture restarted hours later), is skipped as -I would
   * skip it and reported through `onLongGap`. 0 = never (the recorded gap is waited for).
   * Default DEFAULT_MAX_GAP_MS (one hour).
   */
  maxGapMs?: number;
  /**
   * Called once per skipped long gap with its size in recorded ms (negative: the timestamp
   * jumps back) and the 1-based number of the frame after it (counted over all repetitions).
   */
  onLongGap?: (gapMs: number, frame: number) => void;
}

/** Default --max-gap: one hour of recorded time, in ms. */
export const DEFAULT_MAX_GAP_MS = TCPCOPY_DEFAULTS.maxGapMs;

const BATCH = 4096;
const ARENA_BYTES = 16 << 20;
/** The largest frame a batch keeps room for (pcap's usual snaplen, 256 KiB); a larger one grows the arena. */
const MAX_FRAME = 256 << 10;

export class OfflineFeed implements CaptureRecordReceiver {
  private reader: CaptureFileReader | null = null;
  private arena = Buffer.allocUnsafe(ARENA_BYTES);
  private used = 0;
  private n = 0;
  private next = 0;
  private readonly offs = new Int32Array(BATCH);
  private readonly lens = new Int32Array(BATCH);
  private readonly origLens = new Int32Array(BATCH);
  private readonly links = new Int32Array(BATCH);
  private readonly dues = new Float64Array(BATCH);
  /** Recorded capture times of the buffered frames (ms). */
  private readonly tss = new Float64Array(BATCH);
  private rep = 0;
  private eof = false;
  private firstTs = NaN;
  private prevTs = NaN;
  private skipped = 0;
  private startWall = 0;
  /** Frames read from the file(s) so far. */
  frames = 0;
  /** Damaged records skipped, over all repetitions. */
  damaged = 0;
  /** The reader's fatal error text (truncated/corrupt file), null if none. */
  fatal: string | null = null;
  fatalCode: string | null = null;
  /** Long gaps skipped (see OfflineFeedOptions.maxGapMs), over all repetitions. */
  longGaps = 0;
  private readonly maxGapMs: number;

  constructor(private readonly opts: OfflineFeedOptions) {
    this.maxGapMs = opts.maxGapMs ?? DEFAULT_MAX_GAP_MS;
  }

  /** Opens the file (throws TcpcopyError naming it when it cannot be read or is no capture). */
  async open(now: number): Promise<void> {
    this.reader = await CaptureFileReader.open(this.opts.file);
    this.startWall = now;
  }

  /** Progress of the current repetition, 0..1 (for the progress bar). */
  progress(): number {
    const r = this.reader;
    if (r === null || r.fileSize === 0) return 1;
    return (this.rep + Math.min(1, r.bytesRead / r.fileSize)) / this.opts.repeats;
  }

  /**
   * How long (ms from `now`) the next frame already read waits for its recorded time; 0 when
   * one is due or none is buffered. The status line shows it, so that a long recorded gap is
   * not mistaken for a finished replay.
   */
  waitingMs(now: number): number {
    if (this.next >= this.n) return 0;
    const at = this.dues[this.next] as number;
    return at > now ? at - now : 0;
  }

  get done(): boolean {
    return this.eof && this.next >= this.n;
  }

  /**
   * The batch ends before the arena could overflow (CaptureFileReader asks before each record):
   * less room left than the largest frame a capture usually holds.
   */
  full(): boolean {
    return this.arena.length - this.used < MAX_FRAME;
  }

  /** Capture record callback: copies the frame into the arena. */
  packet(linkType: number, buf: Buffer, off: number, capLen: number, origLen: number, tsMs: number): void {
    if (this.used + capLen > this.arena.length) {
      // a frame larger than the room left (beyond MAX_FRAME): a larger arena holding the frames
      // of this batch at the same offsets. Never dropped: a frame left out here was lost without
      // a count (600 frames of 64 KB, as a capture of TSO/GRO-merged segments holds: 258 came out).
      const a = Buffer.allocUnsafe(Math.max(this.arena.length * 2, this.used + capLen));
      this.arena.copy(a, 0, 0, this.used);
      this.arena = a;
    }
    const i = this.n++;
    buf.copy(this.arena, this.used, off, off + capLen);
    this.offs[i] = this.used;
    this.lens[i] = capLen;
    this.origLens[i] = origLen;
    this.links[i] = linkType;
    this.dues[i] = this.due(tsMs);
    this.tss[i] = tsMs;
    this.used += capLen;
    this.frames++;
  }

  /** Replay time (ms, wall clock) at which a recorded timestamp is due. */
  private due(ts: number): number {
    if (Number.isNaN(this.firstTs)) {
      this.firstTs = ts;
      this.prevTs = ts;
    }
    const gap = ts - this.prevTs;
    if (this.maxGapMs > 0 && (gap > this.maxGapMs || -gap > this.maxGapMs)) {
      // the frame is due with the one before it, whichever way the timestamp jumped
      this.skipped += gap;
      this.prevTs = ts;
      this.longGaps++;
      this.opts.onLongGap?.(gap, this.frames + 1);
    } else {
      if (this.opts.idleGapMs > 0 && gap > this.opts.idleGapMs) this.skipped += gap;
      if (ts > this.prevTs) this.prevTs = ts;
    }
    if (this.opts.accelerate === 0) return this.startWall;
    return this.startWall + (ts - this.firstTs - this.skipped) / this.opts.accelerate;
  }

  /**
   * Hands out every frame due at `now`, at most `max`. Returns the time the next frame is due
   * (Infinity when the input is exhausted, `now` when more are due right away).
   */
  async pump(sink: OfflineFrameSink, now: number, max: number): Promise<number> {
    let handed = 0;
    for (;;) {
      while (this.next < this.n) {
        const i = this.next;
        const at = this.dues[i] as number;
        if (at > now) return at;
        this.next++;
        sink.frame(
          this.links[i] as number,
          this.arena,
          this.offs[i] as number,
          this.lens[i] as number,
          this.origLens[i] as number,
          this.rep,
          this.tss[i] as number,
        );
        if (++handed >= max) return now;
      }
      if (this.eof) return Infinity;
      await this.refill(now);
    }
  }

  private async refill(now: number): Promise<void> {
    this.n = 0;
    this.next = 0;
    this.used = 0;
    const r = this.reader;
    if (r === null) {
      this.eof = true;
      return;
    }
    const more = await r.readBatch(this, BATCH);
    if (!more && this.n === 0) {
      this.damaged += r.damageCount;
      if (r.fatal !== null) {
        this.fatal = r.fatal.message;
        this.fatalCode = r.fatal.code;
      }
      await r.close();
      this.reader = null;
      if (this.rep + 1 < this.opts.repeats && this.fatal === null) {
        this.rep++;
        this.reader = await CaptureFileReader.open(this.opts.file);
        this.firstTs = NaN;
        this.skipped = 0;
        this.startWall = now;
      } else {
        this.eof = true;
      }
    }
  }

  async close(): Promise<void> {
    if (this.reader !== null) await this.reader.close();
    this.reader = null;
  }
}
