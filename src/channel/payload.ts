/**
 * The reply payload that comes with a record, as tcpcopy's channel client hands it on: from a
 * 1.x "with payload" record (192 bytes, the original's layout) or a channel v2 record of a
 * session that asked for payload (see doc/protocol.md). One reused view per connection.
 */

/** Payload bytes of one reply record: `buf[off .. off+len)`, valid only during the onRecord call. */
export interface ReplyPayload {
  buf: Buffer;
  off: number;
  /** Payload bytes carried (0 when the reply had none, or when none was sent). */
  len: number;
  /**
   * True when the reply carried more payload than was sent: over the cap (v2 `--payload-max`),
   * cut by intercept's snaplen, or (1.x) over 128 bytes, when the original sends none.
   * The full length is still the IP total length minus the headers.
   */
  truncated: boolean;
  /**
   * When the target's reply was captured, in ms of tcpcopy's clock (the engine's `now`):
   * intercept's capture time stamp (channel v2, sessions that asked for stamps) moved to this
   * clock by the connection's offset estimate (src/channel/clock-offset.ts). NaN without a stamp.
   */
  atMs: number;
}

/** A fresh view (one per connection; refilled for every record). */
export function newReplyPayload(): ReplyPayload {
  return { buf: Buffer.alloc(0), off: 0, len: 0, truncated: false, atMs: NaN };
}

/**
 * What tcpcopy's channel client calls for each reply record: IPv4 in the 1.x layout (64 or 192
 * bytes), IPv6 (channel v2) as the record's 84-byte IPv6 packet; parse with parseIpTcp.
 */
export type RecordHandler = (buf: Buffer, off: number, len: number, payload: ReplyPayload | null) => void;
