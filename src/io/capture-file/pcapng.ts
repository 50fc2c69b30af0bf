/**
 * pcapng: a sequence of blocks (type, total length, body, total length again), grouped in
 * sections that each start with a Section Header Block fixing the byte order. Packets come
 * from Enhanced (EPB), Simple (SPB) and obsolete Packet (OPB) blocks; Interface Description
 * Blocks (IDB) give link type, snaplen and timestamp resolution/offset. Everything else
 * (NRB, ISB, DSB, custom, unknown) is skipped. Block lengths make resync possible, so a
 * block with bad contents is skipped and counted; a block whose lengths are inconsistent
 * stops the reading (nothing after it can be trusted).
 */
import type { CaptureInterface, CaptureRecordReceiver, FormatParser, ParseContext } from './types';

/** Section Header Block type (the same in both byte orders). */
export const PCAPNG_SHB = 0x0a0d0d0a;
const IDB = 0x00000001;
const OPB = 0x00000002;
const SPB = 0x00000003;
const EPB = 0x00000006;
/** Byte-order magic of a little-endian section as read little-endian. */
const BOM_LE = 0x1a2b3c4d;
/** The same magic written by a big-endian writer, read little-endian. */
const BOM_BE = 0x4d3c2b1a;
/** Ceiling for one block; a larger length field is taken as corruption (never allocated). */
export const MAX_BLOCK_BYTES = 64 * 1024 * 1024;
const OPT_IF_NAME = 2;
const OPT_IF_TSRESOL = 9;
const OPT_IF_TSOFFSET = 14;
const TWO32 = 4294967296;

/** Byte order announced by an SHB's byte-order magic (read little-endian), or null if invalid. */
export function pcapngBomLE(bomReadLE: number): boolean | null {
  if (bomReadLE === BOM_LE) return true;
  if (bomReadLE === BOM_BE) return false;
  return null;
}

/** Block parser for pcapng; interfaces are appended to ctx.ifaces, numbered across sections. */
export class PcapngParser implements FormatParser {
  delivered = false;
  readonly maxRecordBytes = MAX_BLOCK_BYTES;
  private le = true;
  /** Index in ctx.ifaces of the current section's interface 0. */
  private base = 0;
  private section = -1;
  /** Per interface (global index): ms per high timestamp word, ms per unit, offset in ms. */
  private readonly hiMs: number[] = [];
  private readonly loMs: number[] = [];
  private readonly offMs: number[] = [];
  /** Timestamp given to SPB packets (which carry none): the last one seen. */
  private lastTs = 0;

  constructor(private readonly ctx: ParseContext) {}

  private u32(buf: Buffer, o: number): number {
    return this.le ? buf.readUInt32LE(o) : buf.readUInt32BE(o);
  }

  step(buf: Buffer, pos: number, avail: number, fileOffset: number, rx: CaptureRecordReceiver): number {
    this.delivered = false;
    if (avail < 12) return -12;
    const type = this.u32(buf, pos);
    let le = this.le;
    if (type === PCAPNG_SHB) {
      const bo = pcapngBomLE(buf.readUInt32LE(pos + 8));
      if (bo === null) {
        this.ctx.corrupt(
          fileOffset,
          `section header block with bad byte-order magic 0x${buf.readUInt32LE(pos + 8).toString(16)}`,
        );
        return 0;
      }
      le = bo;
    }
    const len = le ? buf.readUInt32LE(pos + 4) : buf.readUInt32BE(pos + 4);
    if (len < 12 || (len & 3) !== 0 || len > MAX_BLOCK_BYTES) {
      this.ctx.corrupt(fileOffset, `block type 0x${type.toString(16)} has impossible length ${len}`);
      return 0;
    }
    if (avail < len) return -len;
    const trail = le ? buf.readUInt32LE(pos + len - 4) : buf.readUInt32BE(pos + len - 4);
    if (trail !== len) {
      this.ctx.corrupt(
        fileOffset,
        `block type 0x${type.toString(16)}: trailing length ${trail} differs from leading length ${len}`,
      );
      return 0;
    }
    switch (type) {
      case EPB:
        return this.packetBlock(buf, pos, len, fileOffset, rx, this.u32(buf, pos + 8), 'enhanced');
      case SPB:
        return this.simple(buf, pos, len, fileOffset, rx);
      case OPB: {
        const ifId = this.le ? buf.readUInt16LE(pos + 8) : buf.readUInt16BE(pos + 8);
        return this.packetBlock(buf, pos, len, fileOffset, rx, ifId, 'obsolete packet');
      }
      case IDB:
        this.idb(buf, pos, len, fileOffset);
        return len;
      case PCAPNG_SHB:
        return this.shb(buf, pos, len, le, fileOffset);
      default:
        return len; // NRB, ISB, DSB, custom, unknown: skipped
    }
  }

  private shb(buf: Buffer, pos: number, len: number, le: boolean, fileOffset: number): number {
    if (len < 28) {
      this.ctx.corrupt(fileOffset, `section header block too short (${len} bytes)`);
      return 0;
    }
    const major = le ? buf.readUInt16LE(pos + 12) : buf.readUInt16BE(pos + 12);
    if (major !== 1) {
      this.ctx.corrupt(fileOffset, `section header block with unsupported version ${major}`);
      return 0;
    }
    this.le = le;
    this.section++;
    this.base = this.ctx.ifaces.length;
    return len;
  }

  private idb(buf: Buffer, pos: number, len: number, fileOffset: number): void {
    if (len < 20) {
      this.ctx.damaged(fileOffset, `interface description block too short (${len} bytes)`);
      return;
    }
    const linkType = this.le ? buf.readUInt16LE(pos + 8) : buf.readUInt16BE(pos + 8);
    const snaplen = this.u32(buf, pos + 12);
    let name = '';
    let units = 1e6;
    let offSec = 0;
    const end = pos + len - 4;
    let o = pos + 16;
    while (o + 4 <= end) {
      const code = this.le ? buf.readUInt16LE(o) : buf.readUInt16BE(o);
      const olen = this.le ? buf.readUInt16LE(o + 2) : buf.readUInt16BE(o + 2);
      if (code === 0) break;
      if (o + 4 + olen > end) {
        this.ctx.damaged(
          fileOffset,
          `interface description block option ${code} runs past the block; rest of options ignored`,
        );
        break;
      }
      const v = o + 4;
      if (code === OPT_IF_NAME) {
        name = buf.toString('utf8', v, v + olen).replace(/\0+$/, '');
      } else if (code === OPT_IF_TSRESOL && olen >= 1) {
        const r = buf[v] ?? 6;
        units = (r & 0x80) !== 0 ? 2 ** (r & 0x7f) : 10 ** r;
      } else if (code === OPT_IF_TSOFFSET && olen >= 8) {
        offSec = Number(this.le ? buf.readBigInt64LE(v) : buf.readBigInt64BE(v));
      }
      o = v + ((olen + 3) & ~3);
    }
    const iface: CaptureInterface = {
      linkType,
      snaplen,
      name,
      tsUnitsPerSecond: units,
      tsOffsetSeconds: offSec,
      section: this.section,
    };
    this.ctx.ifaces.push(Object.freeze(iface));
    this.loMs.push(1000 / units);
    this.hiMs.push((TWO32 * 1000) / units);
    this.offMs.push(offSec * 1000);
  }

  /** EPB and OPB: same layout after the interface id (ts high, ts low, caplen, origlen, data at 28). */
  private packetBlock(
    buf: Buffer,
    pos: number,
    len: number,
    fileOffset: number,
    rx: CaptureRecordReceiver,
    ifId: number,
    what: string,
  ): number {
    if (len < 32) {
      this.ctx.damaged(fileOffset, `${what} block too short (${len} bytes)`);
      return len;
    }
    const g = this.base + ifId;
    if (ifId >= this.ctx.ifaces.length - this.base) {
      this.ctx.damaged(fileOffset, `${what} block for unknown interface ${ifId}`);
      return len;
    }
    const capLen = this.u32(buf, pos + 20);
    if (capLen > len - 32) {
      this.ctx.damaged(fileOffset, `${what} block captured length ${capLen} exceeds the block (${len} bytes)`);
      return len;
    }
    const ts =
      this.u32(buf, pos + 12) * (this.hiMs[g] ?? 0) +
      this.u32(buf, pos + 16) * (this.loMs[g] ?? 0) +
      (this.offMs[g] ?? 0);
    this.lastTs = ts;
    this.delivered = true;
    const iface = this.ctx.ifaces[g];
    rx.packet(iface ? iface.linkType : 0, buf, pos + 28, capLen, this.u32(buf, pos + 24), ts, g, fileOffset);
    return len;
  }

  /** SPB: original length then data; captured = min(orig, block room, snaplen of interface 0). */
  private simple(buf: Buffer, pos: number, len: number, fileOffset: number, rx: CaptureRecordReceiver): number {
    const iface = this.ctx.ifaces[this.base];
    if (this.ctx.ifaces.length <= this.base || !iface) {
      this.ctx.damaged(fileOffset, 'simple packet block before any interface description block');
      return len;
    }
    if (len < 16) {
      this.ctx.damaged(fileOffset, `simple packet block too short (${len} bytes)`);
      return len;
    }
    const origLen = this.u32(buf, pos + 8);
    let capLen = len - 16;
    if (origLen < capLen) capLen = origLen;
    if (iface.snaplen !== 0 && iface.snaplen < capLen) capLen = iface.snaplen;
    this.delivered = true;
    rx.packet(iface.linkType, buf, pos + 12, capLen, origLen, this.lastTs, this.base, fileOffset);
    return len;
  }
}
