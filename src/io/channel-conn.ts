/**
 * One TCP connection of the channel to an intercept: opening it (hello, channel v2
 * handshake), decoding the reply-record frames it delivers, and writing its batch of queued
 * messages. ChannelClient (channel-client.ts) owns the connections, picks one per message and
 * handles losses and reconnects.
 */
import * as net from 'node:net';
import { randomBytes } from 'node:crypto';
import { TcpcopyError } from '../core/errors';
import {
  CHANNEL_VERSION_V2,
  V2_NONCE_BYTES,
  V2_REC_PAYLOAD,
  V2_REC_TRUNCATED,
  V2_REC_STAMP,
  V2_STAMP_BYTES,
  readStampMs,
  V2_IPV6_PACKET_BYTES,
  V2_NET_OFF,
  V2_RECORD_BYTES,
  V2ClientHandshake,
  v2TailLength,
  v2ToV1,
} from '../channel/v2';
import { encodeClientAny, encodeHello } from '../channel/client-msg';
import {
  CAPS_SESSION_CAP,
  CAPS_STAMP,
  type CapsAnswer,
  capClass,
  encodeCapsQuestion,
  payloadAddType,
  readCapsRecord,
} from '../channel/caps';
import { FrameDecoder } from '../channel/frame';
import { ClockOffset } from '../channel/clock-offset';
import {
  CLIENT_MSG_BYTES,
  CLIENT_MSG6_BYTES,
  MSG_CLIENT_ADD,
  MSG_FLAG_PAYLOAD,
  MSG_FLAG_STAMP,
  RECORD_PAYLOAD_BYTES,
  type RecordBytes,
} from '../channel/constants';
import { normaliseRecordIp, recordPayloadLen, recordPayloadOff } from '../channel/record';
import { newReplyPayload, type RecordHandler } from '../channel/payload';
import type { ChannelClientStats, Clock } from './types';

/** Size of each connection's reused read buffer, bytes. */
const READ_BUFFER_BYTES = 64 << 10;
/** Fed to the v2 handshake to go on with bytes it already holds. */
const EMPTY = Buffer.alloc(0);

/** What the connections of a ChannelClient share: settings, the record callback, counters. */
export interface ConnEnv {
  /** Time allowed for each connection attempt, ms. */
  readonly connectTimeoutMs: number;
  /** Channel v2 shared secret, null for a 1.x channel. */
  readonly secret: Buffer | null;
  /** Record variant of a 1.x channel: 64 or 192 bytes. */
  readonly recordBytes: RecordBytes;
  /**
   * Gets every reply record (IPv4: the 1.x layout; IPv6, channel v2: the record's 84-byte IPv6
   * packet in place) and, on a channel that carries payload, its payload.
   */
  readonly onRecord: RecordHandler;
  /** The client's counters. */
  readonly st: ChannelClientStats;
  /** Scratch for a v2 record translated to the 1.x layout. */
  readonly v1rec: Buffer;
  /** The runner's clock: `now` (when a connection came up) and the connect timeout. */
  readonly clock: Clock;
  /**
   * An opened connection failed or was closed; it is down already (socket destroyed, batch
   * emptied, counters updated). Not called for a failed open: the promise rejects.
   */
  lost(c: Conn, reason: string): void;
  /** intercept answered the caps question of a v2 connection (src/channel/caps.ts). */
  caps(c: Conn, answer: CapsAnswer): void;
  /**
   * Channel v2: payload CLIENT_ADDs also ask for intercept's capture time stamps
   * (MSG_FLAG_STAMP) on connections whose intercept answered CAPS_STAMP (`--compare`).
   */
  readonly stamps: boolean;
}

/**
 * One connection to an intercept and its batch of queued messages. It alone changes its state
 * (socket, up, batch); ChannelClient picks connections, decides on reconnects and logs.
 */
export class Conn {
  /** "host:port" of the intercept. */
  readonly server: string;
  private sock: net.Socket | null = null;
  private isUp = false;
  /** Has been up once (a later open is a reconnection). */
  private wasUp = false;
  /** When it last came up (the clock's ms), -1 before. */
  private upAt = -1;
  /** Messages of this event-loop turn, written in one go by writeBatch(). */
  private readonly batch = Buffer.alloc(CLIENT_MSG6_BYTES * 64);
  private batchLen = 0;
  /** Messages in the batch (14 or 46 bytes each). */
  private batchMsgs = 0;
  /** The batch holds a CLIENT_ADD (flushUrgent writes it now). */
  private hasAdd = false;
  /**
   * intercept's --payload-max once it said it takes per-session caps on this connection
   * (channel v2, caps.ts); -1 before (and with an intercept that predates them).
   */
  private capCeiling = -1;
  /** intercept said it sends capture time stamps to sessions that ask (CAPS_STAMP). */
  private capStamp = false;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly env: ConnEnv,
  ) {
    this.server = `${host}:${port}`;
  }

  /** Up: opened (hello and handshake done) and not lost since. */
  get up(): boolean {
    return this.isUp;
  }

  /** When it last came up (the clock's ms), -1 if never. */
  get upSince(): number {
    return this.upAt;
  }

  /** Bytes the socket holds unwritten (Infinity when there is no socket). */
  get backlog(): number {
    return this.sock === null ? Infinity : this.sock.writableLength;
  }

  /** Messages are queued. */
  get pending(): boolean {
    return this.batchLen > 0;
  }

  /** The queued messages include a CLIENT_ADD. */
  get urgent(): boolean {
    return this.hasAdd;
  }

  /** intercept's --payload-max when it takes per-session caps on this connection, else -1. */
  get payloadCeiling(): number {
    return this.capCeiling;
  }

  /**
   * Appends one message to the batch (writing the batch first when it is full): 14 bytes, or
   * the 46-byte channel v2 form for IPv6 addresses (the client sends those on v2 only). `cap`: a
   * CLIENT_ADD asking for payload asks for this many bytes per reply (caps.ts) when intercept
   * takes per-session caps on this connection; 0, or an older intercept: its --payload-max.
   */
  queue(type: number, cip: number, cport: number, tip: number, tport: number, cap = 0): void {
    if (type === (MSG_CLIENT_ADD | MSG_FLAG_PAYLOAD)) {
      if (cap > 0 && this.capCeiling >= 0) type = payloadAddType(capClass(cap));
      if (this.capStamp && this.env.stamps) type |= MSG_FLAG_STAMP;
    }
    if (this.batchLen + CLIENT_MSG6_BYTES > this.batch.length) this.writeBatch();
    this.batchLen = encodeClientAny(this.batch, this.batchLen, type, cip, cport, tip, tport);
    this.batchMsgs++;
    // (the low byte's stamp flag is part of a CLIENT_ADD: it must go out at once too)
    if ((type & 0xff & ~MSG_FLAG_STAMP) === MSG_CLIENT_ADD) this.hasAdd = true;
  }

  /** Writes the batch in one write (counted as dropped when not up) and empties it. */
  writeBatch(): void {
    const st = this.env.st;
    const sock = this.sock;
    const len = this.batchLen;
    const msgs = this.batchMsgs;
    this.batchLen = 0;
    this.batchMsgs = 0;
    this.hasAdd = false;
    if (!sock || !this.isUp) {
      st.dropped += msgs;
      return;
    }
    const out = Buffer.allocUnsafe(len);
    this.batch.copy(out, 0, 0, len);
    st.bytesSent += len;
    if (!sock.write(out)) st.backpressured++;
  }

  /** The open socket `sock` failed: down, then the client is told (once per socket). */
  private fail(sock: net.Socket, reason: string): void {
    if (this.sock !== sock) return;
    this.down();
    this.env.lost(this, reason);
  }

  /** Destroys the socket, empties the batch, marks it down (counted when it was up). */
  private down(): void {
    this.sock?.destroy();
    this.sock = null;
    this.batchLen = 0;
    this.batchMsgs = 0;
    this.hasAdd = false;
    if (this.isUp) {
      this.isUp = false;
      this.env.st.connected--;
      this.env.st.disconnects++;
    }
  }

  /** Ends the connection gracefully (queued messages must be written before); resolves once closed. */
  close(): Promise<void> {
    const s = this.sock;
    if (this.isUp) {
      this.isUp = false;
      this.env.st.connected--;
    }
    this.sock = null;
    this.batchLen = 0;
    this.batchMsgs = 0;
    this.hasAdd = false;
    if (!s || s.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      s.once('close', () => resolve());
      s.end();
      setTimeout(() => s.destroy(), 500).unref();
    });
  }

  /** Connects and sends the hello (and runs the v2 handshake); resolves once it is up. */
  open(): Promise<void> {
    const env = this.env;
    return new Promise((resolve, reject) =>
      this.connect(env, resolve, (e) => {
        this.sock = null; // the failed attempt's socket is destroyed
        reject(e);
      }),
    );
  }

  private connect(env: ConnEnv, resolve: () => void, reject: (e: Error) => void): void {
    // Reads land in one reused buffer per connection (onread): no Buffer, stream push and
    // 'data' event per read. FrameDecoder copies split records, so reusing it is safe.
    const sock = net.connect({
      host: this.host,
      port: this.port,
      noDelay: true,
      onread: {
        buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
        callback: (n: number, b: Uint8Array): boolean => {
          onData(b as Buffer, n);
          return true;
        },
      },
    });
    this.sock = sock;
    const st = env.st;
    const server = this.server;
    let settled = false;
    let opened = false;
    /** The v2 challenge came and tcpcopy answered it (for the timeout's message). */
    let challenged = false;
    const to = env.clock.setTimeout(() => {
      if (settled) return;
      if (auth !== null) {
        fail(
          challenged
            ? `intercept sent the channel v2 challenge but no result for tcpcopy's proof within ${env.connectTimeoutMs} ms`
            : `intercept did not answer the channel v2 hello within ${env.connectTimeoutMs} ms (a 1.x intercept, or one without --secret-file?): give both sides the same --secret-file, or neither`,
        );
        return;
      }
      settled = true;
      sock.destroy();
      reject(new Error(`timed out after ${env.connectTimeoutMs} ms`));
    }, env.connectTimeoutMs);
    const secret = env.secret;
    this.capCeiling = -1; // asked again on every connection: the intercept may have changed
    this.capStamp = false;
    const dec =
      secret === null
        ? v1Decoder(env)
        : v2Decoder(env, (a) => {
            if ((a.features & CAPS_SESSION_CAP) === 0) return;
            this.capCeiling = a.payloadMax;
            this.capStamp = (a.features & CAPS_STAMP) !== 0;
            env.caps(this, a);
          });
    // channel v2 handshake: bytes from intercept before the frames start
    let auth: V2ClientHandshake | null = null;
    const ready = (): void => {
      settled = true;
      opened = true;
      env.clock.clearTimeout(to);
      this.isUp = true;
      this.upAt = env.clock.now();
      if (this.wasUp) st.reconnects++;
      this.wasUp = true;
      st.connected++;
      resolve();
    };
    const fail = (msg: string): void => {
      if (settled) return;
      settled = true;
      env.clock.clearTimeout(to);
      sock.destroy();
      reject(new TcpcopyError('ERR_CHANNEL_AUTH', `-s ${server}: ${msg}`, { server }));
    };
    // Runs the handshake on `chunk` as far as it goes: one read can hold the challenge and
    // intercept's result together (the result is then parsed at once, not left to the timeout).
    const handshake = (chunk: Buffer): Buffer | null => {
      let step = (auth as V2ClientHandshake).feed(chunk);
      while (step.kind === 'send') {
        // the response, and with it the caps question (the first message after the handshake)
        const out = Buffer.alloc(step.bytes.length + CLIENT_MSG_BYTES);
        step.bytes.copy(out, 0);
        encodeCapsQuestion(out, step.bytes.length);
        sock.write(out);
        st.bytesSent += out.length;
        challenged = true;
        step = (auth as V2ClientHandshake).feed(EMPTY);
      }
      if (step.kind === 'wait') return null;
      if (step.kind === 'fail') {
        fail(step.message);
        return null;
      }
      auth = null;
      ready();
      return step.rest;
    };
    sock.once('connect', () => {
      if (settled) return;
      sock.setNoDelay(true);
      const hello = Buffer.alloc(CLIENT_MSG_BYTES);
      encodeHello(hello, 0, secret === null ? undefined : CHANNEL_VERSION_V2);
      sock.write(hello);
      st.bytesSent += CLIENT_MSG_BYTES;
      if (secret === null) {
        ready();
        return;
      }
      auth = new V2ClientHandshake(secret, randomBytes(V2_NONCE_BYTES));
    });
    const onData = (data: Buffer, n: number): void => {
      let chunk: Buffer | null = data;
      let len = n;
      if (auth !== null) {
        // the handshake keeps what it is fed: give it a copy of the reused read buffer
        chunk = handshake(Buffer.from(data.subarray(0, n)));
        if (chunk === null || chunk.length === 0) return;
        len = chunk.length;
      }
      const f0 = dec.frames;
      const r0 = dec.records;
      const v = dec.feed(chunk, 0, len);
      st.framesReceived += dec.frames - f0;
      st.recordsReceived += dec.records - r0;
      if (v !== 'ok') {
        st.protocolErrors++;
        this.fail(sock, `protocol error: frame count ${dec.badCount} > ${dec.maxRecords}`);
      }
    };
    sock.on('error', (err) => {
      if (!settled) {
        settled = true;
        env.clock.clearTimeout(to);
        reject(err);
        return;
      }
      if (opened) this.fail(sock, err.message);
    });
    sock.on('close', () => {
      if (!settled && auth !== null) {
        fail(
          'intercept closed the connection during the channel v2 handshake (wrong --secret-file, or an intercept without one)',
        );
        return;
      }
      if (!settled) {
        settled = true;
        env.clock.clearTimeout(to);
        reject(new Error('closed'));
        return;
      }
      if (opened)
        this.fail(
          sock,
          sock.bytesRead === 0
            ? 'closed by intercept before sending anything (does it require --secret-file?)'
            : 'closed by intercept',
        );
    });
  }
}

/**
 * The frame decoder of a 1.x channel. Records from the original intercept keep the reply's IHL
 * (> 5 with IP options) although the TCP header sits at 20: normaliseRecordIp fixes that in
 * place. 192-byte records hand on their payload (the whole payload when 1..128 bytes, none
 * above: then `truncated`).
 */
function v1Decoder(env: ConnEnv): FrameDecoder {
  if (env.recordBytes !== RECORD_PAYLOAD_BYTES)
    return new FrameDecoder(env.recordBytes, (b, o, l) => {
      normaliseRecordIp(b, o);
      env.onRecord(b, o, l, null);
    });
  const pv = newReplyPayload();
  return new FrameDecoder(RECORD_PAYLOAD_BYTES, (b, o, l) => {
    normaliseRecordIp(b, o);
    const n = recordPayloadLen(b, o, l);
    pv.buf = b;
    pv.off = recordPayloadOff(b, o);
    pv.len = n;
    // the reply's payload length per its headers (normalised: IHL 5)
    pv.truncated = n === 0 && b.readUInt16BE(o + 2) - 20 - ((b[o + 32] as number) >> 4) * 4 > 0;
    env.onRecord(b, o, l, pv);
  });
}

/**
 * The frame decoder of a channel v2 connection: IPv4 records go on in the 1.x layout, IPv6
 * records in place as an 84-byte IPv6 packet (fixed header + TCP header, see v2.ts); the
 * payload that follows the record of a session that asked for it goes on as ReplyPayload; the
 * answer to the caps question goes to `onCaps`. Records of another IP version are counted
 * (`recordsSkipped`). A stamped record (V2_REC_STAMP) gives its capture time on tcpcopy's
 * clock as `atMs`, through this connection's offset estimate (clock-offset.ts).
 */
function v2Decoder(env: ConnEnv, onCaps: (a: CapsAnswer) => void): FrameDecoder {
  const pv = newReplyPayload();
  const offset = new ClockOffset();
  return new FrameDecoder(
    V2_RECORD_BYTES,
    (b, o, l) => {
      const v = v2ToV1(b, o, env.v1rec, 0);
      if (v === 0) {
        const caps = readCapsRecord(b, o);
        if (caps !== null) onCaps(caps);
        else env.st.recordsSkipped++;
        return;
      }
      const rb = v === 4 ? env.v1rec : b;
      const ro = v === 4 ? 0 : o + V2_NET_OFF;
      const rl = v === 4 ? 64 : V2_IPV6_PACKET_BYTES;
      const flags = b[o + 1] as number;
      if ((flags & V2_REC_PAYLOAD) === 0) {
        env.onRecord(rb, ro, rl, null);
        return;
      }
      let p = o + V2_RECORD_BYTES;
      pv.atMs = NaN;
      if ((flags & V2_REC_STAMP) !== 0) {
        const at = readStampMs(b, p);
        offset.observe(at, env.clock.now());
        pv.atMs = offset.toLocal(at);
        p += V2_STAMP_BYTES;
      }
      pv.buf = b;
      pv.off = p;
      pv.len = o + l - p;
      pv.truncated = (flags & V2_REC_TRUNCATED) !== 0;
      env.onRecord(rb, ro, rl, pv);
    },
    v2TailLength,
  );
}
