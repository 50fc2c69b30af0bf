/**
 * Builds the intercept -> tcpcopy reply records from a captured IPv4/TCP packet.
 *
 * Record layout (all as captured, network order):
 *   [0, 20)   the IPv4 header, IHL forced to 5 (see "normalisation" below)
 *   [20, 64)  the TCP header with up to 24 bytes of options, zero-padded
 *   "with payload" variant only (192 bytes, the original intercept built --with-resp-payload):
 *   a reply whose WHOLE payload is 1..128 bytes has it copied right after the TCP header, at
 *   20 + doff*4 (52 with timestamps); a longer reply (or one the snaplen cut) carries none.
 *   The rest is zero.
 *
 * Normalisation, so that a record always parses as an IPv4 packet whose total length still
 * tells how much payload the reply carried:
 *   - IP options are dropped: IHL is written as 5 and the total length reduced by the option
 *     bytes; the header checksum is recomputed.
 *   - A TCP header longer than 44 bytes (more than 24 option bytes) is cut to 44: the data
 *     offset is written as 11, the total length reduced by the cut bytes, and an option that
 *     does not fit completely is replaced by zeros (EOL). The TCP checksum is not updated
 *     (records are never checksum-verified).
 *   - Bytes missing because the capture snaplen cut the packet are zero.
 */
import type { TcpSegment } from '../core/wire/segment';
import { ipv4HeaderChecksum } from '../core/wire/checksum';
import {
  RECORD_IP_BYTES,
  RECORD_MAX_PAYLOAD,
  RECORD_MAX_TCP_OPTIONS,
  RECORD_PAYLOAD_BYTES,
  RECORD_TCP_BYTES,
  type RecordBytes,
} from './constants';

/**
 * Writes the record of the packet described by `seg` (as filled by decodeFrame) into
 * `out[outOff .. outOff+recordBytes)`. Never throws for a segment a decoder accepted;
 * copies only bytes present in `seg.buf` (its capLen). Returns the payload bytes copied
 * (192-byte records only: the whole payload when it is 1..128 bytes and was captured, else 0).
 */
export function writeRecord(seg: TcpSegment, out: Buffer, outOff: number, recordBytes: RecordBytes): number {
  out.fill(0, outOff, outOff + recordBytes);
  const src = seg.buf;
  const capEnd = Math.min(src.length, seg.ipOff + seg.capLen);
  // IPv4 header: the fixed 20 bytes.
  const ipAvail = Math.max(0, Math.min(RECORD_IP_BYTES, capEnd - seg.ipOff));
  src.copy(out, outOff, seg.ipOff, seg.ipOff + ipAvail);
  let totalLen = seg.ipTotalLen - (seg.ipHdrLen - RECORD_IP_BYTES);
  // TCP header, at most 44 bytes.
  const tcpOut = outOff + RECORD_IP_BYTES;
  const tcpKeep = Math.min(seg.tcpHdrLen, RECORD_TCP_BYTES);
  totalLen -= writeRecordTcp(seg, out, tcpOut);
  out[outOff] = 0x45;
  out.writeUInt16BE(Math.max(0, Math.min(0xffff, totalLen)), outOff + 2);
  out.writeUInt16BE(0, outOff + 10);
  out.writeUInt16BE(ipv4HeaderChecksum(out, outOff), outOff + 10);
  if (recordBytes !== RECORD_PAYLOAD_BYTES) return 0;
  // The original: only a whole payload of 1..128 bytes, right after the (kept) TCP header.
  const n = seg.payloadLen;
  const pOff = seg.tcpOff + seg.tcpHdrLen;
  if (n < 1 || n > RECORD_MAX_PAYLOAD || capEnd - pOff < n) return 0;
  src.copy(out, tcpOut + tcpKeep, pOff, pOff + n);
  return n;
}

/**
 * Writes the TCP header of `seg` at `out[tcpOut]` as a record keeps it (both families): at most
 * 44 bytes (20 + 24 option bytes; a longer header is cut, its data offset written as 11 and an
 * option that does not fit replaced by zeros), bytes the snaplen cut left as they are (the
 * caller zeroed the record). Returns the header bytes cut (0 when it fits), which the caller
 * subtracts from the record's IP length so that the payload length stays right.
 */
export function writeRecordTcp(seg: TcpSegment, out: Buffer, tcpOut: number): number {
  const src = seg.buf;
  const capEnd = Math.min(src.length, seg.ipOff + seg.capLen);
  const tcpKeep = Math.min(seg.tcpHdrLen, RECORD_TCP_BYTES);
  const tcpAvail = Math.max(0, Math.min(tcpKeep, capEnd - seg.tcpOff));
  src.copy(out, tcpOut, seg.tcpOff, seg.tcpOff + tcpAvail);
  if (seg.tcpHdrLen <= RECORD_TCP_BYTES) return 0;
  if (tcpAvail >= 13) out[tcpOut + 12] = ((RECORD_TCP_BYTES / 4) << 4) | ((out[tcpOut + 12] as number) & 0x0f);
  trimOptions(out, tcpOut + 20, RECORD_MAX_TCP_OPTIONS);
  return seg.tcpHdrLen - RECORD_TCP_BYTES;
}

/** Zeroes, from the first option that does not fit completely in `len` bytes, to the end. */
function trimOptions(b: Buffer, off: number, len: number): void {
  let i = 0;
  while (i < len) {
    const kind = b[off + i] as number;
    if (kind === 0) break;
    if (kind === 1) {
      i++;
      continue;
    }
    const olen = i + 1 < len ? (b[off + i + 1] as number) : 0;
    if (olen < 2 || i + olen > len) break;
    i += olen;
  }
  if (i < len) b.fill(0, off + i, off + len);
}

/**
 * Offset of the payload in a "with payload" record at `buf[off]`: right after its TCP header,
 * `off + 20 + doff*4` (the TCP header sits at 20 whatever the IHL says, as the original lays it).
 */
export function recordPayloadOff(buf: Buffer, off: number): number {
  return off + RECORD_IP_BYTES + ((buf[off + RECORD_IP_BYTES + 12] as number) >> 4) * 4;
}

/**
 * Number of payload bytes a "with payload" record at `buf[off .. off+len)` carries at
 * recordPayloadOff(): the reply's payload length (IP total length - IHL*4 - doff*4) when it is
 * 1..128 and fits in the record, else 0 (a longer reply carries none; a 64-byte record never).
 */
export function recordPayloadLen(buf: Buffer, off: number, len: number): number {
  if (len < RECORD_PAYLOAD_BYTES || off + len > buf.length) return 0;
  const ihl = ((buf[off] as number) & 0x0f) * 4;
  const tcpHdr = ((buf[off + RECORD_IP_BYTES + 12] as number) >> 4) * 4;
  const p = buf.readUInt16BE(off + 2) - ihl - tcpHdr;
  if (p < 1 || p > RECORD_MAX_PAYLOAD || RECORD_IP_BYTES + tcpHdr + p > len) return 0;
  return p;
}

/**
 * Makes a record laid out by the original intercept parse like ours: it copies the 20-byte
 * IPv4 header as captured, so a reply with IP options keeps IHL > 5 although the TCP header
 * sits at offset 20. Rewrites such a record in place to IHL 5, total length reduced by the
 * option bytes (payload length unchanged), header checksum recomputed. No-op for IHL 5.
 * Call it before recordPayloadLen/parseIpv4Tcp.
 */
export function normaliseRecordIp(buf: Buffer, off: number): void {
  const vihl = buf[off] as number;
  const ihl = vihl & 0x0f;
  if (ihl <= 5 || vihl >> 4 !== 4) return;
  const total = buf.readUInt16BE(off + 2) - (ihl - 5) * 4;
  buf[off] = 0x45;
  buf.writeUInt16BE(Math.max(0, total), off + 2);
  buf.writeUInt16BE(0, off + 10);
  buf.writeUInt16BE(ipv4HeaderChecksum(buf, off), off + 10);
}
