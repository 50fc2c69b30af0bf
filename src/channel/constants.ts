/**
 * Sizes, limits and type codes of the tcpcopy <-> intercept channel (TCPCopy 1.x compatible).
 * Every multi-byte field on the channel is in network byte order. See doc/protocol.md.
 */

/** Default channel TCP port (original `-p` of both tcpcopy and intercept). */
export const CHANNEL_DEFAULT_PORT = 36524;

/** Size of one tcpcopy -> intercept message. */
export const CLIENT_MSG_BYTES = 14;

/** Message type: register a client address (sent before the session's SYN). */
export const MSG_CLIENT_ADD = 1;
/** Message type: the session is over (the original intercept ignores it). */
export const MSG_CLIENT_DEL = 2;
/**
 * Channel v2 only: flag in the high byte of a CLIENT_ADD's `type` (type = 0x0101): send this
 * session's reply payloads (up to intercept's `--payload-max` per reply). See doc/protocol.md.
 */
export const MSG_FLAG_PAYLOAD = 0x0100;
/**
 * Channel v2 only: bit in the LOW byte of a CLIENT_ADD/CLIENT_DEL's `type` (0x0011, 0x0012;
 * the high byte's payload flag and cap class apply unchanged: 0x0111 asks for payload): an
 * IPv6 session. The message is then CLIENT_MSG6_BYTES long: the 14-byte message with both IPv4
 * address fields zero, followed by the client's and the target's 16-byte IPv6 addresses. See
 * doc/protocol.md "IPv6 on channel v2".
 */
export const MSG_TYPE_IPV6 = 0x0010;
/**
 * Channel v2 only, with MSG_FLAG_PAYLOAD: bit in the LOW byte of a CLIENT_ADD's `type` (0x0121,
 * 0x0131 for IPv6; the cap class as usual): also send intercept's capture time with each of this
 * session's reply records (V2_REC_STAMP, src/channel/v2.ts). Sent only to an intercept whose caps
 * answer has CAPS_STAMP (src/channel/caps.ts). See doc/protocol.md "Capture time stamps".
 */
export const MSG_FLAG_STAMP = 0x0020;
/** Size of a channel v2 IPv6 CLIENT_ADD/CLIENT_DEL: 14 + 16 (client address) + 16 (target address). */
export const CLIENT_MSG6_BYTES = 46;
/** Protocol version carried in the `type` field of the hello (first message of a connection). */
export const CHANNEL_VERSION = 6;

/** Bytes of the IPv4 header in a record (IHL is always normalised to 5). */
export const RECORD_IP_BYTES = 20;
/** Bytes reserved for the TCP header in a record: 20 + up to 24 bytes of options. */
export const RECORD_TCP_BYTES = 44;
/** Most TCP option bytes a record carries. */
export const RECORD_MAX_TCP_OPTIONS = 24;
/** A record without payload: 20-byte IPv4 header + 44 bytes of TCP header. */
export const RECORD_BYTES = 64;
/**
 * Most payload bytes a "with payload" record carries (the original's MAX_PAYLOAD_LEN): a reply
 * whose whole payload is 1..128 bytes has it copied right after its TCP header (record offset
 * 20 + doff*4); a longer one carries none.
 */
export const RECORD_MAX_PAYLOAD = 128;
/** A "with payload" record (the original intercept built `--with-resp-payload`): RECORD_BYTES + RECORD_MAX_PAYLOAD. */
export const RECORD_PAYLOAD_BYTES = 192;

/** Size of a frame's record-count prefix. */
export const FRAME_COUNT_BYTES = 2;
/** Most records in one frame for 64-byte records. */
export const FRAME_MAX_RECORDS = 16;
/** Most records in one frame for 192-byte records. */
export const FRAME_MAX_RECORDS_PAYLOAD = 6;

/** The record variants: 64 bytes (headers only) or 192 bytes (headers + payload). */
export type RecordBytes = 64 | 192;

/** Record sizes a frame may carry: the 1.x variants and the 88-byte channel v2 record (v2.ts). */
export type FrameRecordBytes = RecordBytes | 88;

/** Most records one frame may hold for a record variant (16, or 6 for 192-byte records). */
export function maxRecordsPerFrame(recordBytes: FrameRecordBytes): number {
  return recordBytes === RECORD_PAYLOAD_BYTES ? FRAME_MAX_RECORDS_PAYLOAD : FRAME_MAX_RECORDS;
}
