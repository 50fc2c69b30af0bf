/**
 * Decoders from captured bytes to a TcpSegment: link layer -> IPv4 -> TCP (+ options).
 *
 * Pure and allocation-free: every function fills a caller-owned, reused TcpSegment and
 * returns a status string that callers turn into counters. Nothing here throws on hostile
 * bytes: every read is bounds-checked against both the captured length and the buffer.
 */
import type { TcpSegment } from './segment';
import {
  LINKTYPE_ETHERNET,
  LINKTYPE_IPV4,
  LINKTYPE_IPV6,
  LINKTYPE_LINUX_SLL,
  LINKTYPE_LINUX_SLL2,
  LINKTYPE_LOOP,
  LINKTYPE_NULL,
  LINKTYPE_RAW,
  LINKTYPE_RAW_ALT1,
  LINKTYPE_RAW_ALT2,
} from './link';
import { internIpv6MemoAt, newIpv6Memo } from './ipv6';
import { viewOf } from './view';

/** The addresses the IPv6 decoder saw last at each position (the server side repeats). */
const srcMemo = newIpv6Memo();
const dstMemo = newIpv6Memo();

/**
 * Result of a decode. 'ok' = IPv4 or IPv6 + TCP and `seg` is filled. Others:
 * 'unknown-link' link type not supported; 'not-ipv4' link payload is neither IPv4 nor
 * IPv6 (ARP, LLDP, ...); 'ipv6' an IPv6 header where only IPv4 is accepted (parseIpv4Tcp:
 * 1.x channel records); 'truncated' the capture ends inside a header; 'bad-ip-header'
 * impossible IP header (IHL < 5, total length < IHL, version not 4/6, an IPv6 extension
 * header past the payload length or a chain of more than 8); 'fragment' an IPv4 fragment of
 * any protocol (MF set or offset != 0) or any IPv6 packet with a fragment header; 'not-tcp'
 * another IP protocol (after IPv6 extension headers); 'bad-tcp-header' data offset < 5 or
 * past the packet end; 'address-table-full' an IPv6 packet seen after MAX_IPV6_ADDRESSES
 * distinct addresses (ipv6.ts).
 */
export type DecodeStatus =
  | 'ok'
  | 'unknown-link'
  | 'not-ipv4'
  | 'ipv6'
  | 'truncated'
  | 'bad-ip-header'
  | 'fragment'
  | 'not-tcp'
  | 'bad-tcp-header'
  | 'address-table-full';

/** Big-endian 16-bit read; callers check bounds (V8 inlines this; Buffer#readUInt16BE is slower). */
function u16(b: Buffer, i: number): number {
  return ((b[i] as number) << 8) | (b[i + 1] as number);
}

/** Big-endian unsigned 32-bit read; callers check bounds. */
function u32(b: Buffer, i: number): number {
  return (
    (((b[i] as number) << 24) | ((b[i + 1] as number) << 16) | ((b[i + 2] as number) << 8) | (b[i + 3] as number)) >>> 0
  );
}

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_IPV6 = 0x86dd;
const ETHERTYPE_VLAN = 0x8100; // 802.1Q
const ETHERTYPE_QINQ = 0x88a8; // 802.1ad
const ETHERTYPE_QINQ_OLD = 0x9100; // pre-standard double tagging

/** BSD loopback address families: AF_INET is 2 everywhere; AF_INET6 differs per OS. */
const AF_INET = 2;
function isAfInet6(v: number): boolean {
  return v === 10 || v === 24 || v === 28 || v === 30;
}

/** Network offset for an ethertype-like protocol value, or -3 when not IPv4/IPv6. */
function byEtherType(t: number, netOff: number): number {
  return t === ETHERTYPE_IPV4 || t === ETHERTYPE_IPV6 ? netOff : -3;
}

/**
 * Network offset after a link header whose ethertype-like field is `t` and whose payload
 * starts at `dataOff`; any 802.1Q/802.1ad/0x9100 tags (2-byte TCI + next type) are skipped.
 */
function afterType(buf: Buffer, t: number, dataOff: number, end: number): number {
  while (t === ETHERTYPE_VLAN || t === ETHERTYPE_QINQ || t === ETHERTYPE_QINQ_OLD) {
    if (dataOff + 4 > end) return -2;
    t = u16(buf, dataOff + 2);
    dataOff += 4;
  }
  return byEtherType(t, dataOff);
}

/**
 * Offset in `buf` of the network (IP) header of the frame at `off` with link type
 * `linkType` (LINKTYPE_* from link.ts), or -1 unknown link type, -2 link header truncated,
 * -3 payload is not IPv4/IPv6 (ARP, ...). `capLen` = bytes captured from `off`.
 * Accepts: NULL and LOOP (4-byte address family in either byte order), ETHERNET with any number of
 * VLAN tags, LINUX_SLL (16-byte header) and LINUX_SLL2 (20-byte header) with VLAN tags
 * skipped too (libpcap may put tags back into cooked captures), RAW/IPV4/IPV6/RAW_ALT1/RAW_ALT2 (IP version nibble decides).
 */
export function linkNetworkOffset(linkType: number, buf: Buffer, off: number, capLen: number): number {
  const end = Math.min(off + capLen, buf.length);
  if (off < 0 || !(end >= off)) return -2;
  switch (linkType) {
    case LINKTYPE_ETHERNET:
      if (off + 14 > end) return -2;
      return afterType(buf, u16(buf, off + 12), off + 14, end);
    case LINKTYPE_LINUX_SLL:
      if (off + 16 > end) return -2;
      return afterType(buf, u16(buf, off + 14), off + 16, end);
    case LINKTYPE_LINUX_SLL2:
      if (off + 20 > end) return -2;
      return afterType(buf, u16(buf, off), off + 20, end);
    case LINKTYPE_NULL:
    case LINKTYPE_LOOP: {
      if (off + 4 > end) return -2;
      const be = u32(buf, off);
      const le = buf.readUInt32LE(off);
      if (be === AF_INET || le === AF_INET || isAfInet6(be) || isAfInet6(le)) return off + 4;
      return -3;
    }
    case LINKTYPE_RAW:
    case LINKTYPE_IPV4:
    case LINKTYPE_IPV6:
    case LINKTYPE_RAW_ALT1:
    case LINKTYPE_RAW_ALT2: {
      if (off + 1 > end) return -2;
      const v = (buf[off] as number) >>> 4;
      return v === 4 || v === 6 ? off : -3;
    }
    default:
      return -1;
  }
}

/**
 * Decode one captured frame starting at the link layer. Fills `seg` and returns 'ok' for
 * IPv4+TCP and IPv6+TCP; see DecodeStatus for the rest. `capLen` = bytes present from `off`.
 * Never throws.
 */
export function decodeFrame(linkType: number, buf: Buffer, off: number, capLen: number, seg: TcpSegment): DecodeStatus {
  const n = linkNetworkOffset(linkType, buf, off, capLen);
  if (n < 0) return n === -1 ? 'unknown-link' : n === -2 ? 'truncated' : 'not-ipv4';
  const rest = Math.min(off + capLen, buf.length) - n;
  if (rest < 1) return 'truncated';
  if ((buf[n] as number) >>> 4 === 6) return parseIpv6Tcp(buf, n, rest, seg, false);
  return parseIpv4Tcp(buf, n, rest, seg, false);
}

/** parseIpv4Tcp or parseIpv6Tcp by the version nibble at ipOff ('truncated' when no byte). */
export function parseIpTcp(buf: Buffer, ipOff: number, capLen: number, seg: TcpSegment, lenient = false): DecodeStatus {
  if (ipOff >= 0 && capLen >= 1 && ipOff < buf.length && (buf[ipOff] as number) >>> 4 === 6)
    return parseIpv6Tcp(buf, ipOff, capLen, seg, lenient);
  return parseIpv4Tcp(buf, ipOff, capLen, seg, lenient);
}

/**
 * Parse IPv4 + TCP at `ipOff`; `capLen` = bytes present from ipOff. Fills `seg` (IP fields
 * are filled as soon as the IP header is valid, so fragment/not-tcp callers may read the
 * addresses). Rules:
 * - fragments (MF set or offset != 0) of any protocol return 'fragment' before the
 *   protocol check;
 * - payloadLen comes from the IP total length (the payload may be cut by snaplen:
 *   see payloadCaptured); a total length of 0 (TSO/GSO captures) means capLen;
 * - bytes after the total length (Ethernet padding) are ignored;
 * - `lenient` (default false; used for intercept's 64-byte records whose TCP options are
 *   cut at 24 bytes): TCP options beyond capLen are ignored instead of 'truncated'.
 * TCP options reset and fill seg.mss/wscale/sackOk/hasTs/tsVal/tsEcr; a malformed option
 * stops option parsing without failing the packet.
 */
export function parseIpv4Tcp(
  buf: Buffer,
  ipOff: number,
  capLen: number,
  seg: TcpSegment,
  lenient = false,
): DecodeStatus {
  seg.mss = 0;
  seg.wscale = -1;
  seg.sackOk = false;
  seg.hasTs = false;
  seg.tsVal = 0;
  seg.tsEcr = 0;
  if (ipOff < 0 || !(capLen >= 0)) return 'truncated';
  const inBuf = buf.length - ipOff;
  if (capLen > inBuf) capLen = inBuf;
  if (capLen < 20) return capLen >= 1 && (buf[ipOff] as number) >>> 4 === 6 ? 'ipv6' : 'truncated';
  const vihl = buf[ipOff] as number;
  const version = vihl >>> 4;
  if (version === 6) return 'ipv6';
  if (version !== 4) return 'bad-ip-header';
  const ihl = (vihl & 0x0f) * 4;
  if (ihl < 20) return 'bad-ip-header';
  if (ihl > capLen) return 'truncated';
  let total = u16(buf, ipOff + 2);
  if (total === 0) total = capLen; // TSO/GSO: the kernel captured before segmentation
  if (total < ihl) return 'bad-ip-header';
  const present = capLen < total ? capLen : total; // drops Ethernet padding
  seg.buf = buf;
  seg.ipOff = ipOff;
  seg.ipHdrLen = ihl;
  seg.ipTotalLen = total;
  seg.capLen = present;
  seg.ipId = u16(buf, ipOff + 4);
  seg.ttl = buf[ipOff + 8] as number;
  seg.srcIp = u32(buf, ipOff + 12);
  seg.dstIp = u32(buf, ipOff + 16);
  if ((u16(buf, ipOff + 6) & 0x3fff) !== 0) return 'fragment';
  if (buf[ipOff + 9] !== 6) return 'not-tcp';
  return parseTcp(buf, ipOff + ihl, total - ihl, present - ihl, seg, lenient);
}

/** Extension headers walked before the TCP header at most (a longer chain is 'bad-ip-header'). */
const MAX_IPV6_EXTENSIONS = 8;

/**
 * Parse IPv6 + TCP at `ipOff`, the same way as parseIpv4Tcp. The extension headers hop-by-hop
 * (0), routing (43), destination options (60) and authentication (51) are walked to the TCP
 * header; a fragment header (44) makes the packet a 'fragment' (never replayed, as IPv4
 * fragments); no-next-header (59), ESP and every other protocol are 'not-tcp'. The segment's
 * fields map as: ipHdrLen = 40 + extension bytes, ipTotalLen = 40 + payload length (so that
 * payloadLen = ipTotalLen - ipHdrLen - tcpHdrLen as for IPv4; a payload length of 0 (jumbogram
 * or GSO capture) means capLen), ipId = 0, ttl = hop limit, srcIp/dstIp = the addresses' ids
 * (ipv6.ts). The addresses are filled as soon as the fixed header is present.
 */
export function parseIpv6Tcp(
  buf: Buffer,
  ipOff: number,
  capLen: number,
  seg: TcpSegment,
  lenient = false,
): DecodeStatus {
  seg.mss = 0;
  seg.wscale = -1;
  seg.sackOk = false;
  seg.hasTs = false;
  seg.tsVal = 0;
  seg.tsEcr = 0;
  if (ipOff < 0 || !(capLen >= 0)) return 'truncated';
  const inBuf = buf.length - ipOff;
  if (capLen > inBuf) capLen = inBuf;
  if (capLen < 40) return 'truncated';
  if ((buf[ipOff] as number) >>> 4 !== 6) return 'bad-ip-header';
  const plen = u16(buf, ipOff + 4);
  const total = plen === 0 ? capLen : 40 + plen;
  const present = capLen < total ? capLen : total;
  // the 40 bytes are inside buf (capLen >= 40, clamped to it): one view for both addresses
  const v = viewOf(buf);
  const src = internIpv6MemoAt(v, buf.byteOffset + ipOff + 8, srcMemo);
  const dst = internIpv6MemoAt(v, buf.byteOffset + ipOff + 24, dstMemo);
  if (src < 0 || dst < 0) return 'address-table-full';
  seg.buf = buf;
  seg.ipOff = ipOff;
  seg.ipTotalLen = total;
  seg.capLen = present;
  seg.ipId = 0;
  seg.ttl = buf[ipOff + 7] as number;
  seg.srcIp = src;
  seg.dstIp = dst;
  let next = buf[ipOff + 6] as number;
  let hl = 40;
  for (let n = 0; next !== 6; n++) {
    if (next === 44) {
      seg.ipHdrLen = hl;
      return 'fragment';
    }
    if (next !== 0 && next !== 43 && next !== 60 && next !== 51) return 'not-tcp';
    if (n === MAX_IPV6_EXTENSIONS) return 'bad-ip-header';
    if (hl + 2 > present) return hl + 2 > total ? 'bad-ip-header' : 'truncated';
    const p = ipOff + hl;
    const len = next === 51 ? ((buf[p + 1] as number) + 2) * 4 : ((buf[p + 1] as number) + 1) * 8;
    next = buf[p] as number;
    hl += len;
    if (hl > total) return 'bad-ip-header';
  }
  seg.ipHdrLen = hl;
  if (hl > present) return 'truncated';
  return parseTcp(buf, ipOff + hl, total - hl, present - hl, seg, lenient);
}

/**
 * The TCP header at `t`: `segLen` = TCP bytes by the IP length, `avail` = of them present.
 * Fills the TCP fields of `seg` and its options.
 */
function parseTcp(
  buf: Buffer,
  t: number,
  segLen: number,
  avail: number,
  seg: TcpSegment,
  lenient: boolean,
): DecodeStatus {
  if (segLen < 20) return 'bad-tcp-header';
  if (avail < 20) return 'truncated';
  const doff = ((buf[t + 12] as number) >>> 4) * 4;
  if (doff < 20 || doff > segLen) return 'bad-tcp-header';
  let optEnd = t + doff;
  if (doff > avail) {
    if (!lenient) return 'truncated';
    optEnd = t + avail;
  }
  seg.tcpOff = t;
  seg.tcpHdrLen = doff;
  seg.srcPort = u16(buf, t);
  seg.dstPort = u16(buf, t + 2);
  seg.seq = u32(buf, t + 4);
  seg.ack = u32(buf, t + 8);
  seg.flags = buf[t + 13] as number;
  seg.window = u16(buf, t + 14);
  seg.payloadOff = t + doff;
  seg.payloadLen = segLen - doff;
  if (doff > 20) parseTcpOptions(buf, t + 20, optEnd, seg);
  return 'ok';
}

/**
 * Walk TCP options in buf[i..end). EOL stops; NOP is one byte; an option whose length byte
 * is missing, < 2 or runs past `end` stops parsing. Known kinds with a wrong length and
 * unknown kinds (SACK blocks included) are skipped by their length. The window-scale
 * shift is stored raw (a value above 14 is kept; RFC 7323 users clamp it to 14).
 */
function parseTcpOptions(buf: Buffer, i: number, end: number, seg: TcpSegment): void {
  while (i < end) {
    const kind = buf[i] as number;
    if (kind === 0) return; // EOL
    if (kind === 1) {
      i++;
      continue;
    } // NOP
    if (i + 1 >= end) return;
    const len = buf[i + 1] as number;
    if (len < 2 || i + len > end) return;
    switch (kind) {
      case 2:
        if (len === 4) seg.mss = u16(buf, i + 2);
        break;
      case 3:
        if (len === 3) seg.wscale = buf[i + 2] as number;
        break;
      case 4:
        if (len === 2) seg.sackOk = true;
        break;
      case 8:
        if (len === 10) {
          seg.hasTs = true;
          seg.tsVal = u32(buf, i + 2);
          seg.tsEcr = u32(buf, i + 6);
        }
        break;
      default:
        break; // SACK blocks (5), MD5 (19), TFO (34), ... skipped
    }
    i += len;
  }
}

/** Bytes of payload actually present in seg.buf: min(payloadLen, captured bytes after the TCP header), >= 0. */
export function payloadCaptured(seg: TcpSegment): number {
  const have = seg.ipOff + seg.capLen - seg.payloadOff;
  const n = have < seg.payloadLen ? have : seg.payloadLen;
  return n > 0 ? n : 0;
}
