import { IPV6_BASE, ipv6ToString, parseIpv6 } from './ipv6';

/**
 * A parsed IPv4 or IPv6 + TCP packet. Parsers fill one reused object in place (no allocation per
 * packet); every number is copied out of the bytes, and `buf`/offsets say where the bytes
 * are for code that needs them (payload copy, forwarding). A segment is only valid until
 * the next parse into the same object.
 */
export interface TcpSegment {
  /** The bytes that hold the packet (a capture block, a file chunk, a channel record). */
  buf: Buffer;
  /** Offset of the IP header in `buf`. */
  ipOff: number;
  /** IP header length in bytes: IPv4 20..60; IPv6 40 + extension headers. */
  ipHdrLen: number;
  /** The packet's length on the wire: IPv4 total length; IPv6 40 + payload length. */
  ipTotalLen: number;
  /** Bytes of the IP packet actually present in `buf` from `ipOff` (snaplen may cut it). */
  capLen: number;
  /** IPv4 identification field (0 for IPv6). */
  ipId: number;
  /** IPv4 TTL or IPv6 hop limit. */
  ttl: number;
  /**
   * Source address: IPv4 as an unsigned 32-bit integer (network order value, e.g.
   * 0xC6120001); IPv6 as its id >= 2^32 (ipv6.ts).
   */
  srcIp: number;
  /** Destination address, as srcIp. */
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

/** Text of an address: dotted quad for IPv4, RFC 5952 for an IPv6 id. */
export function ipToString(ip: number): string {
  if (ip >= IPV6_BASE) return ipv6ToString(ip);
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

/** Parse an IPv4 address (its value) or an IPv6 address (its id, ipv6.ts); -1 when neither. */
export function parseIp(text: string): number {
  const v4 = parseIpv4(text);
  return v4 >= 0 ? v4 : parseIpv6(text);
}

/** `ip:port` text; IPv6 in brackets (`[2001:2::1]:80`). */
export function endpointToString(ip: number, port: number): string {
  return ip >= IPV6_BASE ? `[${ipv6ToString(ip)}]:${port}` : `${ipToString(ip)}:${port}`;
}
