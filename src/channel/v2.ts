/**
 * Channel v2 (opt-in, both sides ours, `--secret-file` on both): a challenge-response with a
 * shared secret after the version hello, then 88-byte records with room for IPv6 headers.
 * See doc/protocol.md "Channel v2". The 1.x channel stays the default.
 *
 *   tcpcopy -> intercept  hello, type = CHANNEL_VERSION_V2 (14 bytes, as in 1.x)
 *   intercept -> tcpcopy  "TCV2" nonceS[32]                      (challenge, 36 bytes)
 *                         or "TCNO" + 32 zero bytes + close       (this intercept has no secret)
 *   tcpcopy -> intercept  nonceC[32] HMAC(secret, "tcpcopy-v2 client" nonceS nonceC)  (64 bytes)
 *   intercept -> tcpcopy  "TCOK" HMAC(secret, "tcpcopy-v2 server" nonceS nonceC)      (36 bytes)
 *                         or "TCNO" + 32 zero bytes + close       (wrong secret)
 *   then: 14-byte CLIENT_ADD/DEL messages as in 1.x; frames of u16 count + 88-byte v2 records.
 *
 * v2 record (88 bytes): [0] u8 IP version (4 or 6), [1] u8 flags, [2..4) u16 payload bytes
 * that follow the record, [4..44) the network header (IPv4: the 20-byte header normalised as
 * in 1.x, then 20 zero bytes; IPv6: the 40-byte fixed header, next header TCP, payload length
 * = the TCP segment's), [44..88) the TCP header with up to 24 option bytes, zero-padded. An
 * IPv6 session registers with the 46-byte IPv6 CLIENT_ADD (client-msg.ts). Flags: V2_REC_PAYLOAD (the session asked for payload with
 * MSG_FLAG_PAYLOAD on its CLIENT_ADD; [2..4) bytes of it follow), V2_REC_TRUNCATED (the reply
 * carried more than that: over `--payload-max`, or cut by the snaplen). Records of sessions
 * that did not ask have flags 0, length 0 and nothing after them (the pre-payload layout).
 * V2_REC_STAMP (the session also asked with MSG_FLAG_STAMP): 8 bytes follow the record before
 * the payload: [88..92) u32 seconds and [92..96) u32 nanoseconds of intercept's capture time
 * of the reply (its clock, Unix epoch); the payload then starts at 96.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { TcpSegment } from '../core/wire/segment';
import { isIpv6 } from '../core/wire/ipv6';
import { writeRecord, writeRecordTcp } from './record';
import { RECORD_BYTES, RECORD_IP_BYTES, RECORD_TCP_BYTES } from './constants';

/** v2 record flag: the session asked for payload; record[2..4) bytes of it follow the record. */
export const V2_REC_PAYLOAD = 0x01;
/** v2 record flag: the reply carried more payload than follows (cap or snaplen). */
export const V2_REC_TRUNCATED = 0x02;
/** v2 record flag: intercept's capture time (V2_STAMP_BYTES) follows the record, before the payload. */
export const V2_REC_STAMP = 0x04;
/** Bytes of a capture time stamp: u32 seconds, u32 nanoseconds. */
export const V2_STAMP_BYTES = 8;
/** Default and range of intercept's `--payload-max`: payload bytes per reply, v2 sessions that ask. */
export const DEFAULT_PAYLOAD_MAX = 1024;
/** Largest `--payload-max` (the u16 length field). */
export const MAX_PAYLOAD_MAX = 65535;

/** Hello `type` asking for channel v2. */
export const CHANNEL_VERSION_V2 = 7;
/** Nonce bytes of either side. */
export const V2_NONCE_BYTES = 32;
/** HMAC-SHA256 bytes. */
export const V2_MAC_BYTES = 32;
/** Size of the challenge and of the result ("TCV2"/"TCOK"/"TCNO" + 32 bytes). */
export const V2_SERVER_MSG_BYTES = 36;
/** Size of tcpcopy's response: nonceC + MAC. */
export const V2_RESPONSE_BYTES = 64;
/** Size of a v2 record. */
export const V2_RECORD_BYTES = 88;
/** Offset of the network header in a v2 record. */
export const V2_NET_OFF = 4;
/** Offset of the TCP header in a v2 record. */
export const V2_TCP_OFF = 44;

/** Magic of the challenge. */
export const V2_CHALLENGE = Buffer.from('TCV2');
/** Magic of a successful result. */
export const V2_OK = Buffer.from('TCOK');
/** Magic of a refusal (no secret configured, or a wrong secret). */
export const V2_NO = Buffer.from('TCNO');

function mac(secret: Buffer, label: string, nonceS: Buffer, nonceC: Buffer): Buffer {
  return createHmac('sha256', secret).update(label).update(nonceS).update(nonceC).digest();
}

/** tcpcopy's proof: HMAC-SHA256(secret, "tcpcopy-v2 client" || nonceS || nonceC). */
export function clientProof(secret: Buffer, nonceS: Buffer, nonceC: Buffer): Buffer {
  return mac(secret, 'tcpcopy-v2 client', nonceS, nonceC);
}

/** intercept's proof: HMAC-SHA256(secret, "tcpcopy-v2 server" || nonceS || nonceC). */
export function serverProof(secret: Buffer, nonceS: Buffer, nonceC: Buffer): Buffer {
  return mac(secret, 'tcpcopy-v2 server', nonceS, nonceC);
}

/** Constant-time comparison of two MACs (false when lengths differ). */
export function macEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A 36-byte server message: 4-byte magic + 32 bytes (nonce, proof or zeros). */
export function serverMsg(magic: Buffer, body: Buffer | null): Buffer {
  const b = Buffer.alloc(V2_SERVER_MSG_BYTES);
  magic.copy(b, 0);
  if (body !== null) body.copy(b, 4, 0, 32);
  return b;
}

/** IPv6 next-header value of TCP. */
const IPPROTO_TCP = 6;

/**
 * The v2 record of an IPv6 reply: version 6, the 40-byte fixed header normalised so that the
 * record parses as IPv6 + TCP at [4] with the TCP header at [44] (parseIpTcp(rec, off + 4, 84,
 * seg, true)): extension headers are dropped (next header written as TCP) and the payload
 * length is the TCP segment's length, minus the TCP header bytes cut beyond 44, so that the
 * payload length it gives stays the reply's. The flow label, traffic class and hop limit stay
 * as captured. Allocation-free.
 */
function writeRecordV2Ipv6(seg: TcpSegment, out: Buffer, off: number): void {
  out.fill(0, off, off + V2_RECORD_BYTES);
  out[off] = 6;
  const net = off + V2_NET_OFF;
  seg.buf.copy(out, net, seg.ipOff, seg.ipOff + 40);
  out[net + 6] = IPPROTO_TCP;
  const cut = writeRecordTcp(seg, out, off + V2_TCP_OFF);
  const plen = seg.ipTotalLen - seg.ipHdrLen - cut;
  out.writeUInt16BE(Math.max(0, Math.min(0xffff, plen)), net + 4);
}

/**
 * Writes the v2 record of a reply (`seg` as filled by decodeFrame) at `out[off]`: IPv4, the
 * 1.x record moved into the v2 layout; IPv6, the normalised fixed header (writeRecordV2Ipv6).
 * Allocation-free.
 */
export function writeRecordV2(seg: TcpSegment, out: Buffer, off: number): void {
  if (isIpv6(seg.dstIp)) {
    writeRecordV2Ipv6(seg, out, off);
    return;
  }
  writeRecord(seg, out, off + V2_NET_OFF, RECORD_BYTES);
  // TCP header from [off+24, off+68) to [off+44, off+88); zero the gap and the prefix
  out.copyWithin(off + V2_TCP_OFF, off + V2_NET_OFF + RECORD_IP_BYTES, off + V2_NET_OFF + RECORD_BYTES);
  out.fill(0, off + V2_NET_OFF + RECORD_IP_BYTES, off + V2_TCP_OFF);
  out[off] = 4;
  out[off + 1] = 0;
  out[off + 2] = 0;
  out[off + 3] = 0;
}

/**
 * Payload bytes a v2 record of `seg` carries with a cap of `max`: min(payload, max, captured).
 * Reserve V2_RECORD_BYTES + this, then call writeRecordV2Payload with it.
 */
export function v2PayloadBytes(seg: TcpSegment, max: number): number {
  const pOff = seg.tcpOff + seg.tcpHdrLen;
  const captured = Math.min(seg.buf.length, seg.ipOff + seg.capLen) - pOff;
  return Math.max(0, Math.min(seg.payloadLen, max, captured));
}

/**
 * Writes the v2 record of `seg` for a session that asked for payload, followed by `n` payload
 * bytes (n from v2PayloadBytes): `out[off .. off + 88 + n)`. With `stamped` (the session asked
 * for capture times) the record is flagged V2_REC_STAMP, the payload starts at 96 and the
 * caller writes the stamp at [88..96) (writeStamp): `out[off .. off + 96 + n)`. Allocation-free.
 */
export function writeRecordV2Payload(seg: TcpSegment, out: Buffer, off: number, n: number, stamped = false): void {
  writeRecordV2(seg, out, off);
  out[off + 1] = V2_REC_PAYLOAD | (n < seg.payloadLen ? V2_REC_TRUNCATED : 0) | (stamped ? V2_REC_STAMP : 0);
  out.writeUInt16BE(n, off + 2);
  const pOff = seg.tcpOff + seg.tcpHdrLen;
  const at = off + V2_RECORD_BYTES + (stamped ? V2_STAMP_BYTES : 0);
  if (n > 0) seg.buf.copy(out, at, pOff, pOff + n);
}

/** Writes a capture time stamp (whole seconds, nanoseconds 0..999,999,999) at `out[off .. off+8)`. */
export function writeStamp(out: Buffer, off: number, sec: number, nsec: number): void {
  out.writeUInt32BE(sec >>> 0, off);
  out.writeUInt32BE(nsec >>> 0, off + 4);
}

/** The capture time (ms since the Unix epoch, fractional) of a stamp at `b[off .. off+8)`. */
export function readStampMs(b: Buffer, off: number): number {
  return b.readUInt32BE(off) * 1000 + b.readUInt32BE(off + 4) / 1e6;
}

/**
 * Tail length of a v2 record at `b[off]` (for FrameDecoder): its payload bytes (0 without
 * V2_REC_PAYLOAD), plus V2_STAMP_BYTES with V2_REC_STAMP.
 */
export function v2TailLength(b: Buffer, off: number): number {
  const f = b[off + 1] as number;
  return ((f & V2_REC_PAYLOAD) !== 0 ? b.readUInt16BE(off + 2) : 0) + ((f & V2_REC_STAMP) !== 0 ? V2_STAMP_BYTES : 0);
}

/** Converts a 1.x 64-byte record at `src[off]` into a v2 record at `out[outOff]`. */
export function v1ToV2(src: Buffer, off: number, out: Buffer, outOff: number): void {
  out.fill(0, outOff, outOff + V2_RECORD_BYTES);
  out[outOff] = 4;
  src.copy(out, outOff + V2_NET_OFF, off, off + RECORD_IP_BYTES);
  src.copy(out, outOff + V2_TCP_OFF, off + RECORD_IP_BYTES, off + RECORD_BYTES);
}

/**
 * Converts a v2 record at `src[off]` into the 1.x layout at `out[outOff]` (64 bytes) for the
 * IPv4 engine. Returns the record's IP version: 4 (converted), 6 (IPv6: not converted), or 0
 * (malformed: unknown version).
 */
export function v2ToV1(src: Buffer, off: number, out: Buffer, outOff: number): 0 | 4 | 6 {
  const v = src[off];
  if (v === 6) return 6;
  if (v !== 4) return 0;
  src.copy(out, outOff, off + V2_NET_OFF, off + V2_NET_OFF + RECORD_IP_BYTES);
  src.copy(out, outOff + RECORD_IP_BYTES, off + V2_TCP_OFF, off + V2_TCP_OFF + RECORD_TCP_BYTES);
  return 4;
}

/**
 * Offset and length of the IPv6 packet (fixed header + TCP header) inside the v2 IPv6 record at
 * `off`: the header at off + 4, the TCP header right after it at off + 44, 84 bytes in all; parse
 * it in place with parseIpTcp(buf, V2_NET_OFF + off, V2_IPV6_PACKET_BYTES, seg, true).
 */
export const V2_IPV6_PACKET_BYTES = V2_RECORD_BYTES - V2_NET_OFF;

/** What feeding intercept's bytes to a {@link V2ClientHandshake} produced. */
export type V2ClientStep =
  /** Need more bytes. */
  | { kind: 'wait' }
  /** Send these bytes (the response) and keep feeding. */
  | { kind: 'send'; bytes: Buffer }
  /** Authenticated; `rest` are the first frame bytes that followed. */
  | { kind: 'ok'; rest: Buffer }
  /** Refused or failed; `message` says why and what to fix. */
  | { kind: 'fail'; message: string };

/** tcpcopy's side of the v2 handshake (after it sent the v2 hello), fed intercept's bytes. */
export class V2ClientHandshake {
  private nonceS: Buffer | null = null;
  private buf: Buffer = Buffer.alloc(0);

  /**
   * @param secret the shared secret
   * @param nonceC tcpcopy's 32-byte nonce (random; injectable for tests)
   */
  constructor(
    private readonly secret: Buffer,
    private readonly nonceC: Buffer,
  ) {}

  /** Feeds bytes from intercept. */
  feed(chunk: Buffer): V2ClientStep {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    if (this.buf.length < V2_SERVER_MSG_BYTES) return { kind: 'wait' };
    const magic = this.buf.subarray(0, 4);
    const body = this.buf.subarray(4, V2_SERVER_MSG_BYTES);
    if (this.nonceS === null) {
      if (magic.equals(V2_NO))
        return {
          kind: 'fail',
          message:
            'intercept refused channel v2: it was started without --secret-file (give both sides the same --secret-file, or neither)',
        };
      if (!magic.equals(V2_CHALLENGE))
        return {
          kind: 'fail',
          message:
            'intercept did not answer the channel v2 hello (a 1.x intercept?): start it with the same --secret-file, or drop --secret-file',
        };
      this.nonceS = Buffer.from(body);
      this.buf = this.buf.subarray(V2_SERVER_MSG_BYTES);
      const resp = Buffer.alloc(V2_RESPONSE_BYTES);
      this.nonceC.copy(resp, 0);
      clientProof(this.secret, this.nonceS, this.nonceC).copy(resp, V2_NONCE_BYTES);
      return { kind: 'send', bytes: resp };
    }
    if (magic.equals(V2_NO))
      return { kind: 'fail', message: "intercept refused the shared secret: --secret-file differs from intercept's" };
    if (!magic.equals(V2_OK) || !macEqual(Buffer.from(body), serverProof(this.secret, this.nonceS, this.nonceC))) {
      return {
        kind: 'fail',
        message:
          'intercept could not prove the shared secret (wrong --secret-file on intercept, or not the intercept you meant)',
      };
    }
    return { kind: 'ok', rest: this.buf.subarray(V2_SERVER_MSG_BYTES) };
  }
}
