/**
 * Fuzz targets of the wire decoders (src/core/wire/decode.ts) and the reply records built from
 * what they decode (src/channel/record.ts, v2.ts): hostile frames of every link type never
 * throw and stay inside the buffer; emitted packets wrapped in every link header decode back
 * to what was emitted; a record of a decoded packet parses back to the same headers.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeFrame, parseIpv4Tcp, payloadCaptured, type DecodeStatus } from '../../src/core/wire/decode';
import { emitIpv4Tcp, newTcpRepr, tcpOptionsLength, type TcpRepr } from '../../src/core/wire/build';
import { verifyIpv4TcpChecksums } from '../../src/core/wire/checksum';
import { newSegment, TCP_SYN, type TcpSegment } from '../../src/core/wire/segment';
import { recordPayloadLen, recordPayloadOff, writeRecord } from '../../src/channel/record';
import { V2_RECORD_BYTES, v2ToV1, writeRecordV2 } from '../../src/channel/v2';
import { mutate, mutationArb, target, type FuzzTarget, type Mutation } from './target';

const STATUSES: readonly DecodeStatus[] = [
  'ok',
  'unknown-link',
  'not-ipv4',
  'ipv6',
  'truncated',
  'bad-ip-header',
  'fragment',
  'not-tcp',
  'bad-tcp-header',
  'address-table-full',
];
const u32 = fc.nat({ max: 0xffffffff });
const u16 = fc.nat({ max: 0xffff });

/** How an IPv4 packet is wrapped: link type and header. */
type Wrap =
  | { link: 'ethernet'; vlans: number[] }
  | { link: 'sll' }
  | { link: 'sll2' }
  | { link: 'null'; le: boolean }
  | { link: 'raw'; type: 12 | 14 | 101 | 228 };

const wrapArb: fc.Arbitrary<Wrap> = fc.oneof(
  fc.record({
    link: fc.constant('ethernet' as const),
    vlans: fc.array(fc.constantFrom(0x8100, 0x88a8, 0x9100), { maxLength: 3 }),
  }),
  fc.record({ link: fc.constant('sll' as const) }),
  fc.record({ link: fc.constant('sll2' as const) }),
  fc.record({ link: fc.constant('null' as const), le: fc.boolean() }),
  fc.record({
    link: fc.constant('raw' as const),
    type: fc.constantFrom(12 as const, 14 as const, 101 as const, 228 as const),
  }),
);

/** Link header bytes and link type for `w` in front of an IPv4 packet. */
function linkHeader(w: Wrap): { linkType: number; hdr: Buffer } {
  switch (w.link) {
    case 'ethernet': {
      const h = Buffer.alloc(14 + 4 * w.vlans.length, 0xee);
      let o = 12;
      for (const t of w.vlans) {
        h.writeUInt16BE(t, o);
        h.writeUInt16BE(0x0123, o + 2);
        o += 4;
      }
      h.writeUInt16BE(0x0800, o);
      return { linkType: 1, hdr: h };
    }
    case 'sll': {
      const h = Buffer.alloc(16, 0x11);
      h.writeUInt16BE(0x0800, 14);
      return { linkType: 113, hdr: h };
    }
    case 'sll2': {
      const h = Buffer.alloc(20, 0x22);
      h.writeUInt16BE(0x0800, 0);
      return { linkType: 276, hdr: h };
    }
    case 'null': {
      const h = Buffer.alloc(4);
      if (w.le) h.writeUInt32LE(2);
      else h.writeUInt32BE(2);
      return { linkType: 0, hdr: h };
    }
    case 'raw':
      return { linkType: w.type, hdr: Buffer.alloc(0) };
  }
}

const reprArb: fc.Arbitrary<TcpRepr> = fc
  .record({
    srcIp: u32,
    dstIp: u32,
    srcPort: u16,
    dstPort: u16,
    seq: u32,
    ack: u32,
    flags: fc.nat({ max: 255 }),
    window: u16,
    ipId: u16,
    ttl: fc.nat({ max: 255 }),
    mss: u16,
    wscale: fc.integer({ min: -1, max: 255 }),
    sackOk: fc.boolean(),
    hasTs: fc.boolean(),
    tsVal: u32,
    tsEcr: u32,
  })
  .map((r) => ({ ...newTcpRepr(), ...r }));

/** One emitted packet, wrapped, with link padding after it and a prefix before the frame. */
interface Emitted {
  repr: TcpRepr;
  payload: Uint8Array;
  wrap: Wrap;
  prefix: number;
  padding: Uint8Array;
}
const emittedArb: fc.Arbitrary<Emitted> = fc.record({
  repr: reprArb,
  payload: fc.uint8Array({ maxLength: 300 }),
  wrap: wrapArb,
  prefix: fc.nat({ max: 8 }),
  padding: fc.uint8Array({ maxLength: 20 }),
});

/** The frame of `e` in a buffer: [prefix][link header][IPv4+TCP][padding]; returns it and the frame's offset/length. */
function frameOf(e: Emitted): { buf: Buffer; off: number; len: number; linkType: number; ipLen: number } {
  const { linkType, hdr } = linkHeader(e.wrap);
  const ipLen = 40 + tcpOptionsLength(e.repr) + e.payload.length;
  const buf = Buffer.alloc(e.prefix + hdr.length + ipLen + e.padding.length, 0x5a);
  hdr.copy(buf, e.prefix);
  const n = emitIpv4Tcp(e.repr, Buffer.from(e.payload), 0, e.payload.length, buf, e.prefix + hdr.length);
  assert.equal(n, ipLen);
  Buffer.from(e.padding).copy(buf, e.prefix + hdr.length + ipLen);
  return { buf, off: e.prefix, len: buf.length - e.prefix, linkType, ipLen };
}

/** The TCP/IP fields of `seg` equal those of `r` (options as emitIpv4Tcp writes them). */
function assertSegmentIs(seg: TcpSegment, r: TcpRepr, payloadLen: number): void {
  assert.equal(seg.srcIp, r.srcIp);
  assert.equal(seg.dstIp, r.dstIp);
  assert.equal(seg.srcPort, r.srcPort);
  assert.equal(seg.dstPort, r.dstPort);
  assert.equal(seg.seq, r.seq);
  assert.equal(seg.ack, r.ack);
  assert.equal(seg.flags, r.flags);
  assert.equal(seg.window, r.window);
  assert.equal(seg.payloadLen, payloadLen);
  const syn = (r.flags & TCP_SYN) !== 0;
  assert.equal(seg.mss, syn ? r.mss : 0, 'mss');
  assert.equal(seg.wscale, syn ? r.wscale : -1, 'wscale');
  assert.equal(seg.sackOk, syn && r.sackOk, 'sackOk');
  assert.equal(seg.hasTs, r.hasTs, 'hasTs');
  assert.equal(seg.tsVal, r.hasTs ? r.tsVal : 0);
  assert.equal(seg.tsEcr, r.hasTs ? r.tsEcr : 0);
}

const decodeRoundTrip: FuzzTarget<Emitted> = {
  name: 'decode-roundtrip',
  says: 'emitIpv4Tcp in every link header (VLAN tags, cooked, loopback, raw) -> decodeFrame = the emitted fields',
  arb: emittedArb,
  unitRuns: 300,
  check(e) {
    const f = frameOf(e);
    const seg = newSegment();
    assert.equal(decodeFrame(f.linkType, f.buf, f.off, f.len, seg), 'ok');
    assertSegmentIs(seg, e.repr, e.payload.length);
    assert.equal(seg.ipTotalLen, f.ipLen);
    assert.equal(seg.ttl, e.repr.ttl);
    assert.equal(seg.ipId, e.repr.ipId);
    assert.equal(payloadCaptured(seg), e.payload.length);
    assert.ok(f.buf.subarray(seg.payloadOff, seg.payloadOff + e.payload.length).equals(Buffer.from(e.payload)));
    assert.deepEqual(verifyIpv4TcpChecksums(f.buf, seg.ipOff), { ip: true, tcp: true });
  },
};

const recordRoundTrip: FuzzTarget<Emitted> = {
  name: 'record-roundtrip',
  says: "a reply record (64, 192 in the original's payload layout, v2 88 bytes) of a decoded packet parses back to its headers and payload",
  arb: emittedArb,
  unitRuns: 200,
  check(e) {
    const f = frameOf(e);
    const seg = newSegment();
    assert.equal(decodeFrame(f.linkType, f.buf, f.off, f.len, seg), 'ok');
    const back = newSegment();
    for (const rb of [64, 192] as const) {
      const out = Buffer.alloc(rb + 8, 0xa5);
      writeRecord(seg, out, 4, rb);
      assert.equal(out.readUInt32BE(0), 0xa5a5a5a5, 'nothing written before the record');
      assert.equal(out.readUInt32BE(rb + 4), 0xa5a5a5a5, 'nothing written after the record');
      assert.equal(parseIpv4Tcp(out, 4, rb, back, true), 'ok');
      assertSegmentIs(back, e.repr, e.payload.length);
      if (rb === 192) {
        // the original's layout: the whole payload when it is 1..128 bytes (and fits after the
        // TCP header), right after the TCP header at 20 + doff*4; otherwise none
        const at = 20 + seg.tcpHdrLen;
        const n =
          e.payload.length >= 1 && e.payload.length <= 128 && at + e.payload.length <= rb ? e.payload.length : 0;
        assert.equal(recordPayloadLen(out, 4, rb), n);
        assert.equal(recordPayloadOff(out, 4), 4 + at);
        assert.ok(out.subarray(4 + at, 4 + at + n).equals(Buffer.from(e.payload).subarray(0, n)));
      }
    }
    const v1 = Buffer.alloc(64);
    writeRecord(seg, v1, 0, 64);
    const v2 = Buffer.alloc(V2_RECORD_BYTES + 8, 0xa5);
    writeRecordV2(seg, v2, 4);
    assert.equal(v2.readUInt32BE(0), 0xa5a5a5a5);
    assert.equal(v2.readUInt32BE(V2_RECORD_BYTES + 4), 0xa5a5a5a5);
    const conv = Buffer.alloc(64);
    assert.equal(v2ToV1(v2, 4, conv, 0), 4);
    assert.ok(conv.equals(v1), 'v2 record -> 1.x layout = the 1.x record');
  },
};

/** A hostile frame: random bytes, or an emitted frame mutated, at any offset and claimed length. */
interface HostileFrame {
  linkType: number;
  bytes: Uint8Array | null;
  emitted: Emitted | null;
  muts: Mutation[];
  offDelta: number;
  capDelta: number;
  lenient: boolean;
}
const hostileFrameArb: fc.Arbitrary<HostileFrame> = fc.record({
  linkType: fc.oneof(fc.constantFrom(0, 1, 12, 14, 101, 113, 228, 229, 276), u16),
  bytes: fc.option(fc.uint8Array({ maxLength: 200 }), { nil: null }),
  emitted: fc.option(emittedArb, { nil: null }),
  muts: fc.array(mutationArb, { maxLength: 4 }),
  offDelta: fc.integer({ min: -3, max: 3 }),
  capDelta: fc.integer({ min: -60, max: 60 }),
  lenient: fc.boolean(),
});

function assertInside(seg: TcpSegment, buf: Buffer): void {
  assert.ok(seg.ipOff >= 0 && seg.ipOff + 20 <= buf.length, 'IP header inside the buffer');
  assert.equal(seg.tcpOff, seg.ipOff + seg.ipHdrLen);
  assert.ok(seg.tcpOff + 20 <= buf.length, 'TCP header inside the buffer');
  assert.ok(seg.tcpHdrLen >= 20 && seg.tcpHdrLen <= 60);
  assert.ok(seg.capLen >= 0 && seg.ipOff + seg.capLen <= buf.length, 'captured length inside the buffer');
  const p = payloadCaptured(seg);
  assert.ok(p >= 0 && p <= seg.payloadLen && (p === 0 || seg.payloadOff + p <= buf.length), 'payload inside');
  assert.ok(seg.payloadLen >= 0 && seg.payloadLen <= 65535);
}

const decodeHostile: FuzzTarget<HostileFrame> = {
  name: 'decode-hostile',
  says: 'hostile frames of every link type: decodeFrame/parseIpv4Tcp never throw, return a reason, stay inside the buffer; records of what decodes stay inside theirs',
  arb: hostileFrameArb,
  unitRuns: 500,
  check(h) {
    let buf: Buffer;
    let off = 0;
    let linkType = h.linkType;
    if (h.emitted !== null) {
      const f = frameOf(h.emitted);
      buf = mutate(f.buf, h.muts);
      off = f.off;
      linkType = f.linkType;
    } else buf = Buffer.from(h.bytes ?? []);
    off = off + h.offDelta;
    const cap = buf.length - Math.max(0, off) + h.capDelta;
    const seg = newSegment();
    const st = decodeFrame(linkType, buf, off, cap, seg);
    assert.ok(STATUSES.includes(st), st);
    const decoded: [DecodeStatus, number][] = [[st, 1]];
    if (st === 'ok') assertInside(seg, buf);
    const ip = newSegment();
    const st2 = parseIpv4Tcp(buf, off, cap, ip, h.lenient);
    assert.ok(STATUSES.includes(st2), st2);
    decoded.push([st2, 2]);
    for (const [s, which] of decoded) {
      if (s !== 'ok') continue;
      const sg = which === 1 ? seg : ip;
      if (which === 2 && !h.lenient) assertInside(sg, buf);
      for (const rb of [64, 192] as const) {
        const out = Buffer.alloc(rb + 8, 0xa5);
        writeRecord(sg, out, 4, rb);
        assert.equal(out.readUInt32BE(0), 0xa5a5a5a5);
        assert.equal(out.readUInt32BE(rb + 4), 0xa5a5a5a5);
        const n = recordPayloadLen(out, 4, rb);
        assert.ok(n >= 0 && n <= (rb === 192 ? 128 : 0));
        const back = newSegment();
        const st3 = parseIpv4Tcp(out, 4, rb, back, true);
        assert.ok(STATUSES.includes(st3));
      }
      const v2 = Buffer.alloc(V2_RECORD_BYTES + 8, 0xa5);
      writeRecordV2(sg, v2, 4);
      assert.equal(v2.readUInt32BE(0), 0xa5a5a5a5);
      assert.equal(v2.readUInt32BE(V2_RECORD_BYTES + 4), 0xa5a5a5a5);
    }
    // arbitrary bytes taken as records
    const raw = Buffer.concat([buf, Buffer.alloc(Math.max(0, 200 - buf.length))]);
    const conv = Buffer.alloc(64);
    const v = v2ToV1(raw, 0, conv, 0);
    assert.ok(v === 0 || v === 4 || v === 6);
    assert.ok(recordPayloadLen(buf, 0, buf.length) >= 0);
  },
};

export const WIRE_TARGETS: FuzzTarget[] = [target(decodeRoundTrip), target(recordRoundTrip), target(decodeHostile)];
