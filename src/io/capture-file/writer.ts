/**
 * Classic pcap writer (either resolution, chosen link type), buffered: records are packed
 * into one reused 1 MiB buffer and written with writeSync when it fills. Used by tests and
 * by benchmarks that synthesize large captures.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { TcpcopyError } from '../../core/errors';
import { PCAP_MAGIC_NS, PCAP_MAGIC_US } from './pcap';

/** Options of PcapWriter.create. */
export interface PcapWriterOptions {
  /** Nanosecond timestamps (magic 0xa1b23c4d) instead of microseconds. Default false. */
  nanos?: boolean;
  /** Snapshot length written in the header, bytes. Default 262144. */
  snaplen?: number;
  /** Size of the write buffer in bytes. Default 1 MiB. */
  bufferBytes?: number;
}

/** Writes a little-endian classic pcap file. */
export class PcapWriter {
  private buf: Buffer;
  private used = 0;
  private fd: number;
  private readonly units: number;
  /** Records written so far. */
  records = 0;

  private constructor(
    /** Path of the file being written. */
    readonly path: string,
    fd: number,
    /** Link type written in the header (LINKTYPE_*). */
    readonly linkType: number,
    /** Nanosecond resolution. */
    readonly nanos: boolean,
    /** Snapshot length in the header. */
    readonly snaplen: number,
    bufferBytes: number,
  ) {
    this.fd = fd;
    this.units = nanos ? 1e9 : 1e6;
    this.buf = Buffer.allocUnsafe(Math.max(bufferBytes, 4096));
    const h = this.buf;
    h.writeUInt32LE(nanos ? PCAP_MAGIC_NS : PCAP_MAGIC_US, 0);
    h.writeUInt16LE(2, 4);
    h.writeUInt16LE(4, 6);
    h.writeInt32LE(0, 8); // thiszone
    h.writeUInt32LE(0, 12); // sigfigs
    h.writeUInt32LE(snaplen >>> 0, 16);
    h.writeUInt32LE(linkType >>> 0, 20);
    this.used = 24;
  }

  /** Creates (truncates) `path` and writes the file header. Throws ERR_CAPTURE_OPEN. */
  static create(path: string, linkType: number, opts: PcapWriterOptions = {}): PcapWriter {
    let fd: number;
    try {
      fd = openSync(path, 'w');
    } catch (e) {
      throw new TcpcopyError('ERR_CAPTURE_OPEN', `cannot create capture file ${path}: ${(e as Error).message}`, {
        file: path,
      });
    }
    return new PcapWriter(
      path,
      fd,
      linkType,
      opts.nanos ?? false,
      opts.snaplen ?? 262144,
      opts.bufferBytes ?? 1024 * 1024,
    );
  }

  /**
   * Appends one record: `buf[off .. off+len)` captured at `tsMs` (ms since epoch,
   * fractional; rounded to the file's resolution). `origLen` defaults to `len`.
   */
  write(tsMs: number, buf: Buffer, off: number, len: number, origLen: number = len): void {
    let sec = Math.floor(tsMs / 1000);
    let frac = Math.round((tsMs - sec * 1000) * (this.units / 1000));
    if (frac >= this.units) {
      sec++;
      frac -= this.units;
    }
    this.writeRaw(sec, frac, buf, off, len, origLen);
  }

  /** Appends one record with the timestamp given exactly as seconds + fraction (µs or ns). */
  writeRaw(sec: number, frac: number, buf: Buffer, off: number, len: number, origLen: number = len): void {
    if (this.fd < 0)
      throw new TcpcopyError('ERR_CAPTURE_CLOSED', `${this.path}: write after close`, { file: this.path });
    if (this.used + 16 + len > this.buf.length) {
      this.flush();
      if (16 + len > this.buf.length) this.buf = Buffer.allocUnsafe(16 + len);
    }
    const b = this.buf;
    const u = this.used;
    b.writeUInt32LE(sec >>> 0, u);
    b.writeUInt32LE(frac >>> 0, u + 4);
    b.writeUInt32LE(len, u + 8);
    b.writeUInt32LE(origLen >>> 0, u + 12);
    buf.copy(b, u + 16, off, off + len);
    this.used = u + 16 + len;
    this.records++;
  }

  /** Writes the buffered records to the file. */
  flush(): void {
    let o = 0;
    while (o < this.used) o += writeSync(this.fd, this.buf, o, this.used - o);
    this.used = 0;
  }

  /** Flushes and closes the file (idempotent). */
  close(): void {
    if (this.fd < 0) return;
    this.flush();
    closeSync(this.fd);
    this.fd = -1;
  }
}
