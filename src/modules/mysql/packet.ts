/**
 * MySQL/MariaDB packet framing, pure (no I/O, no clock): every message is one or more packets
 * of a 3-byte little-endian payload length, a 1-byte sequence id and the payload. A payload
 * of 0xffffff bytes is continued by the next packet (the framer hands out packets, not
 * messages; such large packets are not part of a login). Also the length-encoded integers
 * and strings the protocol uses.
 */

/** Bytes of a packet header. */
export const PACKET_HEADER_BYTES = 4;
/** Largest payload of one packet (a longer message continues in the next one). */
export const MAX_PACKET_PAYLOAD = 0xffffff;

/** One packet: its sequence id and payload (a copy the caller may keep). */
export interface MysqlPacket {
  seq: number;
  payload: Buffer;
}

/** Writes one packet (header + payload) into a new Buffer. */
export function encodePacket(seq: number, payload: Buffer): Buffer {
  if (payload.length > MAX_PACKET_PAYLOAD) throw new RangeError(`payload of ${payload.length} bytes needs splitting`);
  const b = Buffer.allocUnsafe(PACKET_HEADER_BYTES + payload.length);
  b.writeUIntLE(payload.length, 0, 3);
  b[3] = seq & 0xff;
  payload.copy(b, PACKET_HEADER_BYTES);
  return b;
}

/**
 * Splits a byte stream (one direction of a connection) into packets, fed in arbitrary chunks.
 * Keeps the unfinished packet's bytes between feeds.
 */
export class PacketFramer {
  private pending: Buffer = Buffer.alloc(0);
  private dead = false;
  /** Packets handed out. */
  packets = 0;

  /**
   * @param maxPayload a packet announcing more is refused (`feed` returns 'too-large' and the
   *   framer stays dead); default MAX_PACKET_PAYLOAD
   */
  constructor(private readonly maxPayload = MAX_PACKET_PAYLOAD) {}

  /** Bytes held of an unfinished packet. */
  get buffered(): number {
    return this.pending.length;
  }

  /** Feeds bytes; calls `onPacket` for each complete packet, in order. */
  feed(chunk: Buffer, onPacket: (p: MysqlPacket) => void): 'ok' | 'too-large' {
    if (this.dead) return 'too-large';
    let b = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (b.length >= PACKET_HEADER_BYTES) {
      const len = b.readUIntLE(0, 3);
      if (len > this.maxPayload) {
        this.dead = true;
        this.pending = Buffer.alloc(0);
        return 'too-large';
      }
      if (b.length < PACKET_HEADER_BYTES + len) break;
      this.packets++;
      onPacket({
        seq: b[3] as number,
        payload: Buffer.from(b.subarray(PACKET_HEADER_BYTES, PACKET_HEADER_BYTES + len)),
      });
      b = b.subarray(PACKET_HEADER_BYTES + len);
    }
    this.pending = b.length === 0 ? Buffer.alloc(0) : Buffer.from(b);
    return 'ok';
  }
}

/** A length-encoded integer read at `b[off]`: its value and size in bytes; null if cut or invalid (0xff). */
export function readLenEnc(b: Buffer, off: number): { value: number; bytes: number } | null {
  if (off >= b.length) return null;
  const f = b[off] as number;
  if (f < 0xfb) return { value: f, bytes: 1 };
  if (f === 0xfc) return off + 3 <= b.length ? { value: b.readUInt16LE(off + 1), bytes: 3 } : null;
  if (f === 0xfd) return off + 4 <= b.length ? { value: b.readUIntLE(off + 1, 3), bytes: 4 } : null;
  if (f === 0xfe) {
    if (off + 9 > b.length) return null;
    const v = Number(b.readBigUInt64LE(off + 1));
    return Number.isSafeInteger(v) ? { value: v, bytes: 9 } : null;
  }
  return null; // 0xfb (NULL in rows) and 0xff (error) are not lengths
}

/** The length-encoded form of `n`. */
export function encodeLenEnc(n: number): Buffer {
  if (n < 0xfb) return Buffer.from([n]);
  if (n <= 0xffff) {
    const b = Buffer.alloc(3);
    b[0] = 0xfc;
    b.writeUInt16LE(n, 1);
    return b;
  }
  if (n <= 0xffffff) {
    const b = Buffer.alloc(4);
    b[0] = 0xfd;
    b.writeUIntLE(n, 1, 3);
    return b;
  }
  const b = Buffer.alloc(9);
  b[0] = 0xfe;
  b.writeBigUInt64LE(BigInt(n), 1);
  return b;
}

/** Index of the NUL ending a string that starts at `off`, -1 when there is none. */
export function nulEnd(b: Buffer, off: number): number {
  return off <= b.length ? b.indexOf(0, off) : -1;
}
