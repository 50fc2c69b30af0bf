/**
 * The agent stream (tcpcopy agent -> replayer, doc/protocol.md "Agent stream"): a 32-byte
 * hello, the optional channel v2 handshake, then frames of a 16-byte header and a body.
 * PACKETS bodies are chains of TPACKET_V3 entries exactly as the kernel's capture ring lays
 * them out (tpacket3_hdr, then the frame at tp_mac), so the agent sends whole ring blocks with
 * no per-packet work. Pure: encoders and views, no I/O.
 *
 *   hello   0 "TCAG" | 4 u8 version 1 | 5 u8 flags | 6 u8 body byte order (1 LE, 2 BE) | 7 0
 *           8 u32 agent id | 12 u16 shard index | 14 u16 shard count | 16 name[16] (NUL padded)
 *   frame   0 u8 type | 1 u8 flags 0 | 2 u16 link type | 4 u32 body bytes | 8 u32 packets | 12 u32 seq
 *   (every field of our own is big-endian; the tpacket3_hdr fields of a PACKETS body are in the
 *   agent's byte order, which the hello announces)
 */

/** Magic of the agent hello. */
export const AGENT_MAGIC = Buffer.from('TCAG');
/** Version of the agent stream. */
export const AGENT_VERSION = 1;
/** Size of the hello. */
export const AGENT_HELLO_BYTES = 32;
/** Hello flag: a channel v2 handshake (shared secret) follows the hello. */
export const HELLO_AUTH = 0x01;
/** Hello flag: a query (tcpcopy doctor): the replayer answers one INFO frame and closes. */
export const HELLO_QUERY = 0x02;
/** Body byte order in the hello: little-endian. */
export const ORDER_LE = 1;
/** Body byte order in the hello: big-endian. */
export const ORDER_BE = 2;
/** Bytes of the agent's name in the hello. */
export const AGENT_NAME_BYTES = 16;

/** Size of a frame header. */
export const FRAME_HEADER_BYTES = 16;
/** Frame type: captured packets (a TPACKET_V3 entry chain). */
export const FRAME_PACKETS = 1;
/** Frame type: the agent's clock and the drops since its previous STATUS. */
export const FRAME_STATUS = 2;
/** Frame type (replayer -> doctor): the replayer's state as JSON. */
export const FRAME_INFO = 3;
/** Largest frame body accepted (the native forwarder's largest block). */
export const MAX_FRAME_BODY = 64 << 20;
/** Size of a STATUS body: 8 big-endian float64 values. */
export const STATUS_BODY_BYTES = 64;

// tpacket3_hdr (linux/if_packet.h) offsets.
/** u32 tp_next_offset: distance to the next entry, 0 for the last. */
export const TP_NEXT = 0;
/** u32 tp_sec. */
export const TP_SEC = 4;
/** u32 tp_nsec. */
export const TP_NSEC = 8;
/** u32 tp_snaplen: bytes captured. */
export const TP_SNAPLEN = 12;
/** u32 tp_len: bytes on the wire. */
export const TP_LEN = 16;
/** u16 tp_mac: offset of the frame from the entry. */
export const TP_MAC = 24;
/** Smallest entry header read. */
export const TP_HDR_BYTES = 32;

/** What a hello says. */
export interface AgentHello {
  /** Stream version (1). */
  version: number;
  /** HELLO_AUTH / HELLO_QUERY bits. */
  flags: number;
  /** True when PACKETS bodies are little-endian. */
  littleEndian: boolean;
  /** The agent's random id (one per agent process; its reconnections keep it). */
  agentId: number;
  /** Which of the agent's destinations this connection is (0-based). */
  shard: number;
  /** How many destinations the agent has. */
  shards: number;
  /** The agent's host name (at most 16 bytes). */
  name: string;
}

/** Encodes a hello. */
export function encodeHello(h: Omit<AgentHello, 'version'>): Buffer {
  const b = Buffer.alloc(AGENT_HELLO_BYTES);
  AGENT_MAGIC.copy(b, 0);
  b[4] = AGENT_VERSION;
  b[5] = h.flags;
  b[6] = h.littleEndian ? ORDER_LE : ORDER_BE;
  b.writeUInt32BE(h.agentId >>> 0, 8);
  b.writeUInt16BE(h.shard, 12);
  b.writeUInt16BE(h.shards, 14);
  const name = Buffer.from(h.name, 'utf8').subarray(0, AGENT_NAME_BYTES);
  name.copy(b, 16);
  return b;
}

/** Decodes a hello at `b[off]` (32 bytes present); a reason string when it is not one. */
export function decodeHello(b: Buffer, off: number): AgentHello | string {
  if (b.compare(AGENT_MAGIC, 0, 4, off, off + 4) !== 0) return 'not an agent hello';
  const version = b[off + 4] as number;
  if (version !== AGENT_VERSION) return `agent stream version ${version} (this replayer speaks ${AGENT_VERSION})`;
  const order = b[off + 6];
  if (order !== ORDER_LE && order !== ORDER_BE) return `unknown body byte order ${order}`;
  const nameBytes = b.subarray(off + 16, off + 32);
  const nul = nameBytes.indexOf(0);
  return {
    version,
    flags: b[off + 5] as number,
    littleEndian: order === ORDER_LE,
    agentId: b.readUInt32BE(off + 8),
    shard: b.readUInt16BE(off + 12),
    shards: b.readUInt16BE(off + 14),
    name: nameBytes.subarray(0, nul < 0 ? AGENT_NAME_BYTES : nul).toString('utf8'),
  };
}

/** Writes a frame header at `b[off]`. */
export function writeFrameHeader(
  b: Buffer,
  off: number,
  type: number,
  linkType: number,
  bodyLen: number,
  count: number,
  seq: number,
): void {
  b[off] = type;
  b[off + 1] = 0;
  b.writeUInt16BE(linkType, off + 2);
  b.writeUInt32BE(bodyLen, off + 4);
  b.writeUInt32BE(count >>> 0, off + 8);
  b.writeUInt32BE(seq >>> 0, off + 12);
}

/** The agent's STATUS: its clock and what it lost since the previous STATUS it sent. */
export interface AgentStatus {
  /** The agent's wall clock, ms since the epoch (clock skew = replayer's now - this). */
  nowMs: number;
  /** Frames (ring blocks or their shard) dropped since the previous STATUS. */
  droppedFrames: number;
  /** Packets in them. */
  droppedPackets: number;
  /** Of those, TCP segments with payload (each taken as one request lost: `agentDropped`). */
  droppedData: number;
  /** Packets the kernel dropped from the agent's ring (ring full) since the previous STATUS. */
  kernelDropped: number;
  /** Packets the agent sent to this replayer since it started (all connections). */
  sentPackets: number;
}

const STATUS_FIELDS = [
  'nowMs',
  'droppedFrames',
  'droppedPackets',
  'droppedData',
  'kernelDropped',
  'sentPackets',
] as const;

/** A whole STATUS frame (header + body). */
export function encodeStatus(s: AgentStatus, seq: number): Buffer {
  const b = Buffer.alloc(FRAME_HEADER_BYTES + STATUS_BODY_BYTES);
  writeFrameHeader(b, 0, FRAME_STATUS, 0, STATUS_BODY_BYTES, 0, seq);
  STATUS_FIELDS.forEach((k, i) => b.writeDoubleBE(s[k], FRAME_HEADER_BYTES + i * 8));
  return b;
}

/** Decodes a STATUS body at `b[off]` (STATUS_BODY_BYTES present). */
export function decodeStatus(b: Buffer, off: number): AgentStatus {
  const v = (i: number): number => {
    const x = b.readDoubleBE(off + i * 8);
    return Number.isFinite(x) && x >= 0 ? x : 0;
  };
  return {
    nowMs: v(0),
    droppedFrames: v(1),
    droppedPackets: v(2),
    droppedData: v(3),
    kernelDropped: v(4),
    sentPackets: v(5),
  };
}

/** A whole INFO frame carrying `json`. */
export function encodeInfo(json: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(json), 'utf8');
  const b = Buffer.alloc(FRAME_HEADER_BYTES + body.length);
  writeFrameHeader(b, 0, FRAME_INFO, 0, body.length, 0, 0);
  body.copy(b, FRAME_HEADER_BYTES);
  return b;
}

/** Receives the packets of a PACKETS body. */
export interface ChainReceiver {
  /** One frame: `buf[off .. off+capLen)` at link layer `linkType`, captured at `tsMs`. */
  packet(linkType: number, buf: Buffer, off: number, capLen: number, origLen: number, tsMs: number): void;
}

/**
 * Walks the TPACKET_V3 entry chain of a PACKETS body `b[off .. off+len)` holding `count`
 * entries and hands each frame to `rx`. Never throws on hostile bytes: an entry that does not
 * fit ends the walk. Returns the packets delivered (fewer than `count` = damaged).
 */
export function walkChain(
  b: Buffer,
  off: number,
  len: number,
  count: number,
  linkType: number,
  le: boolean,
  rx: ChainReceiver,
): number {
  const end = off + len;
  let p = off;
  let n = 0;
  while (n < count && p + TP_HDR_BYTES <= end) {
    const next = le ? b.readUInt32LE(p + TP_NEXT) : b.readUInt32BE(p + TP_NEXT);
    const sec = le ? b.readUInt32LE(p + TP_SEC) : b.readUInt32BE(p + TP_SEC);
    const nsec = le ? b.readUInt32LE(p + TP_NSEC) : b.readUInt32BE(p + TP_NSEC);
    const cap = le ? b.readUInt32LE(p + TP_SNAPLEN) : b.readUInt32BE(p + TP_SNAPLEN);
    const orig = le ? b.readUInt32LE(p + TP_LEN) : b.readUInt32BE(p + TP_LEN);
    const mac = le ? b.readUInt16LE(p + TP_MAC) : b.readUInt16BE(p + TP_MAC);
    if (mac < TP_HDR_BYTES || p + mac + cap > end) break;
    rx.packet(linkType, b, p + mac, cap, orig, sec * 1000 + nsec / 1e6);
    n++;
    if (next === 0) break;
    p += next;
  }
  return n;
}

/**
 * Builds a PACKETS body from frames, laid out as the ring would (entries 16-byte aligned,
 * frame at offset 80): for tests, the fuzz builder and the doctor's probe.
 */
export function buildChain(frames: ReadonlyArray<{ data: Buffer; tsMs: number }>, le = true): Buffer {
  const MAC = 80;
  const sizes = frames.map((f) => (MAC + f.data.length + 15) & ~15);
  const b = Buffer.alloc(sizes.reduce((a, s) => a + s, 0));
  let p = 0;
  frames.forEach((f, i) => {
    const size = sizes[i] as number;
    const w32 = (v: number, o: number): number =>
      le ? b.writeUInt32LE(v >>> 0, p + o) : b.writeUInt32BE(v >>> 0, p + o);
    w32(i === frames.length - 1 ? 0 : size, TP_NEXT);
    w32(Math.floor(f.tsMs / 1000), TP_SEC);
    w32(Math.round((f.tsMs % 1000) * 1e6), TP_NSEC);
    w32(f.data.length, TP_SNAPLEN);
    w32(f.data.length, TP_LEN);
    if (le) b.writeUInt16LE(MAC, p + TP_MAC);
    else b.writeUInt16BE(MAC, p + TP_MAC);
    f.data.copy(b, p + MAC);
    p += size;
  });
  return b;
}
