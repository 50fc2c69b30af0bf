/**
 * The I/O-free heart of intercept: tcpcopy connections ("peers") feed it channel bytes,
 * the capture feeds it decoded replies, and it hands back frame bytes per peer through
 * `out`. The channel server and the capture are thin adapters around it (see intercept.ts).
 */
import type { TcpSegment } from '../core/wire/segment';
import { TCP_RST, TCP_SYN, ipToString } from '../core/wire/segment';
import { isIpv6 } from '../core/wire/ipv6';
import { ClientMsgDecoder, FLAGS_STAMP, type ClientMsgVerdict } from '../channel/client-msg';
import { FrameEncoder } from '../channel/frame';
import { writeRecord } from '../channel/record';
import { CHANNEL_VERSION, MSG_CLIENT_ADD, MSG_FLAG_PAYLOAD, type RecordBytes } from '../channel/constants';
import { capBytes, isCapsQuestion, writeCapsRecord } from '../channel/caps';
import {
  CHANNEL_VERSION_V2,
  DEFAULT_PAYLOAD_MAX,
  V2_REC_PAYLOAD,
  V2_REC_TRUNCATED,
  V2_STAMP_BYTES,
  V2_NET_OFF,
  V2_RECORD_BYTES,
  V2_TCP_OFF,
  v1ToV2,
  v2PayloadBytes,
  writeRecordV2,
  writeStamp,
  writeRecordV2Payload,
} from '../channel/v2';
import { RouteTable, clientKey, type RouteOrigin } from './routes';
import { RateLimit, alsoText } from './rate-log';
import { HoldQueue } from './hold';
import type { InterceptStats, Logger, PeerStats } from './types';

/** How many disconnected peers' counters stats() keeps (newest). */
export const PAST_PEERS = 64;

/** Options of the intercept core. */
export interface InterceptCoreOptions {
  /** Record variant: 64, or 192 with `--payload`. Default 64. */
  recordBytes?: RecordBytes;
  /** Idle route expiry in ms (`--route-timeout` seconds * 1000). Default 120000. */
  routeTimeoutMs?: number;
  /** Most routes (CLIENT_ADDs beyond are refused and counted). Default 1,000,000. */
  maxRoutes?: number;
  /**
   * Most routes registered from one address (all its connections together), `--max-routes-per-peer`
   * (no original flag); CLIENT_ADDs beyond are refused, counted and logged. Default 250,000.
   */
  maxRoutesPerPeer?: number;
  /** How long a SYN-ACK/RST without route waits for its CLIENT_ADD, ms. Default 2000. */
  holdMs?: number;
  /** Most replies held at once. Default 1024. */
  maxHeld?: number;
  /** Most unflushed bytes per peer before a forced flush. Default 64 KiB. */
  flushBytes?: number;
  /** Most bytes buffered per peer (beyond, records are dropped and counted). Default 4 MiB. */
  maxPeerBytes?: number;
  /** Unknown-type messages tolerated per connection before it is closed. Default 16. */
  maxBadMessages?: number;
  /**
   * Channel v2: most payload bytes sent per reply to a session that asked for payload
   * (`--payload-max`, bytes, 0..65535); more is cut and flagged truncated. Default 1024.
   */
  payloadMax?: number;
  /**
   * Writes the capture time of the reply being routed (the one reply() was called with) as a
   * v2 stamp (u32 seconds, u32 nanoseconds: writeStamp in src/channel/v2.ts) at `out[off]`, for
   * sessions that asked for stamps (MSG_FLAG_STAMP). The Intercept gives its capture's kernel
   * time stamp; default: the `now` reply() was given.
   */
  stamp?: (out: Buffer, off: number) => void;
}

/**
 * What a route points to: a peer, whether that session asked for payload (channel v2
 * CLIENT_ADD with MSG_FLAG_PAYLOAD) and its cap class (src/channel/caps.ts; 0: --payload-max).
 * Each peer owns one per kind it was asked for, made once.
 */
export class RouteRef {
  /** Mirrors the peer's liveness (the route table drops routes of dead owners). */
  alive = true;
  constructor(
    private readonly owner: () => Peer,
    readonly payload: boolean,
    /** The session's cap class (0: intercept's --payload-max). */
    readonly capClass = 0,
    /** The session asked for capture time stamps with its records (MSG_FLAG_STAMP). */
    readonly stamp = false,
  ) {}

  /** The connection that owns the route. */
  get peer(): Peer {
    return this.owner();
  }

  /** The peer's origin: route ownership and the per-address quota go by it. */
  get origin(): RouteOrigin {
    return this.peer.origin;
  }
}

/** One connected tcpcopy as the core sees it. */
export interface Peer {
  /** "ip:port" of the tcpcopy. */
  readonly label: string;
  /** False once removed. */
  alive: boolean;
  /** Counters of this peer. */
  readonly stats: PeerStats;
  /** True for an authenticated channel v2 peer (88-byte records). */
  readonly v2: boolean;
  /** The address it connects from, shared by all its connections (route ownership and quota). */
  readonly origin: RouteOrigin;
  /** @internal */ readonly enc: FrameEncoder;
  /** @internal */ readonly dec: ClientMsgDecoder;
  /** @internal route owner for headers-only sessions */ readonly ref: RouteRef;
  /** @internal route owner for sessions that asked for payload (v2) */ readonly payRef: RouteRef;
  /**
   * @internal route owners for sessions that asked for their own cap, by cap class, and (at
   * 128 + cap class) for sessions that also asked for stamps (made on first use)
   */
  readonly capRefs: (RouteRef | undefined)[];
}

/** Routes replies to the tcpcopy connections that registered their clients. */
export class InterceptCore {
  readonly recordBytes: RecordBytes;
  private readonly routes: RouteTable<RouteRef>;
  private readonly payloadMax: number;
  private readonly stamp: (out: Buffer, off: number) => void;
  private readonly hold: HoldQueue;
  private readonly peers = new Set<Peer>();
  /** Origins by address, with how many live peers each has. */
  private readonly origins = new Map<string, RouteOrigin & { peers: number }>();
  private readonly refusedLog = new RateLimit();
  /** Counters of the last PAST_PEERS peers that disconnected (newest last). */
  private readonly pastPeers: PeerStats[] = [];
  private readonly dirty: Peer[] = [];
  private readonly flushBytes: number;
  private readonly maxPeerBytes: number;
  private readonly maxBad: number;
  private lastSweep = 0;
  /** Time of the chunk being decoded (clientBytes), for the message handlers. */
  private now = 0;
  /** The `now` of the reply being routed (the default stamp). */
  private replyNow = 0;
  private readonly st = {
    captured: 0,
    undecodable: 0,
    routed: 0,
    noRoute: 0,
    held: 0,
    heldDelivered: 0,
    heldExpired: 0,
    holdFull: 0,
    routesAdded: 0,
    routesUpdated: 0,
    routesDeleted: 0,
    routesRefused: 0,
    routesRefusedQuota: 0,
    routesRefusedOwned: 0,
    framesSent: 0,
    recordsSent: 0,
    bytesSent: 0,
    recordsDropped: 0,
    peersTotal: 0,
    badHello: 0,
    badMessages: 0,
    badPeers: 0,
    authOk: 0,
    authRefused: 0,
    notAllowed: 0,
    fdExhausted: 0,
    payloadRoutes: 0,
    payloadBytesSent: 0,
    payloadTruncated: 0,
    capsAnswered: 0,
    stampRoutes: 0,
    stampsSent: 0,
  };

  /**
   * @param out receives the bytes to write to a peer (a fresh Buffer the callee may keep);
   *   returns false when it dropped them (socket backed up beyond its cap)
   * @param log for rare events (hello version mismatch, peers refused)
   */
  constructor(
    opts: InterceptCoreOptions,
    private readonly out: (peer: Peer, bytes: Buffer) => boolean,
    private readonly log: Logger,
  ) {
    this.recordBytes = opts.recordBytes ?? 64;
    this.payloadMax = opts.payloadMax ?? DEFAULT_PAYLOAD_MAX;
    this.stamp =
      opts.stamp ??
      ((out, off) => writeStamp(out, off, Math.floor(this.replyNow / 1000), (this.replyNow % 1000) * 1e6));
    this.routes = new RouteTable<RouteRef>(
      opts.routeTimeoutMs ?? 120_000,
      opts.maxRoutes ?? 1_000_000,
      2000,
      opts.maxRoutesPerPeer ?? 250_000,
    );
    // slots fit a 1.x record (IPv4) or a v2 record (IPv6 replies, which only v2 peers register)
    this.hold = new HoldQueue(Math.max(this.recordBytes, V2_RECORD_BYTES), opts.maxHeld ?? 1024, opts.holdMs ?? 2000);
    this.flushBytes = opts.flushBytes ?? 64 << 10;
    this.maxPeerBytes = opts.maxPeerBytes ?? 4 << 20;
    this.maxBad = opts.maxBadMessages ?? 16;
  }

  /** Counts a channel v2 handshake: 'ok' (authenticated) or 'refused' (wrong/missing secret, v1 hello to a v2 intercept). */
  authResult(ok: boolean): void {
    if (ok) this.st.authOk++;
    else this.st.authRefused++;
  }

  /** Counts a connection closed before its hello because its first bytes were not a hello (garbage). */
  garbage(): void {
    this.st.badHello++;
  }

  /** Counts a channel connection closed at once because its address is not in `--allow`. */
  notAllowed(): void {
    this.st.notAllowed++;
  }

  /** Counts a channel connection lost to file-descriptor exhaustion (EMFILE/ENFILE, or the fd budget). */
  fdExhausted(): void {
    this.st.fdExhausted++;
  }

  /**
   * A new tcpcopy connection; `v2` for an authenticated channel v2 peer (88-byte records);
   * `addr` is the address it connects from (default: the label), which owns its routes.
   */
  addPeer(label: string, v2 = false, addr = label): Peer {
    const stats: PeerStats = {
      peer: label,
      clientAdds: 0,
      clientDels: 0,
      routesRefused: 0,
      records: 0,
      frames: 0,
      bytes: 0,
      dropped: 0,
    };
    let origin = this.origins.get(addr);
    if (!origin) {
      origin = { addr, routes: 0, peers: 0 };
      this.origins.set(addr, origin);
    }
    origin.peers++;
    const enc = new FrameEncoder(v2 ? V2_RECORD_BYTES : this.recordBytes, this.maxPeerBytes);
    // eslint-disable-next-line prefer-const -- the decoder callbacks below close over peer before it is built
    let peer: Peer | undefined;
    const dec = new ClientMsgDecoder(
      {
        hello: (version) => {
          if (version !== CHANNEL_VERSION && !(v2 && version === CHANNEL_VERSION_V2))
            this.log.warn(`tcpcopy ${label}: protocol version ${version}, expected ${CHANNEL_VERSION}; continuing`);
          else this.log.info(`tcpcopy ${label}: connected`);
        },
        client: (type, cIp, cPort, tIp, tPort, flags) =>
          this.clientMsg(peer as Peer, type, cIp, cPort, tIp, tPort, flags, this.now),
        bad: (type) => {
          this.st.badMessages++;
          this.log.debug(`tcpcopy ${label}: unknown message type ${type}`);
        },
      },
      this.maxBad,
      v2,
    );
    const p: Peer = {
      label,
      alive: true,
      stats,
      v2,
      origin,
      enc,
      dec,
      ref: new RouteRef(() => p, false),
      payRef: new RouteRef(() => p, true),
      capRefs: [],
    };
    peer = p;
    this.peers.add(p);
    this.st.peersTotal++;
    return p;
  }

  /** The connection is gone: its routes die with it (lazily). */
  removePeer(peer: Peer): void {
    if (!peer.alive) return;
    peer.alive = false;
    peer.ref.alive = false;
    peer.payRef.alive = false;
    for (const r of peer.capRefs) if (r !== undefined) r.alive = false;
    this.peers.delete(peer);
    const o = this.origins.get(peer.origin.addr);
    if (o) o.peers--;
    this.pastPeers.push(peer.stats);
    if (this.pastPeers.length > PAST_PEERS) this.pastPeers.shift();
  }

  /** Bytes from a peer. A verdict other than 'ok' means: close that connection. */
  clientBytes(peer: Peer, buf: Buffer, now: number): ClientMsgVerdict {
    this.now = now;
    const v = peer.dec.feed(buf, 0, buf.length);
    if (v === 'bad-hello') {
      this.st.badHello++;
      this.log.warn(
        `tcpcopy ${peer.label}: first message is not a hello (old tcpcopy or not a tcpcopy); connection closed`,
      );
    } else if (v === 'too-many-bad') {
      this.st.badPeers++;
      this.log.warn(`tcpcopy ${peer.label}: too many bad messages; connection closed`);
    }
    if (v !== 'ok') this.removePeer(peer);
    this.flushIfDirty();
    return v;
  }

  private clientMsg(
    peer: Peer,
    type: number,
    cIp: number,
    cPort: number,
    tIp: number,
    tPort: number,
    flags: number,
    now: number,
  ): void {
    if (type === MSG_CLIENT_ADD) {
      peer.stats.clientAdds++;
      const ref =
        (flags & (MSG_FLAG_PAYLOAD >> 8)) !== 0
          ? InterceptCore.payloadRef(peer, (flags >> 1) & 0x7f, (flags & FLAGS_STAMP) !== 0)
          : peer.ref;
      const r = this.routes.add(cIp, cPort, tIp, tPort, ref, now);
      if (r === 'added') this.st.routesAdded++;
      else if (r === 'updated') this.st.routesUpdated++;
      else {
        this.refused(peer, r, cIp, cPort, tIp, tPort, now);
        return;
      }
      if (ref.payload) this.st.payloadRoutes++;
      if (ref.stamp) this.st.stampRoutes++;
      if (this.hold.size > 0) {
        const n = this.hold.release(clientKey(cIp, cPort), (b, off) => this.enqueueCopy(ref, b, off));
        this.st.heldDelivered += n;
      }
    } else if (peer.v2 && isCapsQuestion(type, cIp, cPort, tIp, tPort)) {
      this.answerCaps(peer);
    } else {
      peer.stats.clientDels++;
      let gone = this.routes.del(cIp, cPort, tIp, tPort, peer.ref, now);
      gone ||= this.routes.del(cIp, cPort, tIp, tPort, peer.payRef, now);
      for (const r of peer.capRefs)
        if (!gone && r !== undefined) gone = this.routes.del(cIp, cPort, tIp, tPort, r, now);
      if (gone) this.st.routesDeleted++;
    }
  }

  /** The route owner of `peer`'s payload sessions of cap class `c`, with stamps or not (made on first use). */
  private static payloadRef(peer: Peer, c: number, stamp: boolean): RouteRef {
    if (c === 0 && !stamp) return peer.payRef;
    const i = c + (stamp ? 128 : 0);
    let r = peer.capRefs[i];
    if (r === undefined) {
      r = new RouteRef(() => peer, true, c, stamp);
      r.alive = peer.alive;
      peer.capRefs[i] = r;
    }
    return r;
  }

  /** A v2 peer asked whether this intercept understands per-session caps: one answer record (caps.ts). */
  private answerCaps(peer: Peer): void {
    const at = peer.enc.reserve(V2_RECORD_BYTES);
    if (at < 0) return;
    writeCapsRecord(peer.enc.buffer, at, this.payloadMax);
    this.st.capsAnswered++;
    if (peer.enc.pendingRecords === 1) this.dirty.push(peer);
  }

  private refused(
    peer: Peer,
    why: 'refused' | 'quota' | 'owned',
    cIp: number,
    cPort: number,
    tIp: number,
    tPort: number,
    now: number,
  ): void {
    peer.stats.routesRefused++;
    if (why === 'refused') this.st.routesRefused++;
    else if (why === 'quota') this.st.routesRefusedQuota++;
    else this.st.routesRefusedOwned++;
    const n = this.refusedLog.hit(now);
    if (n === 0) return;
    const c = `CLIENT_ADD ${InterceptCore.clientText(cIp, cPort)} -> ${InterceptCore.clientText(tIp, tPort)}`;
    const text =
      why === 'refused'
        ? `route table full (-s ${this.routes.maxRoutes})`
        : why === 'quota'
          ? `${peer.origin.addr} already holds ${peer.origin.routes} routes (--max-routes-per-peer ${this.routes.maxPerOrigin})`
          : 'that client is routed to a live tcpcopy connection from another address (route hijack?)';
    this.log.warn(`tcpcopy ${peer.label}: ${c} refused: ${text}${alsoText(n)}`);
  }

  /** One decoded reply (`seg` filled by decodeFrame); call batchEnd()/flush() after a batch. */
  reply(seg: TcpSegment, now: number): void {
    this.st.captured++;
    this.replyNow = now;
    const ref = this.routes.lookup(seg.dstIp, seg.dstPort, seg.srcIp, seg.srcPort, now);
    if (ref) {
      const peer = ref.peer;
      // v2 sessions that asked: the record, then up to their cap (at most payloadMax) payload bytes
      // (and, when the session asked, intercept's capture time between the record and the payload)
      const n = peer.v2 && ref.payload ? v2PayloadBytes(seg, capBytes(ref.capClass, this.payloadMax)) : -1;
      const stamp = n >= 0 && ref.stamp;
      const at = peer.enc.reserve(n < 0 ? peer.enc.recordBytes : V2_RECORD_BYTES + (stamp ? V2_STAMP_BYTES : 0) + n);
      if (at < 0) {
        peer.stats.dropped++;
        this.st.recordsDropped++;
        return;
      }
      if (n >= 0) {
        writeRecordV2Payload(seg, peer.enc.buffer, at, n, stamp);
        if (stamp) {
          this.stamp(peer.enc.buffer, at + V2_RECORD_BYTES);
          this.st.stampsSent++;
        }
        this.st.payloadBytesSent += n;
        if (n < seg.payloadLen) this.st.payloadTruncated++;
      } else if (peer.v2) writeRecordV2(seg, peer.enc.buffer, at);
      else writeRecord(seg, peer.enc.buffer, at, this.recordBytes);
      this.routed(peer);
      return;
    }
    if ((seg.flags & (TCP_SYN | TCP_RST)) !== 0) {
      const at = this.hold.reserve(seg.dstIp, seg.dstPort, now);
      if (at >= 0) {
        if (isIpv6(seg.dstIp)) writeRecordV2(seg, this.hold.buffer, at);
        else writeRecord(seg, this.hold.buffer, at, this.recordBytes);
        this.st.held++;
        return;
      }
      this.st.holdFull++;
    }
    this.st.noRoute++;
  }

  /** Counts a reply that did not decode as IPv4/TCP or IPv6/TCP. */
  undecodable(): void {
    this.st.undecodable++;
  }

  private enqueueCopy(ref: RouteRef, b: Buffer, off: number): void {
    const peer = ref.peer;
    if (b[off] === 6) {
      // a held IPv6 reply, already a v2 record (only a v2 peer can have registered its client)
      const at = peer.v2 ? peer.enc.reserve() : -1;
      if (at < 0) {
        peer.stats.dropped++;
        this.st.recordsDropped++;
        return;
      }
      b.copy(peer.enc.buffer, at, off, off + V2_RECORD_BYTES);
      if (ref.payload) {
        const pay = b.readUInt16BE(off + V2_NET_OFF + 4) - ((b[off + V2_TCP_OFF + 12] as number) >> 4) * 4;
        peer.enc.buffer[at + 1] = V2_REC_PAYLOAD | (pay > 0 ? V2_REC_TRUNCATED : 0);
        if (pay > 0) this.st.payloadTruncated++;
      }
    } else if (peer.v2) {
      const at = peer.enc.reserve();
      if (at < 0) {
        peer.stats.dropped++;
        this.st.recordsDropped++;
        return;
      }
      v1ToV2(b, off, peer.enc.buffer, at);
      if (ref.payload) {
        // held replies keep headers only: an empty payload, truncated if the reply had some
        const pay = b.readUInt16BE(off + 2) - 20 - ((b[off + 32] as number) >> 4) * 4;
        peer.enc.buffer[at + 1] = V2_REC_PAYLOAD | (pay > 0 ? V2_REC_TRUNCATED : 0);
        if (pay > 0) this.st.payloadTruncated++;
      }
    } else if (!peer.enc.addRecord(b, off)) {
      peer.stats.dropped++;
      this.st.recordsDropped++;
      return;
    }
    this.routed(peer);
  }

  private routed(peer: Peer): void {
    this.st.routed++;
    peer.stats.records++;
    if (peer.enc.pendingRecords === 1) this.dirty.push(peer);
    else if (peer.enc.pendingBytes >= this.flushBytes) this.flushPeer(peer);
  }

  private flushIfDirty(): void {
    if (this.dirty.length > 0) this.flush();
  }

  /** Writes out every pending frame (call at each capture batch end, and within ~5 ms). */
  flush(): void {
    for (let i = 0; i < this.dirty.length; i++) this.flushPeer(this.dirty[i] as Peer);
    this.dirty.length = 0;
  }

  /** True when records wait to be flushed. */
  get pending(): boolean {
    return this.dirty.length > 0;
  }

  private flushPeer(peer: Peer): void {
    const frames = peer.enc.pendingFrames;
    const records = peer.enc.pendingRecords;
    const bytes = peer.enc.take();
    if (!bytes) return;
    // a peer that went away with records still pending: they are dropped, and counted
    if (!peer.alive || !this.out(peer, bytes)) {
      peer.stats.dropped += records;
      this.st.recordsDropped += records;
      return;
    }
    peer.stats.frames += frames;
    peer.stats.bytes += bytes.length;
    this.st.framesSent += frames;
    this.st.recordsSent += records;
    this.st.bytesSent += bytes.length;
  }

  /** Housekeeping: held replies past their time become no-route; idle routes expire (once a second). */
  tick(now: number): void {
    const n = this.hold.expire(now);
    this.st.noRoute += n;
    this.st.heldExpired += n;
    if (now - this.lastSweep >= 1000) {
      this.lastSweep = now;
      this.routes.sweep(now);
      for (const [addr, o] of this.origins) if (o.peers <= 0 && o.routes <= 0) this.origins.delete(addr);
    }
  }

  /** A snapshot of the counters. */
  stats(): InterceptStats {
    const perPeer: PeerStats[] = [];
    for (const p of this.peers) perPeer.push({ ...p.stats });
    return {
      ...this.st,
      routesExpired: this.routes.expired,
      routes: this.routes.size,
      peers: this.peers.size,
      perPeer,
      pastPeers: this.pastPeers.map((p) => ({ ...p })),
    };
  }

  /** Text of a client address for logs. */
  static clientText(ip: number, port: number): string {
    return `${ipToString(ip)}:${port}`;
  }
}
