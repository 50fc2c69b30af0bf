/**
 * Classic libpcap format: a 24-byte file header, then records of a 16-byte header
 * (ts seconds, ts fraction, captured length, original length) and the captured bytes.
 * Both byte orders; microsecond (0xa1b2c3d4) and nanosecond (0xa1b23c4d) magic; the
 * Kuznetzov "modified" variant (0xa1b2cd34, 24-byte record headers) is accepted too.
 */
import type { CaptureRecordReceiver, FormatParser, ParseContext } from './types';

/** Microsecond-resolution magic as read with the file's own byte order. */
export const PCAP_MAGIC_US = 0xa1b2c3d4;
/** Nanosecond-resolution magic. */
export const PCAP_MAGIC_NS = 0xa1b23c4d;
/** Alexey Kuznetzov's modified pcap (extra ifindex/protocol/pkt_type fields per record). */
export const PCAP_MAGIC_MODIFIED = 0xa1b2cd34;
/** Size of the classic pcap file header. */
export const PCAP_FILE_HEADER_LEN = 24;
/** libpcap's own ceiling for a record's captured length when the snaplen is smaller. */
const LIBPCAP_MAX_SNAPLEN = 262144;
/** Hard ceiling on one record, whatever the header says (a corrupt length never allocates more). */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

/** What the classic pcap file header says. */
export interface PcapHeader {
  /** Fields are little-endian. */
  le: boolean;
  /** Timestamp fraction units per second (1e6 or 1e9). */
  unitsPerSecond: number;
  /** Record header size (16, or 24 for the modified format). */
  recHdrLen: number;
  /** Snapshot length from the header. */
  snaplen: number;
  /** Link type (lower 16 bits of the header's network field; FCS bits dropped). */
  linkType: number;
  /** Format version, e.g. "2.4". */
  version: string;
}

/** Which classic pcap variant `magicLE` (the first 4 bytes read little-endian) announces, or null. */
export function pcapMagicInfo(magicLE: number): { le: boolean; nanos: boolean; modified: boolean } | null {
  const swapped =
    (((magicLE & 0xff) << 24) | ((magicLE & 0xff00) << 8) | ((magicLE >>> 8) & 0xff00) | (magicLE >>> 24)) >>> 0;
  for (const [v, le] of [
    [magicLE, true],
    [swapped, false],
  ] as const) {
    if (v === PCAP_MAGIC_US) return { le, nanos: false, modified: false };
    if (v === PCAP_MAGIC_NS) return { le, nanos: true, modified: false };
    if (v === PCAP_MAGIC_MODIFIED) return { le, nanos: false, modified: true };
  }
  return null;
}

/** Parses the 24-byte header at `buf[0]` (caller checked the magic and the length). */
export function parsePcapHeader(buf: Buffer): PcapHeader {
  const info = pcapMagicInfo(buf.readUInt32LE(0));
  const le = info ? info.le : true;
  const u16 = (o: number): number => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o));
  const u32 = (o: number): number => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  return {
    le,
    unitsPerSecond: info && info.nanos ? 1e9 : 1e6,
    recHdrLen: info && info.modified ? 24 : 16,
    snaplen: u32(16),
    linkType: u32(20) & 0xffff,
    version: `${u16(4)}.${u16(6)}`,
  };
}

/** Record parser for classic pcap (one interface, index 0). */
export class PcapParser implements FormatParser {
  delivered = false;
  readonly maxRecordBytes: number;
  /** Largest captured length accepted; above it the record header is taken as corrupt. */
  private readonly maxCapLen: number;
  private readonly fracToMs: number;

  constructor(
    private readonly ctx: ParseContext,
    private readonly hdr: PcapHeader,
  ) {
    this.maxCapLen = Math.min(Math.max(hdr.snaplen, LIBPCAP_MAX_SNAPLEN), MAX_RECORD_BYTES);
    this.maxRecordBytes = this.maxCapLen + hdr.recHdrLen;
    this.fracToMs = 1000 / hdr.unitsPerSecond;
  }

  step(buf: Buffer, pos: number, avail: number, fileOffset: number, rx: CaptureRecordReceiver): number {
    this.delivered = false;
    const h = this.hdr;
    const hl = h.recHdrLen;
    if (avail < hl) return -hl;
    let sec: number, frac: number, capLen: number, origLen: number;
    if (h.le) {
      sec = buf.readUInt32LE(pos);
      frac = buf.readUInt32LE(pos + 4);
      capLen = buf.readUInt32LE(pos + 8);
      origLen = buf.readUInt32LE(pos + 12);
    } else {
      sec = buf.readUInt32BE(pos);
      frac = buf.readUInt32BE(pos + 4);
      capLen = buf.readUInt32BE(pos + 8);
      origLen = buf.readUInt32BE(pos + 12);
    }
    if (capLen > this.maxCapLen) {
      this.ctx.corrupt(
        fileOffset,
        `record captured length ${capLen} is impossible (snaplen ${h.snaplen}, limit ${this.maxCapLen})`,
      );
      return 0;
    }
    const total = hl + capLen;
    if (avail < total) return -total;
    this.delivered = true;
    rx.packet(h.linkType, buf, pos + hl, capLen, origLen, sec * 1000 + frac * this.fracToMs, 0, fileOffset);
    return total;
  }
}
