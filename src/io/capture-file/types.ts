/**
 * Shapes shared by the capture-file reader and its per-format parsers (pcap.ts, pcapng.ts).
 */
import type { TcpcopyError } from '../../core/errors';

/** Receives the packet records of a capture file, one call per record, in file order. */
export interface CaptureRecordReceiver {
  /**
   * Same shape as PacketReceiver.packet in src/io/types.ts plus the interface index and the
   * record's byte offset in the file. `buf[off .. off+capLen)` holds the frame starting at
   * the link layer given by `linkType` (passed through as written, known or not). The bytes
   * are only valid during the call. `tsMs` = ms since the Unix epoch, fractional.
   * `ifIndex` indexes CaptureFileReader.interfaces (pcap: always 0; pcapng: counted over all
   * sections, so interface 0 of a second section gets the next free index).
   * `fileOffset` = offset of the record header (pcap) or block (pcapng) in the file.
   */
  packet(
    linkType: number,
    buf: Buffer,
    off: number,
    capLen: number,
    origLen: number,
    tsMs: number,
    ifIndex: number,
    fileOffset: number,
  ): void;
  /**
   * Optional: true when the receiver wants no more records in this batch (its buffer is
   * full). CaptureFileReader.readBatch asks before each record and ends the batch early; the
   * next batch starts at that record.
   */
  full?(): boolean;
}

/** One damaged or skipped place in a capture file. */
export interface CaptureDamage {
  /** Byte offset in the file of the record/block concerned. */
  offset: number;
  /** What is wrong, e.g. "enhanced packet block for unknown interface 3". */
  reason: string;
}

/** One capture interface (pcap: the file header; pcapng: an Interface Description Block). */
export interface CaptureInterface {
  /** LINKTYPE_* value as written in the file (not validated). */
  linkType: number;
  /** Snapshot length in bytes; 0 = unlimited (pcapng allows it). */
  snaplen: number;
  /** pcapng if_name option, '' when absent (always '' for pcap). */
  name: string;
  /** Timestamp units per second: 1e6 (pcap, pcapng default), 1e9 (nanosecond pcap), or from if_tsresol. */
  tsUnitsPerSecond: number;
  /** pcapng if_tsoffset option: seconds added to every timestamp of the interface (0 when absent). */
  tsOffsetSeconds: number;
  /** Index of the pcapng section (SHB) the interface belongs to; 0 for pcap. */
  section: number;
}

/**
 * What a format parser needs from the reader: somewhere to record damage and a way to stop.
 * Not a hot path: called only for damaged or unusual records.
 */
export interface ParseContext {
  /** The capture file's path (for messages). */
  readonly path: string;
  /** Interfaces seen so far; the pcapng parser appends to it. */
  readonly ifaces: CaptureInterface[];
  /** Records a skipped/damaged place. */
  damaged(offset: number, reason: string): void;
  /** Stops reading: sets `fatal` (ERR_CAPTURE_CORRUPT) naming the file and the offset. */
  corrupt(offset: number, reason: string): void;
}

/**
 * A format parser: decodes the record starting at `buf[pos]` with `avail` bytes present.
 * Returns > 0: bytes consumed (the record was delivered to `rx` or skipped; `delivered`
 * says which); < 0: the record needs `-ret` bytes from `pos` (the reader reads more and
 * calls again; at end of file it reports truncation); 0: stopped, the context's `corrupt`
 * was called.
 */
export interface FormatParser {
  /** True when the last successful step delivered a packet. */
  delivered: boolean;
  /** Largest record (bytes) the parser will ever ask for; bigger ones are reported corrupt. */
  readonly maxRecordBytes: number;
  step(buf: Buffer, pos: number, avail: number, fileOffset: number, rx: CaptureRecordReceiver): number;
}

/** Re-exported for convenience. */
export type { TcpcopyError };
