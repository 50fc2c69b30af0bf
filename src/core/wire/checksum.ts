/**
 * Internet checksum (RFC 1071) and its incremental update (RFC 1624) for IPv4 and TCP.
 *
 * Hot path: no allocation, no closures. The main loop reads 32-bit big-endian words
 * through a cached DataView (view.ts) and adds them into a plain number (a double holds the sum of
 * far more than 2^20 such words exactly); folding the 32-bit sum to 16 bits with
 * end-around carry gives the same one's-complement sum as adding 16-bit words (RFC 1071
 * section 2 (B), "parallel summation"). Functions never throw: lengths are clamped to the
 * bytes present in the buffer.
 */

import { viewOf } from './view';

const IP_PROTO_TCP = 6;

/** Fold an accumulated (non-negative, < 2^53) sum to 16 bits with end-around carry. */
function fold(sum: number): number {
  // Reduce a possibly large accumulator first without 32-bit overflow.
  while (sum > 0xffffffff) sum = (sum % 0x100000000) + Math.floor(sum / 0x100000000);
  sum = (sum >>> 16) + (sum & 0xffff);
  sum = (sum >>> 16) + (sum & 0xffff);
  return sum;
}

/**
 * One's-complement sum of `len` bytes of `buf` from `off`, as big-endian 16-bit words (an
 * odd last byte is padded with a zero low byte), plus `initial`.
 *
 * Returns the FOLDED 16-bit sum (0..0xffff), not complemented, so results can be chained:
 * `onesComplementSum(b, 20, n, onesComplementSum(a, 0, 12))`. `initial` may be any
 * non-negative integer below 2^48 (for example an unfolded pseudo-header sum); default 0.
 * Chaining with an odd-length first part is only correct when the parts are contiguous
 * 16-bit aligned words, i.e. pass even lengths for all but the last part.
 * Bytes outside the buffer are not read: `len` is clamped to `buf.length - off`.
 */
export function onesComplementSum(buf: Buffer, off: number, len: number, initial = 0): number {
  if (off < 0) off = 0;
  const avail = buf.length - off;
  if (len > avail) len = avail;
  if (len <= 0) return fold(initial);
  const d = viewOf(buf);
  let sum = initial;
  let i = buf.byteOffset + off;
  const end = i + len;
  // Main loop: four 32-bit big-endian words (16 bytes) per iteration.
  const end16 = i + (len & ~15);
  while (i < end16) {
    sum += d.getUint32(i) + d.getUint32(i + 4) + d.getUint32(i + 8) + d.getUint32(i + 12);
    i += 16;
  }
  const end4 = buf.byteOffset + off + (len & ~3);
  while (i < end4) {
    sum += d.getUint32(i);
    i += 4;
  }
  if (i + 1 < end) {
    sum += d.getUint16(i);
    i += 2;
  }
  if (i < end) sum += d.getUint8(i) << 8;
  return fold(sum);
}

/** Big-endian 16-bit read; callers check bounds (inlined by V8, unlike Buffer#readUInt16BE). */
function u16(b: Buffer, i: number): number {
  return ((b[i] as number) << 8) | (b[i + 1] as number);
}

/** IHL in bytes of the IPv4 header at ipOff, clamped to what the buffer holds (0 when none). */
function ipHeaderLen(buf: Buffer, ipOff: number): number {
  if (ipOff < 0 || ipOff >= buf.length) return 0;
  const ihl = ((buf[ipOff] as number) & 0x0f) * 4;
  return Math.min(ihl, buf.length - ipOff);
}

/*
 * Checksums "to store" are computed in one pass over the covered bytes, including the
 * stored checksum word c, then c is subtracted by adding its one's complement ~c. This is
 * exact: the result only differs from a sum that skips the field when the true sum is
 * +0, which needs all-zero data (impossible for TCP: the pseudo header holds protocol 6).
 */

/**
 * The IPv4 header checksum to store at ipOff+10 (network order 16-bit value). The
 * current content of the checksum field is ignored.
 */
export function ipv4HeaderChecksum(buf: Buffer, ipOff: number): number {
  const hl = ipHeaderLen(buf, ipOff);
  if (hl < 12) return ~onesComplementSum(buf, ipOff, hl) & 0xffff;
  return ~onesComplementSum(buf, ipOff, hl, ~u16(buf, ipOff + 10) & 0xffff) & 0xffff;
}

/**
 * TCP segment length from the IPv4 header at ipOff (hl >= 20): total length minus header
 * length, clamped to the bytes present. A total length of 0 (TSO/GSO captures) means "all
 * bytes present after the IP header".
 */
function tcpLength(buf: Buffer, ipOff: number, hl: number): number {
  const present = buf.length - ipOff;
  let total = u16(buf, ipOff + 2);
  if (total === 0 || total > present) total = present;
  const l = total - hl;
  return l > 0 ? l : 0;
}

/** Unfolded pseudo-header sum (source, destination, protocol 6, TCP length); hl >= 20. */
function pseudoHeaderSum(buf: Buffer, ipOff: number, tcpLen: number): number {
  return (
    u16(buf, ipOff + 12) + u16(buf, ipOff + 14) + u16(buf, ipOff + 16) + u16(buf, ipOff + 18) + IP_PROTO_TCP + tcpLen
  );
}

/**
 * The TCP checksum to store at tcpOff+16 for the IPv4+TCP packet at ipOff. The pseudo
 * header comes from the IP header; the TCP length is the IP total length minus the IP
 * header length (clamped to the buffer; total length 0 = to the end of the buffer). The
 * current content of the checksum field is ignored. Returns 0 when the buffer does not
 * even hold a 20-byte IP header at ipOff.
 */
export function tcpChecksum(buf: Buffer, ipOff: number): number {
  const hl = ipHeaderLen(buf, ipOff);
  if (hl < 20) return 0; // no IPv4 header in the buffer: nothing meaningful to compute
  const tl = tcpLength(buf, ipOff, hl);
  const t = ipOff + hl;
  let s = pseudoHeaderSum(buf, ipOff, tl);
  if (tl >= 18) s += ~u16(buf, t + 16) & 0xffff;
  return ~onesComplementSum(buf, t, tl, s) & 0xffff;
}

/** Compute and write both the IPv4 header checksum and the TCP checksum of the packet at ipOff. */
export function fillIpv4TcpChecksums(buf: Buffer, ipOff: number): void {
  const hl = ipHeaderLen(buf, ipOff);
  if (hl < 20) return;
  const ic = ipv4HeaderChecksum(buf, ipOff);
  buf[ipOff + 10] = ic >>> 8;
  buf[ipOff + 11] = ic & 0xff;
  const t = ipOff + hl;
  if (buf.length - t < 18) return;
  const tc = tcpChecksum(buf, ipOff);
  buf[t + 16] = tc >>> 8;
  buf[t + 17] = tc & 0xff;
}

/**
 * The checksums of an IPv4 packet this process just built (emitIpv4Tcp): a 20-byte header,
 * both checksum fields still zero, the TCP length known. Same result as fillIpv4TcpChecksums
 * in fewer reads: the pseudo header's addresses (ipOff+12, 8 bytes) lie just before the TCP
 * header, so addresses and segment are summed in one pass.
 */
export function fillBuiltIpv4TcpChecksums(buf: Buffer, ipOff: number, tcpLen: number): void {
  const ic = ~onesComplementSum(buf, ipOff, 20) & 0xffff;
  buf[ipOff + 10] = ic >>> 8;
  buf[ipOff + 11] = ic & 0xff;
  const tc = ~onesComplementSum(buf, ipOff + 12, 8 + tcpLen, IP_PROTO_TCP + tcpLen) & 0xffff;
  buf[ipOff + 36] = tc >>> 8;
  buf[ipOff + 37] = tc & 0xff;
}

/**
 * Check the stored checksums of the IPv4+TCP packet at ipOff: a correct header sums to
 * 0xffff including its checksum field. `tcp` is false when the segment is not complete in
 * the buffer (a snaplen-cut capture cannot be verified).
 */
export function verifyIpv4TcpChecksums(buf: Buffer, ipOff: number): { ip: boolean; tcp: boolean } {
  const hl = ipHeaderLen(buf, ipOff);
  const ip = hl >= 20 && onesComplementSum(buf, ipOff, hl) === 0xffff;
  let tcp = false;
  if (hl >= 20) {
    const total = u16(buf, ipOff + 2);
    const tl = tcpLength(buf, ipOff, hl);
    const complete = total === 0 || total <= buf.length - ipOff;
    if (complete && tl >= 20) {
      tcp = onesComplementSum(buf, ipOff + hl, tl, pseudoHeaderSum(buf, ipOff, tl)) === 0xffff;
    }
  }
  return { ip, tcp };
}

/**
 * Incremental update (RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m')) of a stored checksum `sum`
 * when one 16-bit word of the covered data changes from `oldWord` to `newWord`. Returns
 * the new value to store; equals a full recomputation.
 */
export function checksumAdjust16(sum: number, oldWord: number, newWord: number): number {
  const s = (~sum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  return ~fold(s) & 0xffff;
}

/**
 * Same as checksumAdjust16 for a 32-bit field (an address, a sequence or ack number), as
 * its two 16-bit halves. Values are taken as unsigned 32-bit.
 */
export function checksumAdjust32(sum: number, oldVal: number, newVal: number): number {
  const s =
    (~sum & 0xffff) + (~(oldVal >>> 16) & 0xffff) + (~oldVal & 0xffff) + ((newVal >>> 16) & 0xffff) + (newVal & 0xffff);
  return ~fold(s) & 0xffff;
}

/*
 * IPv6 (RFC 8200 section 8.1): the TCP checksum covers a pseudo header of the source and
 * destination addresses (32 bytes at ipOff+8), the upper-layer length as 32 bits and the next
 * header value 6. There is no IP header checksum. (With a routing header the final destination
 * would replace the destination; we never send one, and captured packets are not verified on
 * the replay path.)
 */

/** TCP length of the IPv6 packet at ipOff whose TCP header is at tcpOff: 40 + payload length - (tcpOff - ipOff), clamped. */
function tcpLength6(buf: Buffer, ipOff: number, tcpOff: number): number {
  let end = ipOff + 40 + u16(buf, ipOff + 4);
  if (end === ipOff + 40 || end > buf.length) end = buf.length; // payload length 0 (GSO): to the end
  const l = end - tcpOff;
  return l > 0 ? l : 0;
}

/**
 * The TCP checksum to store at tcpOff+16 of the IPv6 packet at ipOff (TCP header at tcpOff:
 * ipOff + 40 without extension headers). The current checksum field is ignored. 0 when the
 * buffer does not hold the fixed header.
 */
export function tcpChecksum6(buf: Buffer, ipOff: number, tcpOff = ipOff + 40): number {
  if (ipOff < 0 || buf.length - ipOff < 40 || tcpOff < ipOff + 40) return 0;
  const tl = tcpLength6(buf, ipOff, tcpOff);
  let s = onesComplementSum(buf, ipOff + 8, 32) + IP_PROTO_TCP + tl;
  if (tl >= 18) s += ~u16(buf, tcpOff + 16) & 0xffff;
  return ~onesComplementSum(buf, tcpOff, tl, s) & 0xffff;
}

/** Writes the TCP checksum of the IPv6 packet at ipOff (no extension headers: TCP at ipOff+40). */
export function fillIpv6TcpChecksum(buf: Buffer, ipOff: number): void {
  const t = ipOff + 40;
  if (buf.length - t < 18) return;
  const c = tcpChecksum6(buf, ipOff, t);
  buf[t + 16] = c >>> 8;
  buf[t + 17] = c & 0xff;
}

/**
 * The TCP checksum of an IPv6 packet this process just built (emitIpv6Tcp): no extension
 * header, the checksum field still zero, the TCP length known. As fillIpv6TcpChecksum, in one
 * pass: the addresses (ipOff+8, 32 bytes) lie just before the TCP header at ipOff+40.
 */
export function fillBuiltIpv6TcpChecksum(buf: Buffer, ipOff: number, tcpLen: number): void {
  const tc = ~onesComplementSum(buf, ipOff + 8, 32 + tcpLen, IP_PROTO_TCP + tcpLen) & 0xffff;
  buf[ipOff + 56] = tc >>> 8;
  buf[ipOff + 57] = tc & 0xff;
}

/** Whether the stored TCP checksum of the IPv6 packet at ipOff (TCP at tcpOff) is right; false when the segment is cut. */
export function verifyIpv6TcpChecksum(buf: Buffer, ipOff: number, tcpOff = ipOff + 40): boolean {
  if (ipOff < 0 || buf.length - ipOff < 40 || tcpOff < ipOff + 40) return false;
  const plen = u16(buf, ipOff + 4);
  if (plen !== 0 && ipOff + 40 + plen > buf.length) return false;
  const tl = tcpLength6(buf, ipOff, tcpOff);
  if (tl < 20) return false;
  return onesComplementSum(buf, tcpOff, tl, onesComplementSum(buf, ipOff + 8, 32) + IP_PROTO_TCP + tl) === 0xffff;
}
