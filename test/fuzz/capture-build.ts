/**
 * Test-side builders of classic pcap and pcapng bytes from a plain model, and the records a
 * correct reader must deliver for that model (computed independently of the reader: exact
 * integer timestamps with BigInt, then converted). Used by the fuzz properties (round trips)
 * and by regression tests that need a crafted capture.
 */

/** One classic pcap record. */
export interface PcapRecordModel {
  sec: number;
  frac: number;
  data: Uint8Array;
  origLen: number;
}

/** A whole classic pcap file. */
export interface PcapModel {
  le: boolean;
  /** 'us' (0xa1b2c3d4), 'ns' (0xa1b23c4d) or 'modified' (0xa1b2cd34, 24-byte record headers). */
  variant: 'us' | 'ns' | 'modified';
  snaplen: number;
  linkType: number;
  records: PcapRecordModel[];
}

/** What a reader delivers for one packet record. */
export interface ExpectedRecord {
  linkType: number;
  data: Buffer;
  origLen: number;
  tsMs: number;
  ifIndex: number;
}

const MAGIC = { us: 0xa1b2c3d4, ns: 0xa1b23c4d, modified: 0xa1b2cd34 } as const;

function put32(b: Buffer, o: number, v: number, le: boolean): void {
  if (le) b.writeUInt32LE(v >>> 0, o);
  else b.writeUInt32BE(v >>> 0, o);
}
function put16(b: Buffer, o: number, v: number, le: boolean): void {
  if (le) b.writeUInt16LE(v & 0xffff, o);
  else b.writeUInt16BE(v & 0xffff, o);
}

/** The bytes of a classic pcap file. */
export function buildPcap(m: PcapModel): Buffer {
  const hl = m.variant === 'modified' ? 24 : 16;
  const parts: Buffer[] = [];
  const h = Buffer.alloc(24);
  put32(h, 0, MAGIC[m.variant], m.le);
  put16(h, 4, 2, m.le);
  put16(h, 6, 4, m.le);
  put32(h, 16, m.snaplen, m.le);
  put32(h, 20, m.linkType, m.le);
  parts.push(h);
  for (const r of m.records) {
    const rh = Buffer.alloc(hl);
    put32(rh, 0, r.sec, m.le);
    put32(rh, 4, r.frac, m.le);
    put32(rh, 8, r.data.length, m.le);
    put32(rh, 12, r.origLen, m.le);
    parts.push(rh, Buffer.from(r.data));
  }
  return Buffer.concat(parts);
}

/** The records a reader must deliver for a classic pcap model (all, in order). */
export function expectedPcap(m: PcapModel): ExpectedRecord[] {
  const units = m.variant === 'ns' ? 1e9 : 1e6;
  return m.records.map((r) => ({
    linkType: m.linkType & 0xffff,
    data: Buffer.from(r.data),
    origLen: r.origLen,
    tsMs: r.sec * 1000 + (r.frac * 1000) / units,
    ifIndex: 0,
  }));
}

/** An Interface Description Block. */
export interface IdbModel {
  kind: 'idb';
  linkType: number;
  snaplen: number;
  /** if_name, omitted when null. */
  name: string | null;
  /** if_tsresol byte, omitted when null (then 10^-6). */
  tsresol: number | null;
  /** if_tsoffset seconds (a 64-bit signed integer as bigint), omitted when null. */
  tsoffset: bigint | null;
}
/** An Enhanced (EPB) or obsolete (OPB) Packet Block. */
export interface PacketModel {
  kind: 'epb' | 'opb';
  /** Interface id within the section. */
  ifId: number;
  hi: number;
  lo: number;
  data: Uint8Array;
  origLen: number;
  /** Bytes after the padded packet data (options such as epb_flags; the reader skips them). */
  trailer: Uint8Array;
}
/** A Simple Packet Block. */
export interface SpbModel {
  kind: 'spb';
  data: Uint8Array;
  origLen: number;
}
/** A block the reader skips (NRB 4, ISB 5, DSB 10, custom 0xbad/0x40000bad, or anything unknown). */
export interface OtherModel {
  kind: 'other';
  type: number;
  body: Uint8Array;
}
export type BlockModel = IdbModel | PacketModel | SpbModel | OtherModel;

/** One pcapng section: byte order and blocks after its SHB. */
export interface SectionModel {
  le: boolean;
  blocks: BlockModel[];
}

function pad4(n: number): number {
  return (n + 3) & ~3;
}

function block(type: number, body: Buffer, le: boolean): Buffer {
  const len = 12 + pad4(body.length);
  const b = Buffer.alloc(len);
  put32(b, 0, type, le);
  put32(b, 4, len, le);
  body.copy(b, 8);
  put32(b, len - 4, len, le);
  return b;
}

function option(code: number, val: Buffer, le: boolean): Buffer {
  const b = Buffer.alloc(4 + pad4(val.length));
  put16(b, 0, code, le);
  put16(b, 2, val.length, le);
  val.copy(b, 4);
  return b;
}

function blockBytes(m: BlockModel, le: boolean): Buffer {
  switch (m.kind) {
    case 'idb': {
      const fixed = Buffer.alloc(8);
      put16(fixed, 0, m.linkType, le);
      put32(fixed, 4, m.snaplen, le);
      const opts: Buffer[] = [];
      if (m.name !== null) opts.push(option(2, Buffer.from(m.name, 'utf8'), le));
      if (m.tsresol !== null) opts.push(option(9, Buffer.from([m.tsresol]), le));
      if (m.tsoffset !== null) {
        const v = Buffer.alloc(8);
        if (le) v.writeBigInt64LE(m.tsoffset);
        else v.writeBigInt64BE(m.tsoffset);
        opts.push(option(14, v, le));
      }
      if (opts.length > 0) opts.push(option(0, Buffer.alloc(0), le));
      return block(1, Buffer.concat([fixed, ...opts]), le);
    }
    case 'epb':
    case 'opb': {
      const h = Buffer.alloc(20);
      if (m.kind === 'epb') put32(h, 0, m.ifId, le);
      else put16(h, 0, m.ifId, le);
      put32(h, 4, m.hi, le);
      put32(h, 8, m.lo, le);
      put32(h, 12, m.data.length, le);
      put32(h, 16, m.origLen, le);
      const data = Buffer.alloc(pad4(m.data.length));
      Buffer.from(m.data).copy(data);
      return block(m.kind === 'epb' ? 6 : 2, Buffer.concat([h, data, Buffer.from(m.trailer)]), le);
    }
    case 'spb': {
      const h = Buffer.alloc(4);
      put32(h, 0, m.origLen, le);
      return block(3, Buffer.concat([h, Buffer.from(m.data)]), le);
    }
    case 'other':
      return block(m.type, Buffer.from(m.body), le);
  }
}

function shbBytes(le: boolean): Buffer {
  const body = Buffer.alloc(16, 0xff);
  put32(body, 0, 0x1a2b3c4d, le);
  put16(body, 4, 1, le);
  put16(body, 6, 0, le);
  return block(0x0a0d0d0a, body, le);
}

/** The bytes of a pcapng file. */
export function buildPcapng(sections: SectionModel[]): Buffer {
  const parts: Buffer[] = [];
  for (const s of sections) {
    parts.push(shbBytes(s.le));
    for (const b of s.blocks) parts.push(blockBytes(b, s.le));
  }
  return Buffer.concat(parts);
}

/** Timestamp units per second of an if_tsresol byte (pcapng spec: bit 7 set = power of 2). */
export function tsresolUnits(r: number | null): number {
  if (r === null) return 1e6;
  return (r & 0x80) !== 0 ? 2 ** (r & 0x7f) : 10 ** r;
}

/**
 * The records (and interfaces) a reader must deliver for a well-formed pcapng model whose
 * packet blocks name existing interfaces and fit their blocks. SPBs take interface 0 of the
 * section (captured = min(orig, data, snaplen when non-zero)) and the last EPB/OPB timestamp.
 */
export function expectedPcapng(sections: SectionModel[]): {
  records: ExpectedRecord[];
  ifaces: { linkType: number; snaplen: number; name: string; tsUnitsPerSecond: number; tsOffsetSeconds: number }[];
} {
  const records: ExpectedRecord[] = [];
  const ifaces: {
    linkType: number;
    snaplen: number;
    name: string;
    tsUnitsPerSecond: number;
    tsOffsetSeconds: number;
  }[] = [];
  let lastTs = 0;
  for (const s of sections) {
    const base = ifaces.length;
    for (const b of s.blocks) {
      if (b.kind === 'idb') {
        ifaces.push({
          linkType: b.linkType,
          snaplen: b.snaplen,
          name: b.name ?? '',
          tsUnitsPerSecond: tsresolUnits(b.tsresol),
          tsOffsetSeconds: b.tsoffset === null ? 0 : Number(b.tsoffset),
        });
      } else if (b.kind === 'epb' || b.kind === 'opb') {
        const f = ifaces[base + b.ifId];
        if (!f) throw new Error('model: packet block for a missing interface');
        const units = BigInt(b.hi) * 4294967296n + BigInt(b.lo);
        lastTs = (Number(units) * 1000) / f.tsUnitsPerSecond + f.tsOffsetSeconds * 1000;
        records.push({
          linkType: f.linkType,
          data: Buffer.from(b.data),
          origLen: b.origLen,
          tsMs: lastTs,
          ifIndex: base + b.ifId,
        });
      } else if (b.kind === 'spb') {
        const f = ifaces[base];
        if (!f) throw new Error('model: simple packet block before an interface');
        let cap = Math.min(b.origLen, pad4(b.data.length));
        if (f.snaplen !== 0) cap = Math.min(cap, f.snaplen);
        const padded = Buffer.alloc(pad4(b.data.length));
        Buffer.from(b.data).copy(padded);
        records.push({
          linkType: f.linkType,
          data: padded.subarray(0, cap),
          origLen: b.origLen,
          tsMs: lastTs,
          ifIndex: base,
        });
      }
    }
  }
  return { records, ifaces };
}
