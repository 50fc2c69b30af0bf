/**
 * In-process stand-ins for the network, shared by the engine, offline and memory benchmarks
 * (bench/sim.ts re-exports them) and the runner's simulated-network tests (test/sim/network.ts):
 * - {@link SimTarget}: the target server plus intercept. It receives the engine's packets
 *   (EngineOutput), answers at once (SYN -> SYN-ACK, request -> ACK + response of `respLen`
 *   bytes, FIN -> FIN-ACK) and queues each answer as intercept would report it: the IPv4 and
 *   TCP headers only, the payload length in the IP total length. `drain()` feeds the queue to
 *   the engine (outside the engine's own call, as the runner does); `takeReplies()` hands it
 *   to a simulated network instead. Like a real TCP, it answers a retransmission (a lost
 *   answer) by sending again what the engine has not acknowledged, and a segment beyond a gap
 *   with a duplicate ACK, so it also serves for replays over a lossy network.
 * - {@link writeClientPacket} / {@link writeServerPacket}: the captured packets of a synthetic
 *   keep-alive HTTP connection (SYN, handshake ACK, N requests, FIN), written into a caller's
 *   buffer without allocation.
 * Addresses are in 198.18.0.0/15 although nothing is sent anywhere.
 */
import type { ReplayEngine, EngineOutput } from '../../src/core/engine';
import { w16, w32 } from '../../src/core/wire/build';
import { parseIpv4Tcp, parseIpv6Tcp } from '../../src/core/wire/decode';
import {
  internIpv6Memo,
  internIpv6Words,
  IPV6_BASE,
  newIpv6Memo,
  parseIpv6,
  writeIpv6,
} from '../../src/core/wire/ipv6';
import { newSegment, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from '../../src/core/wire/segment';

/** Online server address of the synthetic captures (198.18.0.1) and its port. */
export const ONLINE_IP = 0xc6120001;
const ONLINE_IPV4 = ONLINE_IP;
export const ONLINE_PORT = 80;
/** Target address (198.18.0.2) and port. */
export const TARGET_IP = 0xc6120002;
export const TARGET_PORT = 8080;

/** The IPv6 online server (2001:2::1) and target (2001:2::2) of `ipv6` shapes. */
export const ONLINE_IP6 = parseIpv6('2001:2::1');
export const TARGET_IP6 = parseIpv6('2001:2::2');

const clients6: number[] = [];

/**
 * Client address and port of synthetic session `i` (198.19.x.y, ports 10000..11023; with
 * `ipv6`, 2001:2:0:13::x:y).
 */
export function clientOf(i: number, ipv6 = false): { ip: number; port: number } {
  if (!ipv6) return { ip: (0xc6130000 + (i >>> 10)) >>> 0, port: 10000 + (i & 1023) };
  const hi = i >>> 10;
  let ip = clients6[hi];
  if (ip === undefined) clients6[hi] = ip = internIpv6Words(0x20010002, 0x00000013, 0, hi);
  return { ip, port: 10000 + (i & 1023) };
}

function r32(b: Buffer, i: number): number {
  return (
    (((b[i] as number) << 24) | ((b[i + 1] as number) << 16) | ((b[i + 2] as number) << 8) | (b[i + 3] as number)) >>> 0
  );
}

/**
 * Writes an IPv4+TCP header (20 + 20 bytes, +8 on SYNs: MSS 1460, NOP, WS 7) at `off`, with
 * the IP total length claiming `payloadLen` payload bytes (which the caller writes or not).
 * Checksums are left 0: neither the decoder nor the engine checks them. Returns the header length.
 */
export function writeHeader(
  b: Buffer,
  off: number,
  src: number,
  dst: number,
  sport: number,
  dport: number,
  seq: number,
  ack: number,
  flags: number,
  payloadLen: number,
): number {
  const syn = (flags & TCP_SYN) !== 0;
  const tcpLen = syn ? 28 : 20;
  if (src >= IPV6_BASE) {
    b[off] = 0x60;
    b[off + 1] = 0;
    b[off + 2] = 0;
    b[off + 3] = 0;
    w16(b, off + 4, tcpLen + payloadLen);
    b[off + 6] = 6;
    b[off + 7] = 64;
    writeIpv6(src, b, off + 8);
    writeIpv6(dst, b, off + 24);
    return 40 + writeTcpHeader(b, off + 40, sport, dport, seq, ack, flags, tcpLen);
  }
  b[off] = 0x45;
  b[off + 1] = 0;
  w16(b, off + 2, 20 + tcpLen + payloadLen);
  b[off + 4] = 0;
  b[off + 5] = 0;
  b[off + 6] = 0x40;
  b[off + 7] = 0;
  b[off + 8] = 64;
  b[off + 9] = 6;
  b[off + 10] = 0;
  b[off + 11] = 0;
  w32(b, off + 12, src);
  w32(b, off + 16, dst);
  return 20 + writeTcpHeader(b, off + 20, sport, dport, seq, ack, flags, tcpLen);
}

function writeTcpHeader(
  b: Buffer,
  t: number,
  sport: number,
  dport: number,
  seq: number,
  ack: number,
  flags: number,
  tcpLen: number,
): number {
  const syn = (flags & TCP_SYN) !== 0;
  w16(b, t, sport);
  w16(b, t + 2, dport);
  w32(b, t + 4, seq >>> 0);
  w32(b, t + 8, ack >>> 0);
  b[t + 12] = (tcpLen / 4) << 4;
  b[t + 13] = flags;
  w16(b, t + 14, 65535);
  b[t + 16] = 0;
  b[t + 17] = 0;
  b[t + 18] = 0;
  b[t + 19] = 0;
  if (syn) {
    b[t + 20] = 2;
    b[t + 21] = 4;
    w16(b, t + 22, 1460);
    b[t + 24] = 1;
    b[t + 25] = 3;
    b[t + 26] = 3;
    b[t + 27] = 7;
  }
  return tcpLen;
}

/** Shape of a synthetic connection: request and response sizes. */
export interface SynthShape {
  /** Requests per connection. */
  requests: number;
  /** Request size, bytes. */
  reqLen: number;
  /** Response size, bytes (the online server's, as the captured acks say; the simulator answers as much). */
  respLen: number;
  /** IPv6 connections (2001:2::/48) instead of IPv4; default false. */
  ipv6?: boolean;
}

const CLIENT_ISN = 1_000_000;
const SERVER_ISN = 5_000_000;

/** Captured client packets per connection: SYN, handshake ACK, the requests, FIN. */
export function clientSteps(sh: SynthShape): number {
  return sh.requests + 3;
}

/**
 * Writes the `step`-th captured client->server packet of session `i` (IPv4 at `off`, payload
 * filled with 'G') and returns its length. Steps: 0 SYN, 1 ACK, 2..requests+1 requests, then FIN.
 */
export function writeClientPacket(b: Buffer, off: number, i: number, step: number, sh: SynthShape): number {
  const c = clientOf(i, sh.ipv6 === true);
  const ONLINE_IP = sh.ipv6 === true ? ONLINE_IP6 : ONLINE_IPV4;
  const isn = CLIENT_ISN + i;
  if (step === 0) return writeHeader(b, off, c.ip, ONLINE_IP, c.port, ONLINE_PORT, isn, 0, TCP_SYN, 0);
  if (step === 1) return writeHeader(b, off, c.ip, ONLINE_IP, c.port, ONLINE_PORT, isn + 1, SERVER_ISN + 1, TCP_ACK, 0);
  const k = step - 2;
  const seq = isn + 1 + k * sh.reqLen;
  const ack = SERVER_ISN + 1 + k * sh.respLen;
  if (k < sh.requests) {
    const h = writeHeader(b, off, c.ip, ONLINE_IP, c.port, ONLINE_PORT, seq, ack, TCP_ACK | TCP_PSH, sh.reqLen);
    b.fill(0x47, off + h, off + h + sh.reqLen);
    return h + sh.reqLen;
  }
  return writeHeader(b, off, c.ip, ONLINE_IP, c.port, ONLINE_PORT, seq, ack, TCP_ACK | TCP_FIN, 0);
}

/**
 * The online server's packet that follows client step `step` in a capture (both directions
 * are captured on a real NIC): SYN-ACK after the SYN, the response after each request, FIN-ACK
 * after the FIN; returns 0 when there is none (after the handshake ACK).
 */
export function writeServerPacket(b: Buffer, off: number, i: number, step: number, sh: SynthShape): number {
  const c = clientOf(i, sh.ipv6 === true);
  const ONLINE_IP = sh.ipv6 === true ? ONLINE_IP6 : ONLINE_IPV4;
  const isn = CLIENT_ISN + i;
  if (step === 0)
    return writeHeader(b, off, ONLINE_IP, c.ip, ONLINE_PORT, c.port, SERVER_ISN, isn + 1, TCP_SYN | TCP_ACK, 0);
  if (step === 1) return 0;
  const k = step - 2;
  const seq = SERVER_ISN + 1 + k * sh.respLen;
  const ack = isn + 1 + (k + 1) * sh.reqLen;
  if (k < sh.requests) {
    const h = writeHeader(b, off, ONLINE_IP, c.ip, ONLINE_PORT, c.port, seq, ack, TCP_ACK | TCP_PSH, sh.respLen);
    b.fill(0x52, off + h, off + h + sh.respLen);
    return h + sh.respLen;
  }
  return writeHeader(
    b,
    off,
    ONLINE_IP,
    c.ip,
    ONLINE_PORT,
    c.port,
    seq,
    isn + 1 + sh.requests * sh.reqLen + 1,
    TCP_ACK | TCP_FIN,
    0,
  );
}

/** State the simulated target keeps per connection. */
interface SimConn {
  /** Target's initial sequence number (its SYN). */
  isn: number;
  /** Oldest target sequence number the engine has not acknowledged. */
  sndUna: number;
  /** Target's next sequence number. */
  sndNxt: number;
  /** Next client sequence number expected. */
  rcvNxt: number;
  /** The target sent its FIN (the last sequence number before sndNxt). */
  finSent: boolean;
}

/** a < b in sequence space (mod 2^32). */
function before(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

const REC = 64;
/** Room per queued IPv6 answer (40-byte header + TCP header): the length handed on is 88, as a v2 record's headers. */
const REC6 = 88;

/**
 * The target server and intercept in one object (see the file comment). `answer = false`
 * makes it a black hole (nothing is ever answered).
 */
export class SimTarget implements EngineOutput {
  /** Packets the engine sent. */
  packetsIn = 0;
  /** Reply records fed to the engine. */
  repliesOut = 0;
  /** Connections the engine registered (CLIENT_ADD) and removed. */
  added = 0;
  removed = 0;
  /** Data segments received in order (each request byte range once). */
  segmentsInOrder = 0;
  /** Segments that repeated data already received (the engine retransmitted). */
  segmentsRepeated = 0;
  /** Answers sent again because the engine retransmitted (a lost answer). */
  answersResent = 0;
  /** When set (a test's choice): the payload bytes received in order, per client `ip:port` key (ip * 65536 + port). */
  received: Map<number, Buffer[]> | null = null;
  private readonly conns = new Map<number, SimConn>();
  private q: Buffer;
  private qHead = 0;
  private qTail = 0;
  private readonly seg = newSegment();
  /** The client addresses of the engine's IPv6 packets, as a decoder remembers them (the IPv4 path reads 4 bytes). */
  private readonly srcMemo = newIpv6Memo();
  private isn = 7_000_000;

  constructor(
    readonly respLen: number,
    readonly answer = true,
    slots = 1 << 16,
  ) {
    this.q = Buffer.alloc(slots * REC);
  }

  /** EngineOutput: a packet for the target. */
  packet(buf: Buffer, off: number): void {
    this.packetsIn++;
    if (!this.answer) return;
    const v6 = (buf[off] as number) >>> 4 === 6;
    const ihl = v6 ? 40 : ((buf[off] as number) & 15) * 4;
    const total = v6
      ? 40 + (((buf[off + 4] as number) << 8) | (buf[off + 5] as number))
      : ((buf[off + 2] as number) << 8) | (buf[off + 3] as number);
    const t = off + ihl;
    const src = v6 ? internIpv6Memo(buf, off + 8, this.srcMemo) : r32(buf, off + 12);
    const sport = ((buf[t] as number) << 8) | (buf[t + 1] as number);
    const seq = r32(buf, t + 4);
    const flags = buf[t + 13] as number;
    const doff = ((buf[t + 12] as number) >>> 4) * 4;
    const len = total - ihl - doff;
    const k = src * 65536 + sport;
    if ((flags & TCP_RST) !== 0) {
      this.conns.delete(k);
      return;
    }
    if ((flags & TCP_SYN) !== 0) {
      let c = this.conns.get(k);
      if (c !== undefined && c.sndUna === c.isn && c.rcvNxt === (seq + 1) >>> 0) {
        // the same SYN again (our SYN-ACK was lost): the same SYN-ACK again
        this.answersResent++;
        this.reply(src, sport, c.isn, c.rcvNxt, TCP_SYN | TCP_ACK, 0);
        return;
      }
      const isn = (this.isn = (this.isn + 7919) >>> 0);
      if (c === undefined) {
        c = { isn, sndUna: isn, sndNxt: 0, rcvNxt: 0, finSent: false };
        this.conns.set(k, c);
      }
      c.isn = isn;
      c.sndUna = isn;
      c.finSent = false;
      c.sndNxt = (isn + 1) >>> 0;
      c.rcvNxt = (seq + 1) >>> 0;
      this.reply(src, sport, isn, c.rcvNxt, TCP_SYN | TCP_ACK, 0);
      return;
    }
    const c = this.conns.get(k);
    if (c === undefined) return;
    if ((flags & TCP_ACK) !== 0) {
      const ack = r32(buf, t + 8);
      if (before(c.sndUna, ack) && !before(c.sndNxt, ack)) c.sndUna = ack;
    }
    const fin = (flags & TCP_FIN) !== 0;
    if (len > 0 && seq === c.rcvNxt) {
      this.segmentsInOrder++;
      if (this.received !== null) {
        const list = this.received.get(k) ?? [];
        list.push(Buffer.from(buf.subarray(t + doff, t + doff + len)));
        this.received.set(k, list);
      }
      c.rcvNxt = (seq + len) >>> 0;
      if (fin) c.rcvNxt = (c.rcvNxt + 1) >>> 0;
      this.reply(src, sport, c.sndNxt, c.rcvNxt, TCP_ACK | TCP_PSH | (fin ? TCP_FIN : 0), this.respLen);
      c.sndNxt = (c.sndNxt + this.respLen + (fin ? 1 : 0)) >>> 0;
      if (fin) c.finSent = true;
    } else if (fin && len === 0 && seq === c.rcvNxt) {
      c.rcvNxt = (seq + 1) >>> 0;
      this.reply(src, sport, c.sndNxt, c.rcvNxt, TCP_ACK | TCP_FIN, 0);
      c.sndNxt = (c.sndNxt + 1) >>> 0;
      c.finSent = true;
    } else if ((len > 0 || fin) && before(seq, c.rcvNxt)) {
      // a retransmission: our answer was lost; send again what is not acknowledged
      this.segmentsRepeated++;
      this.resend(src, sport, c);
    } else if (len > 0 || fin) {
      // beyond a gap: a duplicate ACK for what is missing
      this.reply(src, sport, c.sndNxt, c.rcvNxt, TCP_ACK, 0);
    }
  }

  /** Sends again everything of `c` the engine has not acknowledged (one segment), or an ACK. */
  private resend(dstIp: number, dstPort: number, c: SimConn): void {
    this.answersResent++;
    if (c.sndUna === c.isn) {
      this.reply(dstIp, dstPort, c.isn, c.rcvNxt, TCP_SYN | TCP_ACK, 0);
      return;
    }
    const unacked = (c.sndNxt - c.sndUna) >>> 0;
    const payload = c.finSent ? unacked - 1 : unacked;
    const flags = TCP_ACK | (payload > 0 ? TCP_PSH : 0) | (c.finSent && unacked > 0 ? TCP_FIN : 0);
    this.reply(dstIp, dstPort, c.sndUna, c.rcvNxt, flags, Math.max(0, payload));
  }

  /** EngineOutput: CLIENT_ADD. */
  clientAdded(): void {
    this.added++;
  }

  /** EngineOutput: CLIENT_DEL. */
  clientRemoved(): void {
    this.removed++;
  }

  private reply(dstIp: number, dstPort: number, seq: number, ack: number, flags: number, payloadLen: number): void {
    const slots = this.q.length / REC;
    if (this.qTail - this.qHead >= slots - 1) {
      // grow (rare: only when one batch produces more answers than the queue holds)
      const nq = Buffer.alloc(this.q.length * 2);
      for (let i = this.qHead; i < this.qTail; i++)
        this.q.copy(nq, (i - this.qHead) * REC, (i % slots) * REC, (i % slots) * REC + REC);
      this.qTail -= this.qHead;
      this.qHead = 0;
      this.q = nq;
    }
    const o = (this.qTail % (this.q.length / REC)) * REC;
    if (dstIp >= IPV6_BASE) {
      // an IPv6 answer takes two slots (its 88 bytes)
      this.qTail++;
      if ((this.qTail % (this.q.length / REC)) * REC !== o + REC) {
        // it would wrap: leave the last slot empty (skipped by drain) and start again at 0
        this.q[o] = 0;
        this.reply(dstIp, dstPort, seq, ack, flags, payloadLen);
        return;
      }
      writeHeader(this.q, o, TARGET_IP6, dstIp, TARGET_PORT, dstPort, seq, ack, flags, payloadLen);
      this.q[o + REC] = 0xff; // the second slot: not a record
      this.qTail++;
      return;
    }
    writeHeader(this.q, o, TARGET_IP, dstIp, TARGET_PORT, dstPort, seq, ack, flags, payloadLen);
    this.qTail++;
  }

  /** Feeds every queued reply (and those they cause) to the engine, then lets it send its ACKs. */
  drain(engine: ReplayEngine, now: number): void {
    const seg = this.seg;
    while (this.qHead < this.qTail) {
      const o = (this.qHead % (this.q.length / REC)) * REC;
      this.qHead++;
      const v = (this.q[o] as number) >>> 4;
      if (v === 6 && parseIpv6Tcp(this.q, o, REC6, seg, true) === 'ok') {
        this.repliesOut++;
        engine.onReply(seg, now);
      } else if (v === 4 && parseIpv4Tcp(this.q, o, REC, seg, true) === 'ok') {
        this.repliesOut++;
        engine.onReply(seg, now);
      }
      if (this.qHead === this.qTail) engine.flush();
    }
    if (this.qHead === this.qTail) {
      this.qHead = 0;
      this.qTail = 0;
    }
  }

  /**
   * Hands every queued answer, as intercept's 64-byte record, to `fn` (a simulated network)
   * instead of an engine; the bytes are valid only during the call.
   */
  takeReplies(fn: (buf: Buffer, off: number, len: number) => void): void {
    while (this.qHead < this.qTail) {
      const o = (this.qHead % (this.q.length / REC)) * REC;
      this.qHead++;
      this.repliesOut++;
      fn(this.q, o, REC);
    }
    this.qHead = 0;
    this.qTail = 0;
  }

  /** Connections the target holds now. */
  get connections(): number {
    return this.conns.size;
  }
}
