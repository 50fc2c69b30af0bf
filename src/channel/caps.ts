/**
 * Channel v2 per-session payload caps (see doc/protocol.md "Per-session payload caps").
 *
 * A v2 session that asks for reply payloads (MSG_FLAG_PAYLOAD) gets up to intercept's
 * `--payload-max` bytes per reply. A session may instead ask for its own cap (a comparison wants
 * whole replies, a login 1 KiB) in the remaining seven bits of the CLIENT_ADD type's high byte:
 *
 *   type = 0x0001 | 0x0100 (PAYLOAD) | c << 9      c = 0..127 (the cap class)
 *
 * c = 0 is the pre-cap form (type 0x0101: intercept's --payload-max). c = 1..126 asks for
 * c * 512 bytes, c = 127 for 65535 (every byte a reply carries: the record's u16 limit);
 * intercept sends min(that, its --payload-max), so --payload-max stays the ceiling.
 *
 * An intercept without caps counts such a type as an unknown message, so tcpcopy uses it only
 * on a connection whose intercept said it understands it. The question and the answer are
 * harmless to peers that predate them:
 *
 * - tcpcopy -> intercept, right after its handshake response: a CLIENT_DEL of client
 *   0.0.0.0:0 with target address "CAPS" (0x43415053) and target port 1 (the question's
 *   version). An older intercept takes it for the removal of a route it does not have.
 * - intercept -> tcpcopy, only to a peer that asked: one 88-byte record whose first byte (the IP
 *   version) is 0 in an ordinary frame: [4..8) "CAPS", [8..10) feature bits (CAPS_SESSION_CAP),
 *   [10..12) intercept's --payload-max, the rest zero. Feature CAPS_STAMP (0x0002): a payload
 *   CLIENT_ADD may also carry MSG_FLAG_STAMP (0x0020 in the low byte): its records then carry
 *   intercept's capture time (v2.ts V2_REC_STAMP). An older tcpcopy never asks, so never
 *   sees one.
 *
 * Until the answer comes (and forever with an older intercept) CLIENT_ADDs use type 0x0101.
 */
import { encodeClientMsg } from './client-msg';
import { MSG_CLIENT_ADD, MSG_CLIENT_DEL, MSG_FLAG_PAYLOAD } from './constants';

/** "CAPS": the question's target address and the answer record's magic. */
export const CAPS_MAGIC = 0x43415053;
/** Version of the question (its target port). */
export const CAPS_VERSION = 1;
/** Feature bit of the answer: CLIENT_ADDs may carry a cap class. */
export const CAPS_SESSION_CAP = 0x0001;
/** Feature bit of the answer: payload CLIENT_ADDs may carry MSG_FLAG_STAMP (records with capture times). */
export const CAPS_STAMP = 0x0002;
/** Every feature this code answers with. */
export const CAPS_FEATURES = CAPS_SESSION_CAP | CAPS_STAMP;
/** Bytes per cap class step. */
export const CAP_UNIT = 512;
/** The largest cap class: 65535 bytes. */
export const CAP_CLASS_MAX = 127;
/** Bit position of the cap class in a CLIENT_ADD's type. */
export const CAP_SHIFT = 9;

/** The cap class asking for at least `bytes` per reply (0 for bytes <= 0: intercept's --payload-max). */
export function capClass(bytes: number): number {
  if (!(bytes > 0)) return 0;
  return Math.min(CAP_CLASS_MAX, Math.ceil(bytes / CAP_UNIT));
}

/** Bytes a cap class asks for (0: intercept's own --payload-max, returned as `ceiling`), at most `ceiling`. */
export function capBytes(c: number, ceiling: number): number {
  if (c <= 0) return ceiling;
  return Math.min(ceiling, c >= CAP_CLASS_MAX ? 65535 : c * CAP_UNIT);
}

/** The type of a CLIENT_ADD asking for payload with cap class `c` (0x0101 for c = 0). */
export function payloadAddType(c: number): number {
  return MSG_CLIENT_ADD | MSG_FLAG_PAYLOAD | ((c & CAP_CLASS_MAX) << CAP_SHIFT);
}

/** Writes the question at `buf[off]` (14 bytes); returns the offset after it. */
export function encodeCapsQuestion(buf: Buffer, off: number): number {
  return encodeClientMsg(buf, off, MSG_CLIENT_DEL, 0, 0, CAPS_MAGIC, CAPS_VERSION);
}

/** Whether a decoded message is the question (a CLIENT_DEL of 0.0.0.0:0 to "CAPS":version). */
export function isCapsQuestion(type: number, cIp: number, cPort: number, tIp: number, tPort: number): boolean {
  return type === MSG_CLIENT_DEL && cIp === 0 && cPort === 0 && tIp === CAPS_MAGIC && tPort >= 1;
}

/** Writes the 88-byte answer record at `out[off]` (`features`: default every feature of this code). */
export function writeCapsRecord(out: Buffer, off: number, payloadMax: number, features = CAPS_FEATURES): void {
  out.fill(0, off, off + 88);
  out.writeUInt32BE(CAPS_MAGIC, off + 4);
  out.writeUInt16BE(features & 0xffff, off + 8);
  out.writeUInt16BE(payloadMax & 0xffff, off + 10);
}

/** What an answer record says. */
export interface CapsAnswer {
  readonly features: number;
  /** intercept's --payload-max (the ceiling of every session's cap). */
  readonly payloadMax: number;
}

/** The answer in the v2 record at `b[off]` (version byte 0, "CAPS"), or null when it is not one. */
export function readCapsRecord(b: Buffer, off: number): CapsAnswer | null {
  if (b[off] !== 0 || b.readUInt32BE(off + 4) !== CAPS_MAGIC) return null;
  return { features: b.readUInt16BE(off + 8), payloadMax: b.readUInt16BE(off + 10) };
}
