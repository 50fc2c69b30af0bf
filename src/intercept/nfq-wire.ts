/**
 * nfnetlink_queue messages (NETLINK_NETFILTER, subsystem NFNL_SUBSYS_QUEUE), built and parsed
 * without I/O so they can be tested without a kernel. Layout (linux/netlink.h,
 * linux/netfilter/nfnetlink.h, linux/netfilter/nfnetlink_queue.h):
 *
 *   nlmsghdr  len u32, type u16, flags u16, seq u32, pid u32     (host byte order, 16 bytes)
 *   nfgenmsg  family u8, version u8 (0), res_id u16 (queue, BE)   (4 bytes)
 *   attributes: nla_len u16, nla_type u16 (host order), value padded to 4; nfqueue values are BE.
 */

/** Netlink protocol number of netfilter (socket(AF_NETLINK, SOCK_RAW, 12)). */
export const NETLINK_NETFILTER = 12;
/** nfnetlink subsystem id of the queue. */
export const NFNL_SUBSYS_QUEUE = 3;
/** nfqueue message types (low byte of nlmsg_type). */
export const NFQNL_MSG_PACKET = 0;
export const NFQNL_MSG_VERDICT = 1;
export const NFQNL_MSG_CONFIG = 2;
export const NFQNL_MSG_VERDICT_BATCH = 3;
/** Netlink control message types. */
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
/** nlmsg_flags bits. */
export const NLM_F_REQUEST = 1;
export const NLM_F_ACK = 4;
/** Config commands (NFQA_CFG_CMD). */
export const NFQNL_CFG_CMD_BIND = 1;
export const NFQNL_CFG_CMD_UNBIND = 2;
/** Copy mode: whole packet up to the copy range. */
export const NFQNL_COPY_PACKET = 2;
/** Config attributes. */
export const NFQA_CFG_CMD = 1;
export const NFQA_CFG_PARAMS = 2;
export const NFQA_CFG_QUEUE_MAXLEN = 3;
/** Packet/verdict attributes. */
export const NFQA_PACKET_HDR = 1;
export const NFQA_VERDICT_HDR = 2;
/**
 * struct nfqnl_msg_packet_timestamp (be64 sec, be64 usec): the skb's time stamp, put only when
 * skb->tstamp is set. At the OUTPUT hook (intercept's rule) a locally generated TCP segment
 * carries TCP's earliest departure time there (CLOCK_MONOTONIC, not the wall clock) or nothing,
 * so NfqueueSource takes it only when it is plausible wall-clock time (NFQ_STAMP_WINDOW_MS).
 */
export const NFQA_TIMESTAMP = 4;
export const NFQA_PAYLOAD = 10;
/** Verdicts. */
export const NF_DROP = 0;
export const NF_ACCEPT = 1;

const NLMSG_HDR = 16;
const NFGEN_HDR = 4;
const AF_INET = 2;
const AF_UNSPEC = 0;

const align4 = (n: number): number => (n + 3) & ~3;
const msgType = (t: number): number => (NFNL_SUBSYS_QUEUE << 8) | t;

/** Writes nlmsghdr + nfgenmsg at `off`; returns the offset of the first attribute. Length is patched by {@link endMsg}. */
function beginMsg(
  buf: Buffer,
  off: number,
  type: number,
  flags: number,
  seq: number,
  family: number,
  queue: number,
): number {
  buf.writeUInt32LE(0, off);
  buf.writeUInt16LE(msgType(type), off + 4);
  buf.writeUInt16LE(flags, off + 6);
  buf.writeUInt32LE(seq >>> 0, off + 8);
  buf.writeUInt32LE(0, off + 12);
  buf.writeUInt8(family, off + 16);
  buf.writeUInt8(0, off + 17);
  buf.writeUInt16BE(queue & 0xffff, off + 18);
  return off + NLMSG_HDR + NFGEN_HDR;
}

function endMsg(buf: Buffer, start: number, end: number): number {
  buf.writeUInt32LE(end - start, start);
  return end;
}

/** Writes an attribute header for `len` value bytes at `off`; returns the value offset. */
function attr(buf: Buffer, off: number, type: number, len: number): number {
  buf.writeUInt16LE(4 + len, off);
  buf.writeUInt16LE(type, off + 2);
  buf.fill(0, off + 4, off + 4 + align4(len));
  return off + 4;
}

/**
 * The configuration sequence for queue `queue`: BIND, then PARAMS (copy packet, `copyRange`
 * bytes), then QUEUE_MAXLEN (when `maxLen` > 0). Each asks for an ACK; their seqs are
 * `seq`, `seq+1`, `seq+2`. Returns the bytes of each message (send them one by one).
 */
export function configMessages(queue: number, copyRange: number, maxLen: number, seq: number): Buffer[] {
  const out: Buffer[] = [];
  let b = Buffer.alloc(32);
  let p = beginMsg(b, 0, NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq, AF_UNSPEC, queue);
  let v = attr(b, p, NFQA_CFG_CMD, 4);
  b.writeUInt8(NFQNL_CFG_CMD_BIND, v);
  b.writeUInt16BE(AF_INET, v + 2);
  out.push(b.subarray(0, endMsg(b, 0, v + 4)));
  b = Buffer.alloc(32);
  p = beginMsg(b, 0, NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq + 1, AF_UNSPEC, queue);
  v = attr(b, p, NFQA_CFG_PARAMS, 5);
  b.writeUInt32BE(copyRange >>> 0, v);
  b.writeUInt8(NFQNL_COPY_PACKET, v + 4);
  out.push(b.subarray(0, endMsg(b, 0, v + 8)));
  if (maxLen > 0) {
    b = Buffer.alloc(32);
    p = beginMsg(b, 0, NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, seq + 2, AF_UNSPEC, queue);
    v = attr(b, p, NFQA_CFG_QUEUE_MAXLEN, 4);
    b.writeUInt32BE(maxLen >>> 0, v);
    out.push(b.subarray(0, endMsg(b, 0, v + 4)));
  }
  return out;
}

/** The UNBIND message for queue `queue` (no ACK asked). */
export function unbindMessage(queue: number, seq: number): Buffer {
  const b = Buffer.alloc(32);
  const p = beginMsg(b, 0, NFQNL_MSG_CONFIG, NLM_F_REQUEST, seq, AF_UNSPEC, queue);
  const v = attr(b, p, NFQA_CFG_CMD, 4);
  b.writeUInt8(NFQNL_CFG_CMD_UNBIND, v);
  b.writeUInt16BE(AF_INET, v + 2);
  return b.subarray(0, endMsg(b, 0, v + 4));
}

/** Bytes of one verdict message (see {@link writeVerdict}). */
export const VERDICT_MSG_BYTES = NLMSG_HDR + NFGEN_HDR + 4 + 8;

/**
 * Writes a verdict for packet `id` at `buf[off]` (NFQNL_MSG_VERDICT), or for every queued
 * packet with an id up to `id` when `batch` (NFQNL_MSG_VERDICT_BATCH). Returns the offset after it.
 * Several may be written back to back and sent in one datagram.
 */
export function writeVerdict(
  buf: Buffer,
  off: number,
  queue: number,
  id: number,
  verdict: number,
  batch: boolean,
  seq: number,
): number {
  const p = beginMsg(
    buf,
    off,
    batch ? NFQNL_MSG_VERDICT_BATCH : NFQNL_MSG_VERDICT,
    NLM_F_REQUEST,
    seq,
    AF_UNSPEC,
    queue,
  );
  const v = attr(buf, p, NFQA_VERDICT_HDR, 8);
  buf.writeUInt32BE(verdict >>> 0, v);
  buf.writeUInt32BE(id >>> 0, v + 4);
  return endMsg(buf, off, v + 8);
}

/** One netlink message found by {@link NfqParser.next}. */
export interface NfqMessage {
  /** 'packet' (a queued packet), 'error' (an ACK when errno is 0, else a refused request), 'other'. */
  kind: 'packet' | 'error' | 'other';
  /** Packet id (kind 'packet'). */
  id: number;
  /** Offset and length of the packet's IP header onwards in the datagram (kind 'packet'; len 0 when absent). */
  payloadOff: number;
  payloadLen: number;
  /** Queue number (res_id) of a packet. */
  queue: number;
  /** Positive errno of an NLMSG_ERROR (0 = ACK). */
  errno: number;
  /** Sequence number of the message (for matching ACKs). */
  seq: number;
  /** NFQA_TIMESTAMP in ms since the epoch as the kernel gave it (0: absent). */
  tsMs: number;
}

/**
 * Walks the netlink messages of one datagram; reuses one NfqMessage object (allocation-free).
 * Hostile or truncated bytes end the walk (`next` returns null and `malformed` counts it).
 */
export class NfqParser {
  private buf: Buffer = Buffer.alloc(0);
  private off = 0;
  private end = 0;
  /** Messages that did not parse (truncated lengths), since construction. */
  malformed = 0;
  private readonly m: NfqMessage = {
    kind: 'other',
    id: 0,
    payloadOff: 0,
    payloadLen: 0,
    queue: 0,
    errno: 0,
    seq: 0,
    tsMs: 0,
  };

  /** Starts walking `buf[0 .. len)`. */
  reset(buf: Buffer, len: number): void {
    this.buf = buf;
    this.off = 0;
    this.end = Math.min(len, buf.length);
  }

  /** The next message, or null at the end. The returned object is reused. */
  next(): NfqMessage | null {
    const b = this.buf;
    if (this.end - this.off < NLMSG_HDR) return null;
    const start = this.off;
    const len = b.readUInt32LE(start);
    if (len < NLMSG_HDR || start + len > this.end) {
      this.malformed++;
      this.off = this.end;
      return null;
    }
    this.off = start + align4(len);
    const type = b.readUInt16LE(start + 4);
    const m = this.m;
    m.seq = b.readUInt32LE(start + 8);
    m.id = 0;
    m.payloadOff = 0;
    m.payloadLen = 0;
    m.errno = 0;
    m.queue = 0;
    m.tsMs = 0;
    if (type === NLMSG_ERROR) {
      m.kind = 'error';
      if (len >= NLMSG_HDR + 4) m.errno = -b.readInt32LE(start + NLMSG_HDR);
      if (len >= NLMSG_HDR + 4 + NLMSG_HDR) m.seq = b.readUInt32LE(start + NLMSG_HDR + 4 + 8);
      return m;
    }
    if (type !== msgType(NFQNL_MSG_PACKET) || len < NLMSG_HDR + NFGEN_HDR) {
      m.kind = 'other';
      return m;
    }
    m.kind = 'packet';
    m.queue = b.readUInt16BE(start + 18);
    let sawHdr = false;
    let a = start + NLMSG_HDR + NFGEN_HDR;
    const mend = start + len;
    while (mend - a >= 4) {
      const alen = b.readUInt16LE(a);
      const atype = b.readUInt16LE(a + 2) & 0x3fff;
      if (alen < 4 || a + alen > mend) {
        this.malformed++;
        break;
      }
      if (atype === NFQA_PACKET_HDR && alen >= 4 + 7) {
        m.id = b.readUInt32BE(a + 4);
        sawHdr = true;
      } else if (atype === NFQA_TIMESTAMP && alen >= 4 + 16) {
        // be64 halves read as two u32 (no BigInt per packet); seconds fit 2^53 ms for ages
        const sec = b.readUInt32BE(a + 4) * 4294967296 + b.readUInt32BE(a + 8);
        const usec = b.readUInt32BE(a + 12) * 4294967296 + b.readUInt32BE(a + 16);
        m.tsMs = sec * 1000 + usec / 1000;
      } else if (atype === NFQA_PAYLOAD) {
        m.payloadOff = a + 4;
        m.payloadLen = alen - 4;
      }
      a += align4(alen);
    }
    if (!sawHdr) {
      this.malformed++;
      m.kind = 'other';
    }
    return m;
  }
}

/** One queue's line of /proc/net/netfilter/nfnetlink_queue (the kernel's own counters). */
export interface NfqProcStats {
  /** Packets waiting in the queue now (queue_total). */
  waiting: number;
  /** Packets the kernel dropped because the queue was full (queue_dropped; see -q). */
  queueDropped: number;
  /** Packets the kernel could not hand to us because our socket buffer was full (user_dropped). */
  userDropped: number;
  /** The last packet id the kernel gave out on this queue (id_sequence): packets queued since it was bound. */
  idSequence: number;
}

/**
 * Packets missing between the last packet id seen (`last`, 0 before the first) and the next
 * one (`id`). The kernel numbers the packets of a queue 1, 2, 3 ... in the order it hands them
 * to the socket, and a packet it numbered but could not deliver (socket buffer full) leaves a
 * gap: this counts them from our side, whatever the proc file says. u32 wrap-safe; an id at
 * or before `last` (not expected) counts nothing.
 */
export function nfqIdGap(last: number, id: number): number {
  if (last === 0) return 0;
  const d = (id - last) >>> 0;
  return d === 0 || d >= 0x80000000 ? 0 : d - 1;
}

/**
 * The counters of queue `queue` in the text of /proc/net/netfilter/nfnetlink_queue
 * ("queue portid total copy_mode copy_range queue_dropped user_dropped id_sequence 1" per
 * line); null when that queue has no line (not bound in this network namespace).
 */
export function parseNfqProc(text: string, queue: number): NfqProcStats | null {
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 7 || Number(f[0]) !== queue) continue;
    const n = f.slice(0, 8).map(Number);
    if (n.some((x) => !Number.isFinite(x))) return null;
    return {
      waiting: n[2] as number,
      queueDropped: n[5] as number,
      userDropped: n[6] as number,
      idSequence: n[7] ?? 0,
    };
  }
  return null;
}
