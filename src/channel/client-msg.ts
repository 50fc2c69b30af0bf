/**
 * The 14-byte tcpcopy -> intercept messages: hello (version), CLIENT_ADD, CLIENT_DEL.
 * Layout (network order): client ip u32 @0, client port u16 @4, type u16 @6,
 * target ip u32 @8, target port u16 @12.
 */
import { CHANNEL_VERSION, CLIENT_MSG_BYTES, MSG_CLIENT_ADD, MSG_CLIENT_DEL, MSG_FLAG_PAYLOAD } from './constants';

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

/** Writes the hello (all zero, type = CHANNEL_VERSION) at `buf[off]`; returns the offset after it. */
export function encodeHello(buf: Buffer, off: number, version = CHANNEL_VERSION): number {
  return encodeClientMsg(buf, off, version, 0, 0, 0, 0);
}

/** Receives the decoded messages of one connection. */
export interface ClientMsgHandler {
  /** The first message: a valid hello. `version` differs from CHANNEL_VERSION only with a warning. */
  hello(version: number): void;
  /**
   * CLIENT_ADD or CLIENT_DEL (type MSG_CLIENT_ADD / MSG_CLIENT_DEL, flag bits removed);
   * `flags` = the type's high byte on a v2 CLIENT_ADD asking for payload: bit 0 =
   * MSG_FLAG_PAYLOAD >> 8, bits 1..7 = the session's cap class (src/channel/caps.ts); always 0
   * on a decoder without `allowFlags`.
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
 * anywhere). Keeps at most 13 bytes between chunks in a fixed buffer; allocation-free.
 */
export class ClientMsgDecoder {
  private readonly part = Buffer.alloc(CLIENT_MSG_BYTES);
  private partLen = 0;
  private sawHello = false;
  private badCount = 0;
  private dead: ClientMsgVerdict = 'ok';
  /** Messages decoded (hello included). */
  messages = 0;

  /**
   * @param handler receives the messages
   * @param maxBad messages with an unknown type tolerated before the verdict 'too-many-bad' (default 16)
   * @param allowFlags channel v2: accept MSG_FLAG_PAYLOAD (with a cap class) on CLIENT_ADD
   *   (default false: a flagged type is an unknown type, as for the original intercept)
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

  /** Feeds `buf[off .. off+len)`; dispatches every complete message. Once not 'ok', stays so. */
  feed(buf: Buffer, off = 0, len = buf.length - off): ClientMsgVerdict {
    if (this.dead !== 'ok') return this.dead;
    let p = off;
    const end = off + len;
    if (this.partLen > 0) {
      const need = CLIENT_MSG_BYTES - this.partLen;
      const take = Math.min(need, end - p);
      buf.copy(this.part, this.partLen, p, p + take);
      this.partLen += take;
      p += take;
      if (this.partLen < CLIENT_MSG_BYTES) return 'ok';
      this.partLen = 0;
      const v = this.one(this.part, 0);
      if (v !== 'ok') return (this.dead = v);
    }
    while (end - p >= CLIENT_MSG_BYTES) {
      const v = this.one(buf, p);
      if (v !== 'ok') return (this.dead = v);
      p += CLIENT_MSG_BYTES;
    }
    if (p < end) {
      buf.copy(this.part, 0, p, end);
      this.partLen = end - p;
    }
    return 'ok';
  }

  private one(b: Buffer, o: number): ClientMsgVerdict {
    this.messages++;
    const clientIp = b.readUInt32BE(o);
    const clientPort = b.readUInt16BE(o + 4);
    const type = b.readUInt16BE(o + 6);
    const targetIp = b.readUInt32BE(o + 8);
    const targetPort = b.readUInt16BE(o + 12);
    if (!this.sawHello) {
      if (clientIp !== 0 || clientPort !== 0 || targetIp !== 0 || targetPort !== 0) return 'bad-hello';
      this.sawHello = true;
      this.handler.hello(type);
      return 'ok';
    }
    if (type === MSG_CLIENT_ADD || type === MSG_CLIENT_DEL) {
      this.handler.client(type, clientIp, clientPort, targetIp, targetPort, 0);
      return 'ok';
    }
    // v2: CLIENT_ADD with the payload flag, and a cap class in the high byte's other bits (caps.ts)
    if (this.allowFlags && (type & 0xff) === MSG_CLIENT_ADD && (type & MSG_FLAG_PAYLOAD) !== 0) {
      this.handler.client(MSG_CLIENT_ADD, clientIp, clientPort, targetIp, targetPort, type >> 8);
      return 'ok';
    }
    this.handler.bad(type);
    if (++this.badCount > this.maxBad) return 'too-many-bad';
    return 'ok';
  }
}
