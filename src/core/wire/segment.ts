/**
 * A parsed IPv4 + TCP packet. Parsers fill one reused object in place (no allocation per
 * packet); every number is copied out of the bytes, and `buf`/offsets say where the bytes
 * are for code that needs them (payload copy, forwarding). A segment is only valid until
 * the next parse into the same object.
 */
export interface TcpSegment {
  /** The bytes that hold the packet (a capture block, a file chunk, a channel record). */
  buf: Buffer;
  /** Offset of the IPv4 header in `buf`. */
  ipOff: number;
  /** IPv4 header length in bytes (20..60). */
  ipHdrLen: number;
  /** IPv4 total length field: the packet's length on the wire. */
  ipTotalLen: number;
  /** Bytes of the IP packet actually present in `buf` from `ipOff` (snaplen may cut it). */
  capLen: number;
  /** IPv4 identification field. */
  ipId: number;
  /** IPv4 TTL. */
  ttl: number;
  /** Source IPv4 address as an unsigned 32-bit integer (network order value, e.g. 0xC6120001). */
  srcIp: number;
  /** Destination IPv4 address as an unsigned 32-bit integer. */
  dstIp: number;
  /** Offset of the TCP header in `buf`. */
  tcpOff: number;
  /** TCP header length in bytes including options (20..60). */
  tcpHdrLen: number;
  srcPort: number;
  dstPort: number;
  /** Sequence number (unsigned 32-bit). */
  seq: number;
  /** Acknowledgement number (unsigned 32-bit). */
  ack: number;
  /** TCP flags byte (FIN=0x01 SYN=0x02 RST=0x04 PSH=0x08 ACK=0x10 URG=0x20 ECE=0x40 CWR=0x80). */
  flags: number;
  /** Raw (unscaled) window field. */
  window: number;
  /** Offset of the TCP payload in `buf`. */
  payloadOff: number;
  /** Payload length according to the IP total length (may exceed what is present in `buf`). */
  payloadLen: number;
  /** MSS option value, 0 when absent. */
  mss: number;
  /** Window-scale option shift, -1 when absent. */
  wscale: number;
  /** SACK-permitted option present. */
  sackOk: boolean;
  /** Timestamps option present. */
  hasTs: boolean;
  /** TSval (valid when hasTs). */
  tsVal: number;
  /** TSecr (valid when hasTs). */
  tsEcr: number;
}

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;

/** A fresh segment object to be filled by the parsers and reused. */
export function newSegment(): TcpSegment {
  return {
    buf: Buffer.alloc(0),
    ipOff: 0,
    ipHdrLen: 0,
    ipTotalLen: 0,
    capLen: 0,
    ipId: 0,
    ttl: 0,
    srcIp: 0,
    dstIp: 0,
    tcpOff: 0,
    tcpHdrLen: 0,
    srcPort: 0,
    dstPort: 0,
    seq: 0,
    ack: 0,
    flags: 0,
    window: 0,
    payloadOff: 0,
    payloadLen: 0,
    mss: 0,
    wscale: -1,
    sackOk: false,
    hasTs: false,
    tsVal: 0,
    tsEcr: 0,
  };
}

/** Dotted-quad text of a 32-bit address. */
export function ipToString(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

/** Parse a dotted-quad IPv4 address; returns -1 when it is not one. */
export function parseIpv4(text: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return -1;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255) return -1;
    v = v * 256 + o;
  }
  return v >>> 0;
}
