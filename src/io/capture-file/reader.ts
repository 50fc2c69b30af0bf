/**
 * Streaming reader for capture files (classic pcap and pcapng), in bounded memory: the file
 * is read with FileHandle.read into one reused chunk buffer and records are delivered as
 * (buf, off, len) views into it; no allocation per record. When a record spans the end of
 * the chunk, the unread tail is moved to the front and the rest is read behind it; the chunk
 * grows only for a single record larger than itself, up to the format's record ceiling
 * (64 MiB), so a corrupt length field never causes a huge allocation.
 */
import { open as fsOpen, type FileHandle } from 'node:fs/promises';
import { type ErrorCode, TcpcopyError } from '../../core/errors';
import { PCAP_FILE_HEADER_LEN, PcapParser, parsePcapHeader, pcapMagicInfo } from './pcap';
import { PCAPNG_SHB, PcapngParser, pcapngBomLE } from './pcapng';
import type { CaptureDamage, CaptureInterface, CaptureRecordReceiver, FormatParser, ParseContext } from './types';

export type { CaptureDamage, CaptureInterface, CaptureRecordReceiver } from './types';

/** Default size of the read chunk: 4 MiB. */
export const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;
/** At most this many damage entries are kept in `damage` (all are counted in damageCount). */
export const MAX_DAMAGE_ENTRIES = 1000;

/** Options of CaptureFileReader.open. */
export interface CaptureReaderOptions {
  /** Size of the reused read buffer in bytes (default 4 MiB, minimum 64); tests use tiny ones. */
  chunkBytes?: number;
}

function osReason(e: unknown): string {
  if (e && typeof e === 'object' && 'code' in e) {
    const err = e as NodeJS.ErrnoException;
    // Node's message already starts with the code ("ENOENT: no such file or directory, open '...'")
    const code = err.code ?? 'error';
    return err.message.startsWith(`${code}: `) ? err.message : `${code}: ${err.message}`;
  }
  return String(e);
}

/** Reads one capture file record by record; see the module comment. */
export class CaptureFileReader implements ParseContext {
  /** Interfaces seen so far (pcap: exactly one; pcapng: IDBs of all sections in order). */
  readonly ifaces: CaptureInterface[] = [];
  private readonly damageList: CaptureDamage[] = [];
  private fatalError: TcpcopyError | null = null;
  private records = 0;
  private damages = 0;
  private chunk: Buffer;
  /** Parse position and end of valid bytes in `chunk`; file offset of chunk[0]. */
  private pos = 0;
  private end = 0;
  private chunkFileOff = 0;
  private eof = false;
  private done = false;
  private parser: FormatParser | null = null;

  private constructor(
    /** The path given to open(). */
    readonly path: string,
    private fh: FileHandle | null,
    /** Size of the file in bytes when it was opened. */
    readonly fileSize: number,
    chunkBytes: number,
    /** 'pcap' (classic libpcap) or 'pcapng'. */
    readonly format: 'pcap' | 'pcapng',
  ) {
    this.chunk = Buffer.allocUnsafe(chunkBytes);
  }

  /**
   * Opens `path` and reads the file header. Throws TcpcopyError ERR_CAPTURE_OPEN (missing,
   * unreadable, a directory: names the file and the OS reason), ERR_CAPTURE_FORMAT (neither
   * pcap nor pcapng: names the magic seen) or ERR_CAPTURE_TRUNCATED (file ends in its header).
   */
  static async open(path: string, opts: CaptureReaderOptions = {}): Promise<CaptureFileReader> {
    const chunkBytes = Math.max(64, Math.floor(opts.chunkBytes ?? DEFAULT_CHUNK_BYTES));
    let fh: FileHandle;
    let size: number;
    try {
      fh = await fsOpen(path, 'r');
    } catch (e) {
      throw new TcpcopyError('ERR_CAPTURE_OPEN', `cannot open capture file ${path}: ${osReason(e)}`, { file: path });
    }
    try {
      const st = await fh.stat();
      if (st.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
      size = st.size;
      const head = Buffer.alloc(PCAP_FILE_HEADER_LEN);
      const { bytesRead } = await fh.read(head, 0, head.length, 0);
      const r = CaptureFileReader.detect(path, fh, size, chunkBytes, head, bytesRead);
      await r.fill(1);
      return r;
    } catch (e) {
      await fh.close().catch(() => undefined);
      if (e instanceof TcpcopyError) throw e;
      throw new TcpcopyError('ERR_CAPTURE_OPEN', `cannot read capture file ${path}: ${osReason(e)}`, { file: path });
    }
  }

  private static detect(
    path: string,
    fh: FileHandle,
    size: number,
    chunkBytes: number,
    head: Buffer,
    n: number,
  ): CaptureFileReader {
    if (n < 4) {
      throw new TcpcopyError('ERR_CAPTURE_FORMAT', `${path} is not a pcap or pcapng capture: it has only ${n} bytes`, {
        file: path,
        size: n,
      });
    }
    const magic = head.readUInt32LE(0);
    const magicHex = head.subarray(0, 4).toString('hex');
    if (pcapMagicInfo(magic)) {
      if (n < PCAP_FILE_HEADER_LEN) {
        throw new TcpcopyError('ERR_CAPTURE_TRUNCATED', `${path}: pcap file header truncated (${n} of 24 bytes)`, {
          file: path,
          offset: 0,
        });
      }
      const hdr = parsePcapHeader(head);
      const r = new CaptureFileReader(path, fh, size, chunkBytes, 'pcap');
      r.ifaces.push(
        Object.freeze({
          linkType: hdr.linkType,
          snaplen: hdr.snaplen,
          name: '',
          tsUnitsPerSecond: hdr.unitsPerSecond,
          tsOffsetSeconds: 0,
          section: 0,
        }),
      );
      r.parser = new PcapParser(r, hdr);
      r.chunkFileOff = PCAP_FILE_HEADER_LEN;
      return r;
    }
    if (magic === PCAPNG_SHB) {
      if (n < 12) {
        throw new TcpcopyError('ERR_CAPTURE_TRUNCATED', `${path}: pcapng section header truncated (${n} bytes)`, {
          file: path,
          offset: 0,
        });
      }
      if (pcapngBomLE(head.readUInt32LE(8)) === null) {
        throw new TcpcopyError(
          'ERR_CAPTURE_FORMAT',
          `${path} looks like pcapng but its byte-order magic is ${head.subarray(8, 12).toString('hex')} (expected 1a2b3c4d)`,
          { file: path },
        );
      }
      const r = new CaptureFileReader(path, fh, size, chunkBytes, 'pcapng');
      r.parser = new PcapngParser(r);
      return r;
    }
    throw new TcpcopyError(
      'ERR_CAPTURE_FORMAT',
      `${path} is not a pcap or pcapng capture: magic ${magicHex} (expected d4c3b2a1/4d3cb2a1 for pcap, 0a0d0d0a for pcapng)`,
      { file: path, magic: magicHex },
    );
  }

  /** Interfaces seen so far (pcap: exactly one). */
  get interfaces(): readonly CaptureInterface[] {
    return this.ifaces;
  }
  /** Damaged/skipped places in file order (at most MAX_DAMAGE_ENTRIES kept). */
  get damage(): readonly CaptureDamage[] {
    return this.damageList;
  }
  /** Number of damaged/skipped places, including those beyond MAX_DAMAGE_ENTRIES. */
  get damageCount(): number {
    return this.damages;
  }
  /** Set when reading stopped early (ERR_CAPTURE_TRUNCATED, ERR_CAPTURE_CORRUPT, ERR_CAPTURE_READ). */
  get fatal(): TcpcopyError | null {
    return this.fatalError;
  }
  /** Packet records delivered so far. */
  get recordsRead(): number {
    return this.records;
  }
  /** Bytes of the file consumed so far (for progress bars). */
  get bytesRead(): number {
    return this.chunkFileOff + this.pos;
  }

  /** ParseContext: records a skipped place. */
  damaged(offset: number, reason: string): void {
    this.damages++;
    if (this.damageList.length < MAX_DAMAGE_ENTRIES) this.damageList.push(Object.freeze({ offset, reason }));
  }

  /** ParseContext: stops reading with ERR_CAPTURE_CORRUPT. */
  corrupt(offset: number, reason: string): void {
    this.damaged(offset, reason);
    this.stop(
      'ERR_CAPTURE_CORRUPT',
      offset,
      `${this.path}: corrupt at byte offset ${offset}: ${reason}; the ${this.records} records before it were read`,
    );
  }

  private stop(code: ErrorCode, offset: number, message: string): void {
    if (!this.fatalError) this.fatalError = new TcpcopyError(code, message, { file: this.path, offset });
    this.done = true;
  }

  /** Makes at least `need` bytes available from `pos` (fewer only at end of file). */
  private async fill(need: number): Promise<void> {
    if (need > this.chunk.length) {
      const cap = this.parser ? this.parser.maxRecordBytes : need;
      const bigger = Buffer.allocUnsafe(Math.max(need, Math.min(this.chunk.length * 2, cap)));
      this.chunk.copy(bigger, 0, this.pos, this.end);
      this.chunk = bigger;
      this.chunkFileOff += this.pos;
      this.end -= this.pos;
      this.pos = 0;
    } else if (this.pos > 0) {
      this.chunk.copy(this.chunk, 0, this.pos, this.end);
      this.chunkFileOff += this.pos;
      this.end -= this.pos;
      this.pos = 0;
    }
    const fh = this.fh;
    if (!fh) {
      this.eof = true;
      return;
    }
    while (this.end - this.pos < need && !this.eof) {
      const { bytesRead } = await fh.read(
        this.chunk,
        this.end,
        this.chunk.length - this.end,
        this.chunkFileOff + this.end,
      );
      if (bytesRead === 0) this.eof = true;
      else this.end += bytesRead;
    }
  }

  /**
   * Delivers up to `maxRecords` packet records to `rx` (skipped blocks do not count).
   * Resolves false at end of file or once `fatal` is set (the file is then closed); true
   * when more may follow. Do not call again before the previous call has resolved.
   */
  async readBatch(rx: CaptureRecordReceiver, maxRecords: number): Promise<boolean> {
    const parser = this.parser;
    if (this.done || !parser) return false;
    let n = 0;
    while (n < maxRecords) {
      if (rx.full?.() === true) return true;
      const avail = this.end - this.pos;
      const r = avail === 0 ? -1 : parser.step(this.chunk, this.pos, avail, this.chunkFileOff + this.pos, rx);
      if (r > 0) {
        this.pos += r;
        if (parser.delivered) {
          n++;
          this.records++;
        }
        continue;
      }
      if (r === 0) return this.finish();
      if (this.eof) {
        if (avail > 0) this.truncated(avail, -r);
        return this.finish();
      }
      try {
        await this.fill(-r);
      } catch (e) {
        const off = this.chunkFileOff + this.end;
        this.stop('ERR_CAPTURE_READ', off, `${this.path}: read error at byte offset ${off}: ${osReason(e)}`);
        return this.finish();
      }
    }
    return true;
  }

  /** End of reading (EOF or fatal): releases the file handle at once. */
  private async finish(): Promise<false> {
    this.done = true;
    await this.close().catch(() => undefined);
    return false;
  }

  private truncated(have: number, need: number): void {
    const off = this.chunkFileOff + this.pos;
    const what = this.format === 'pcap' ? 'record' : 'block';
    this.damaged(off, `${what} truncated at end of file (${have} of ${need} bytes present)`);
    this.stop(
      'ERR_CAPTURE_TRUNCATED',
      off,
      `${this.path}: truncated at byte offset ${off}: the last ${what} needs ${need} bytes but the file ends after ${have}; the ${this.records} records before it were read`,
    );
  }

  /** Closes the file (idempotent). */
  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    this.done = true;
    if (fh) await fh.close();
  }
}
