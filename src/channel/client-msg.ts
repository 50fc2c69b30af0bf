/**
 * The 14-byte tcpcopy -> intercept messages: hello (version), CLIENT_ADD, CLIENT_DEL.
 * Layout (network order): client ip u32 @0, client port u16 @4, type u16 @6,
 * target ip u32 @8, target port u16 @12.
 *
 * Channel v2 adds the 46-byte IPv6 form (type bit MSG_TYPE_IPV6, 0x10 in the low byte): the same 14 bytes with both
 * IPv4 address fields zero, then the client's 16-byte IPv6 address @14 and the target's @30.
 */
import { internIpv6, isIpv6, writeIpv6 } from '../core/wire/ipv6';
import {
  CHANNEL_VERSION,
  CLIENT_MSG_BYTES,
  CLIENT_MSG6_BYTES,
  MSG_CLIENT_ADD,
  MSG_CLIENT_DEL,
  MSG_TYPE_IPV6,
  MSG_FLAG_PAYLOAD,
  MSG_FLAG_STAMP,
} from './constants';

/** Writes one 14-byte message at `buf[off]`; returns the offset after it. */
export function encodeClientMsg(
  buf: Buffer,
  off: number,
  type: number,
  clientIp: number,
  clientPort: number,
  targetIp: number,
  targetPort: number,
): number {
  buf.writeUInt32BE(clientIp >>> 0, off);
  buf.writeUInt16BE(clientPort & 0xffff, off + 4);
  buf.writeUInt16BE(type & 0xffff, off + 6);
  buf.writeUInt32BE(targetIp >>> 0, off + 8);
  buf.writeUInt16BE(targetPort & 0xffff, off + 12);
  return off + CLIENT_MSG_BYTES;
}

/**
 * Writes one channel v2 IPv6 message (46 bytes) at `buf[off]`: `type` is MSG_CLIENT_ADD or
 * MSG_CLIENT_DEL (the high byte's payload flag and cap class may be set; MSG_TYPE_IPV6 is added), the addresses are IPv6
 * ids (core/wire/ipv6.ts). Returns the offset after it.
 */
export function encodeClientMsg6(
  buf: Buffer,
  off: number,
  type: number,
  clientIp: number,
  clientPort: number,
  targetIp: number,
  targetPort: number,
): number {
  encodeClientMsg(buf, off, type | MSG_TYPE_IPV6, 0, clientPort, 0, targetPort);
  writeIpv6(clientIp, buf, off + CLIENT_MSG_BYTES);
  writeIpv6(targetIp, buf, off + CLIENT_MSG_BYTES + 16);
  return off + CLIENT_MSG6_BYTES;
}

/**
 * Writes a CLIENT_ADD/CLIENT_DEL in the form its addresses need: 14 bytes for IPv4, the
 * 46-byte channel v2 form when either address is an IPv6 id. Returns the offset after it.
 */
export function encodeClientAny(
  buf: Buffer,
  off: number,
  type: number,
  clientIp: number,
  clientPort: number,
  targetIp: number,
  targetPort: number,
): number {
  if (isIpv6(clientIp) || isIpv6(targetIp))
    return encodeClientMsg6(buf, off, type, clientIp, clientPort, targetIp, targetPort);
  return encodeClientMsg(buf, off, type, clientIp, clientPort, targetIp, targetPort);
}

/** Writes the hello (all zero, type = CHANNEL_VERSION) at `buf[off]`; returns the offset after it. */
export function encodeHello(buf: Buffer, off: number, version = CHANNEL_VERSION): number {
  return encodeClientMsg(buf, off, version, 0, 0, 0, 0);
}

/** Bit of ClientMsgHandler.client's `flags`: the CLIENT_ADD carried MSG_FLAG_STAMP. */
export const FLAGS_STAMP = 0x100;

/** Receives the decoded messages of one connection. */
export interface ClientMsgHandler {
  /** The first message: a valid hello. `version` differs from CHANNEL_VERSION only with a warning. */
  hello(version: number): void;
  /**
   * CLIENT_ADD or CLIENT_DEL (type MSG_CLIENT_ADD / MSG_CLIENT_DEL, flag bits removed);
   * `flags` = the type's high byte on a v2 CLIENT_ADD asking for payload: bit 0 =
   * MSG_FLAG_PAYLOAD >> 8, bits 1..7 = the session's cap class (src/channel/caps.ts); always 0
   * on a decoder without `allowFlags`; bit 8 (FLAGS_STAMP) = MSG_FLAG_STAMP (the session wants
   * capture times with its records). An IPv6 message (MSG_TYPE_IPV6) gives IPv6 ids as
   * addresses and the type without that bit.
   */
  client(type: number, clientIp: number, clientPort: number, targetIp: number, targetPort: number, flags: number): void;
  /** A message with an unknown type (after the hello). */
  bad(type: number): void;
}

/** What a chunk fed to the decoder amounted to. */
export type ClientMsgVerdict =
  /** All complete messages were dispatched; keep reading. */
  | 'ok'
  /** The first message was not a hello (non-zero address or port): close the connection. */
  | 'bad-hello'
  /** More than `maxBad` messages with unknown types: close the connection. */
  | 'too-many-bad';

/**
 * Streaming decoder for one tcpcopy connection, fed arbitrary chunks (a message may be split
 * anywhere). Keeps at most 45 bytes between chunks in a fixed buffer; allocation-free (an IPv6
 * address seen for the first time is interned, see core/wire/ipv6.ts).
 */
export class ClientMsgDecoder {
  private readonly part = Buffer.alloc(CLIENT_MSG6_BYTES);
  private partLen = 0;
  /** Length of the message being assembled in `part` (known once its first 14 bytes are in). */
  private partNeed = CLIENT_MSG_BYTES;
  private sawHello = false;
  private badCount = 0;
  private dead: ClientMsgVerdict = 'ok';
  /** Messages decoded (hello included). */
  messages = 0;

  /**
   * @param handler receives the messages
   * @param maxBad messages with an unknown type tolerated before the verdict 'too-many-bad' (default 16)
   * @param allowFlags channel v2: accept MSG_FLAG_PAYLOAD (with a cap class) on CLIENT_ADD and
   *   the 46-byte IPv6 messages (MSG_TYPE_IPV6) (default false: a flagged type is an unknown
   *   14-byte message, as for the original intercept)
   */
  constructor(
    private readonly handler: ClientMsgHandler,
    private readonly maxBad = 16,
    private readonly allowFlags = false,
  ) {}

  /** True once the hello was received. */
  get helloReceived(): boolean {
    return this.sawHello;
  }

  /** Length of the message whose first 14 bytes are at `b[o]`: 46 for a v2 IPv6 message, else 14. */
  private msgLen(b: Buffer, o: number): number {
    if (!this.sawHello || !this.allowFlags) return CLIENT_MSG_BYTES;
    return ((b[o + 7] as number) & MSG_TYPE_IPV6) !== 0 ? CLIENT_MSG6_BYTES : CLIENT_MSG_BYTES;
  }

  /** Feeds `buf[off .. off+len)`; dispatches every complete message. Once not 'ok', stays so. */
  feed(buf: Buffer, off = 0, len = buf.length - off): ClientMsgVerdict {
    if (this.dead !== 'ok') return this.dead;
    let p = off;
    const end = off + len;
    while (p < end) {
      if (this.partLen === 0 && end - p >= CLIENT_MSG_BYTES) {
        const n = this.msgLen(buf, p);
        if (end - p >= n) {
          const v = this.one(buf, p, n);
          if (v !== 'ok') return (this.dead = v);
          p += n;
          continue;
        }
      }
      // assemble a split message in `part`: its first 14 bytes, then the rest of an IPv6 one
      const want = this.partLen < CLIENT_MSG_BYTES ? CLIENT_MSG_BYTES : this.partNeed;
      const take = Math.min(want - this.partLen, end - p);
      buf.copy(this.part, this.partLen, p, p + take);
      this.partLen += take;
      p += take;
      if (this.partLen < want) break;
      if (want === CLIENT_MSG_BYTES) {
        this.partNeed = this.msgLen(this.part, 0);
        if (this.partNeed > CLIENT_MSG_BYTES) continue;
      }
      this.partLen = 0;
      const v = this.one(this.part, 0, this.partNeed);
      this.partNeed = CLIENT_MSG_BYTES;
      if (v !== 'ok') return (this.dead = v);
    }
    return 'ok';
  }

  private one(b: Buffer, o: number, n: number): ClientMsgVerdict {
    this.messages++;
    let clientIp = b.readUInt32BE(o);
    const clientPort = b.readUInt16BE(o + 4);
    let type = b.readUInt16BE(o + 6);
    let targetIp = b.readUInt32BE(o + 8);
    const targetPort = b.readUInt16BE(o + 12);
    if (!this.sawHello) {
      if (clientIp !== 0 || clientPort !== 0 || targetIp !== 0 || targetPort !== 0) return 'bad-hello';
      this.sawHello = true;
      this.handler.hello(type);
      return 'ok';
    }
    if (n === CLIENT_MSG6_BYTES) {
      // v2 IPv6: the IPv4 fields must be zero; the addresses follow
      const c = clientIp === 0 && targetIp === 0 ? internIpv6(b, o + CLIENT_MSG_BYTES) : -1;
      const t = c >= 0 ? internIpv6(b, o + CLIENT_MSG_BYTES + 16) : -1;
      if (t < 0) return this.badType(type);
      clientIp = c;
      targetIp = t;
      type &= ~MSG_TYPE_IPV6;
    }
    if (type === MSG_CLIENT_ADD || type === MSG_CLIENT_DEL) {
      this.handler.client(type, clientIp, clientPort, targetIp, targetPort, 0);
      return 'ok';
    }
    // v2: CLIENT_ADD with the payload flag, and a cap class in the high byte's other bits (caps.ts)
    // and MSG_FLAG_STAMP in the low byte (records with capture times): flags bit 8
    if (this.allowFlags && (type & 0xff & ~MSG_FLAG_STAMP) === MSG_CLIENT_ADD && (type & MSG_FLAG_PAYLOAD) !== 0) {
      const stamp = (type & MSG_FLAG_STAMP) !== 0 ? FLAGS_STAMP : 0;
      this.handler.client(MSG_CLIENT_ADD, clientIp, clientPort, targetIp, targetPort, (type >> 8) | stamp);
      return 'ok';
    }
    return this.badType(n === CLIENT_MSG6_BYTES ? type | MSG_TYPE_IPV6 : type);
  }

  private badType(type: number): ClientMsgVerdict {
    this.handler.bad(type);
    if (++this.badCount > this.maxBad) return 'too-many-bad';
    return 'ok';
  }
}
