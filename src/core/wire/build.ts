/**
 * Emitter for IPv4 + TCP and IPv6 + TCP packets from a plain value (TcpRepr), with Linux-like
 * TCP option layout and the checksums filled. No allocation per packet: the caller owns `out`.
 */
import { fillBuiltIpv4TcpChecksums, fillBuiltIpv6TcpChecksum } from './checksum';
import { IPV6_BASE, writeIpv6 } from './ipv6';
import { TCP_SYN } from './segment';

/** Big-endian 16-bit store (inlined by V8; faster than Buffer#writeUInt16BE). */
export function w16(b: Buffer, i: number, v: number): void {
  b[i] = (v >>> 8) & 0xff;
  b[i + 1] = v & 0xff;
}

/** Big-endian 32-bit store. */
export function w32(b: Buffer, i: number, v: number): void {
  b[i] = (v >>> 24) & 0xff;
  b[i + 1] = (v >>> 16) & 0xff;
  b[i + 2] = (v >>> 8) & 0xff;
  b[i + 3] = v & 0xff;
}

/** A plain description of an IPv4+TCP or IPv6+TCP packet to emit. */
export interface TcpRepr {
  /** Source address: IPv4 unsigned 32-bit (e.g. 0xC6120001 = 198.18.0.1) or an IPv6 id (wire/ipv6.ts). */
  srcIp: number;
  /** Destination address, as srcIp; its family decides the packet's (emitIpTcp). */
  dstIp: number;
  /** TCP source port. */
  srcPort: number;
  /** TCP destination port. */
  dstPort: number;
  /** Sequence number (unsigned 32-bit). */
  seq: number;
  /** Acknowledgement number (unsigned 32-bit; written as is, whatever the ACK flag). */
  ack: number;
  /** TCP flags byte (TCP_* from segment.ts). */
  flags: number;
  /** Raw (already scaled-down) 16-bit window field. */
  window: number;
  /** IPv4 identification field (not used for IPv6). */
  ipId: number;
  /** IPv4 TTL or IPv6 hop limit (default 64 from newTcpRepr). */
  ttl: number;
  /** MSS option value, 0 = omit. Only emitted on SYN segments. */
  mss: number;
  /** Window-scale shift, -1 = omit. Only emitted on SYN segments. */
  wscale: number;
  /** Emit SACK-permitted. Only on SYN segments. */
  sackOk: boolean;
  /** Emit the timestamps option (SYN and non-SYN). */
  hasTs: boolean;
  /** TSval (unsigned 32-bit), used when hasTs. */
  tsVal: number;
  /** TSecr (unsigned 32-bit), used when hasTs. */
  tsEcr: number;
}

/** A zeroed TcpRepr: no options (mss 0, wscale -1), TTL 64, everything else 0/false. */
export function newTcpRepr(): TcpRepr {
  return {
    srcIp: 0,
    dstIp: 0,
    srcPort: 0,
    dstPort: 0,
    seq: 0,
    ack: 0,
    flags: 0,
    window: 0,
    ipId: 0,
    ttl: 64,
    mss: 0,
    wscale: -1,
    sackOk: false,
    hasTs: false,
    tsVal: 0,
    tsEcr: 0,
  };
}

/**
 * Length in bytes of the TCP options emitIpv4Tcp writes for `repr` (a multiple of 4, at
 * most 20). SYN: MSS 4 + (TS 12 with SACK-perm folded in, or SACK-perm alone 4) + WS 4;
 * non-SYN: TS 12 or nothing.
 */
export function tcpOptionsLength(repr: TcpRepr): number {
  if ((repr.flags & TCP_SYN) === 0) return repr.hasTs ? 12 : 0;
  let n = 0;
  if (repr.mss > 0) n += 4;
  if (repr.hasTs) n += 12;
  else if (repr.sackOk) n += 4;
  if (repr.wscale >= 0) n += 4;
  return n;
}

/** Write the options at o (layout of Linux tcp_options_write); returns the end offset. */
function writeOptions(repr: TcpRepr, out: Buffer, o: number): number {
  if ((repr.flags & TCP_SYN) !== 0) {
    if (repr.mss > 0) {
      out[o] = 2;
      out[o + 1] = 4;
      w16(out, o + 2, repr.mss & 0xffff);
      o += 4;
    }
    if (repr.hasTs) {
      if (repr.sackOk) {
        out[o] = 4;
        out[o + 1] = 2;
      } else {
        out[o] = 1;
        out[o + 1] = 1;
      }
      o = writeTs(repr, out, o + 2);
    } else if (repr.sackOk) {
      out[o] = 1;
      out[o + 1] = 1;
      out[o + 2] = 4;
      out[o + 3] = 2;
      o += 4;
    }
    if (repr.wscale >= 0) {
      out[o] = 1;
      out[o + 1] = 3;
      out[o + 2] = 3;
      out[o + 3] = repr.wscale & 0xff;
      o += 4;
    }
    return o;
  }
  if (repr.hasTs) {
    out[o] = 1;
    out[o + 1] = 1;
    o = writeTs(repr, out, o + 2);
  }
  return o;
}

function writeTs(repr: TcpRepr, out: Buffer, o: number): number {
  out[o] = 8;
  out[o + 1] = 10;
  w32(out, o + 2, repr.tsVal >>> 0);
  w32(out, o + 6, repr.tsEcr >>> 0);
  return o + 10;
}

/**
 * Write an IPv4 header (20 bytes, DF set, TOS 0, protocol 6) + TCP header with options +
 * payload (copied from payload[pOff..pOff+pLen); payload may be null when pLen is 0) into
 * `out` at `off`, fill both checksums and return the total length written. Option layout
 * as Linux: SYN: MSS, SACK-perm, TS, NOP, WS; non-SYN: NOP, NOP, TS. The caller
 * guarantees room (20 + 20 + tcpOptionsLength(repr) + pLen bytes). No allocation.
 */
export function emitIpv4Tcp(
  repr: TcpRepr,
  payload: Buffer | null,
  pOff: number,
  pLen: number,
  out: Buffer,
  off: number,
): number {
  const optLen = tcpOptionsLength(repr);
  const tcpHdr = 20 + optLen;
  if (payload === null) pLen = 0;
  const total = 20 + tcpHdr + pLen;
  // IPv4 header
  out[off] = 0x45;
  out[off + 1] = 0;
  w16(out, off + 2, total);
  w16(out, off + 4, repr.ipId & 0xffff);
  w16(out, off + 6, 0x4000); // DF, offset 0
  out[off + 8] = repr.ttl & 0xff;
  out[off + 9] = 6;
  out[off + 10] = 0;
  out[off + 11] = 0;
  w32(out, off + 12, repr.srcIp >>> 0);
  w32(out, off + 16, repr.dstIp >>> 0);
  writeTcp(repr, payload, pOff, pLen, out, off + 20, tcpHdr);
  fillBuiltIpv4TcpChecksums(out, off, tcpHdr + pLen);
  return total;
}

/** The TCP header (with options) and payload at `t`; the checksum field is left zero. */
function writeTcp(
  repr: TcpRepr,
  payload: Buffer | null,
  pOff: number,
  pLen: number,
  out: Buffer,
  t: number,
  tcpHdr: number,
): void {
  w16(out, t, repr.srcPort & 0xffff);
  w16(out, t + 2, repr.dstPort & 0xffff);
  w32(out, t + 4, repr.seq >>> 0);
  w32(out, t + 8, repr.ack >>> 0);
  out[t + 12] = (tcpHdr / 4) << 4;
  out[t + 13] = repr.flags & 0xff;
  w16(out, t + 14, repr.window & 0xffff);
  out[t + 16] = 0;
  out[t + 17] = 0; // checksum, filled by the caller
  out[t + 18] = 0;
  out[t + 19] = 0; // urgent pointer
  writeOptions(repr, out, t + 20);
  if (pLen > 0 && payload !== null) payload.copy(out, t + tcpHdr, pOff, pOff + pLen);
}

/**
 * Write an IPv6 header (40 bytes: traffic class 0, flow label 0, next header 6, no extension
 * headers, hop limit = repr.ttl, the addresses of the ids repr.srcIp/dstIp) + TCP header with
 * options + payload, as emitIpv4Tcp, fill the TCP checksum (IPv6 pseudo header) and return the
 * total length. The caller guarantees room (40 + 20 + tcpOptionsLength(repr) + pLen bytes).
 */
export function emitIpv6Tcp(
  repr: TcpRepr,
  payload: Buffer | null,
  pOff: number,
  pLen: number,
  out: Buffer,
  off: number,
): number {
  const tcpHdr = 20 + tcpOptionsLength(repr);
  if (payload === null) pLen = 0;
  out[off] = 0x60;
  out[off + 1] = 0;
  out[off + 2] = 0;
  out[off + 3] = 0;
  w16(out, off + 4, tcpHdr + pLen);
  out[off + 6] = 6;
  out[off + 7] = repr.ttl & 0xff;
  writeIpv6(repr.srcIp, out, off + 8);
  writeIpv6(repr.dstIp, out, off + 24);
  writeTcp(repr, payload, pOff, pLen, out, off + 40, tcpHdr);
  fillBuiltIpv6TcpChecksum(out, off, tcpHdr + pLen);
  return 40 + tcpHdr + pLen;
}

/** emitIpv4Tcp or emitIpv6Tcp by the family of repr.dstIp (the source must be of the same family). */
export function emitIpTcp(
  repr: TcpRepr,
  payload: Buffer | null,
  pOff: number,
  pLen: number,
  out: Buffer,
  off: number,
): number {
  if (repr.dstIp >= IPV6_BASE) return emitIpv6Tcp(repr, payload, pOff, pLen, out, off);
  return emitIpv4Tcp(repr, payload, pOff, pLen, out, off);
}
