/**
 * One TCP connection of the channel to an intercept: opening it (hello, channel v2
 * handshake), decoding the reply-record frames it delivers, and writing its batch of queued
 * messages. ChannelClient (channel-client.ts) owns the connections, picks one per message and
 * handles losses and reconnects.
 */
import * as net from 'node:net';
import { randomBytes } from 'node:crypto';
import { TcpcopyError } from '../core/errors';
import { CHANNEL_VERSION_V2, V2_NONCE_BYTES, V2_RECORD_BYTES, V2ClientHandshake, v2ToV1 } from '../channel/v2';
import { encodeHello } from '../channel/client-msg';
import { FrameDecoder } from '../channel/frame';
import { CLIENT_MSG_BYTES, type RecordBytes } from '../channel/constants';
import type { ChannelClientStats } from './types';

/** Size of each connection's reused read buffer, bytes. */
const READ_BUFFER_BYTES = 64 << 10;
/** Fed to the v2 handshake to go on with bytes it already holds. */
const EMPTY = Buffer.alloc(0);

/** One connection to an intercept and its batch of queued messages. */
export interface Conn {
  /** "host:port" of the intercept. */
  server: string;
  host: string;
  port: number;
  sock: net.Socket | null;
  up: boolean;
  /** Delay before the next reconnect attempt, ms. */
  backoffMs: number;
  /** The pending reconnect attempt. */
  timer: NodeJS.Timeout | null;
  /** Has been up once (a later open is a reconnection). */
  wasUp: boolean;
  /** Messages of this event-loop turn, written in one go by flush(). */
  batch: Buffer;
  batchLen: number;
  /** The batch holds a CLIENT_ADD (flushUrgent writes it now). */
  hasAdd: boolean;
}

/** A new, not yet opened connection to host:port. */
export function newConn(host: string, port: number): Conn {
  return {
    server: `${host}:${port}`,
    host,
    port,
    sock: null,
    up: false,
    backoffMs: 100,
    timer: null,
    wasUp: false,
    batch: Buffer.alloc(CLIENT_MSG_BYTES * 64),
    batchLen: 0,
    hasAdd: false,
  };
}

/** What the connections of a ChannelClient share: settings, the record callback, counters. */
export interface ConnEnv {
  /** Time allowed for each connection attempt, ms. */
  readonly connectTimeoutMs: number;
  /** Channel v2 shared secret, null for a 1.x channel. */
  readonly secret: Buffer | null;
  /** Record variant of a 1.x channel: 64 or 192 bytes. */
  readonly recordBytes: RecordBytes;
  /** Gets every reply record (1.x layout). */
  readonly onRecord: (buf: Buffer, off: number, len: number) => void;
  /** The client's counters. */
  readonly st: ChannelClientStats;
  /** Scratch for a v2 record translated to the 1.x layout. */
  readonly v1rec: Buffer;
  /** An opened connection failed or was closed (not called for a failed open: the promise rejects). */
  lost(c: Conn, sock: net.Socket, reason: string): void;
}

/** Connects `c` and sends the hello (and runs the v2 handshake); resolves once it is up. */
export function openConn(c: Conn, env: ConnEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    // Reads land in one reused buffer per connection (onread): no Buffer, stream push and
    // 'data' event per read. FrameDecoder copies split records, so reusing it is safe.
    const sock = net.connect({
      host: c.host,
      port: c.port,
      noDelay: true,
      onread: {
        buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES),
        callback: (n: number, b: Uint8Array): boolean => {
          onData(b as Buffer, n);
          return true;
        },
      },
    });
    c.sock = sock;
    const st = env.st;
    let settled = false;
    let opened = false;
    /** The v2 challenge came and tcpcopy answered it (for the timeout's message). */
    let challenged = false;
    const to = setTimeout(() => {
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
    const dec =
      secret === null
        ? new FrameDecoder(env.recordBytes, env.onRecord)
        : new FrameDecoder(V2_RECORD_BYTES, (b, o) => {
            if (v2ToV1(b, o, env.v1rec, 0) === 4) env.onRecord(env.v1rec, 0, 64);
            else st.recordsSkipped++;
          });
    // channel v2 handshake: bytes from intercept before the frames start
    let auth: V2ClientHandshake | null = null;
    const ready = (): void => {
      settled = true;
      opened = true;
      clearTimeout(to);
      c.up = true;
      c.backoffMs = 100;
      if (c.wasUp) st.reconnects++;
      c.wasUp = true;
      st.connected++;
      resolve();
    };
    const fail = (msg: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(to);
      sock.destroy();
      reject(new TcpcopyError('ERR_CHANNEL_AUTH', `-s ${c.server}: ${msg}`, { server: c.server }));
    };
    // Runs the handshake on `chunk` as far as it goes: one read can hold the challenge and
    // intercept's result together (the result is then parsed at once, not left to the timeout).
    const handshake = (chunk: Buffer): Buffer | null => {
      let step = (auth as V2ClientHandshake).feed(chunk);
      while (step.kind === 'send') {
        sock.write(step.bytes);
        st.bytesSent += step.bytes.length;
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
        env.lost(c, sock, `protocol error: frame count ${dec.badCount} > ${dec.maxRecords}`);
      }
    };
    sock.on('error', (err) => {
      if (!settled) {
        settled = true;
        clearTimeout(to);
        reject(err);
        return;
      }
      if (opened) env.lost(c, sock, err.message);
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
        clearTimeout(to);
        reject(new Error('closed'));
        return;
      }
      if (opened)
        env.lost(
          c,
          sock,
          sock.bytesRead === 0
            ? 'closed by intercept before sending anything (does it require --secret-file?)'
            : 'closed by intercept',
        );
    });
  });
}

/** Writes the connection's batch in one write (counted as dropped when it is not up) and empties it. */
export function writeBatch(c: Conn, st: ChannelClientStats): void {
  const sock = c.sock;
  const len = c.batchLen;
  c.batchLen = 0;
  c.hasAdd = false;
  if (!sock || !c.up) {
    st.dropped += len / CLIENT_MSG_BYTES;
    return;
  }
  const out = Buffer.allocUnsafe(len);
  c.batch.copy(out, 0, 0, len);
  st.bytesSent += len;
  if (!sock.write(out)) st.backpressured++;
}
