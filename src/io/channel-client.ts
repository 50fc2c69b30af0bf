/**
 * tcpcopy's side of the channel: one or more TCP connections to every intercept. Sends the
 * version hello, CLIENT_ADD / CLIENT_DEL messages, and decodes the reply-record frames that
 * come back, handing each record to `onRecord` (parse it with parseIpv4Tcp(buf, off, len,
 * seg, true)). Reconnects with capped exponential backoff when `reconnect` (-L).
 */
import * as net from 'node:net';
import { randomBytes } from 'node:crypto';
import { TcpcopyError } from '../core/errors';
import { CHANNEL_VERSION_V2, V2_NONCE_BYTES, V2_RECORD_BYTES, V2ClientHandshake, v2ToV1 } from '../channel/v2';
import { encodeClientMsg, encodeHello } from '../channel/client-msg';
import { FrameDecoder } from '../channel/frame';
import { CLIENT_MSG_BYTES, MSG_CLIENT_ADD, MSG_CLIENT_DEL, type RecordBytes } from '../channel/constants';

/** Default connections per intercept (the original's `-C` default). */
export const DEFAULT_CHANNEL_CONNECTIONS = 2;
/** Most connections per intercept (the original's `-C` maximum). */
export const MAX_CHANNEL_CONNECTIONS = 11;
/** Size of each connection's reused read buffer, bytes. */
const READ_BUFFER_BYTES = 64 << 10;

/** Options of a ChannelClient. */
export interface ChannelClientOptions {
  /** intercept addresses, from `-s ip[:port],...` (port defaults to `-p`, 36524). */
  servers: readonly { host: string; port: number }[];
  /** Connections per intercept, `-C`, 1..11; DEFAULT_CHANNEL_CONNECTIONS (2) as in the original. */
  connections: number;
  /**
   * `-L`: reconnect (backoff 100 ms doubling to 5 s) when a connection is lost. Without it a
   * lost connection is logged loudly, `onDown` fires and the connection stays down (the
   * original tcpcopy exits).
   */
  reconnect: boolean;
  /** Record variant: 64 (headers only) or 192 (headers + up to 128 payload bytes). */
  recordBytes: RecordBytes;
  /** Time allowed for each connection attempt in ms; default 3000. */
  connectTimeoutMs?: number;
  /** Most bytes queued per connection while the socket is backed up; beyond, messages are dropped and counted. Default 4 MiB. */
  maxQueuedBytes?: number;
  /**
   * Channel v2 shared secret (`--secret-file`): authenticate both ways after the hello and use
   * 88-byte v2 records (IPv4 ones are handed to onRecord in the 1.x layout). Absent = 1.x channel.
   */
  secret?: Buffer;
  /**
   * Write queued messages by themselves at the end of the current tick (process.nextTick).
   * Default true. The replay runner passes false and calls flush() once per event-loop turn
   * (before it sends the turn's packets), so the messages of a turn leave in one write per
   * connection instead of one per I/O callback.
   */
  autoFlush?: boolean;
  /**
   * With flushUrgent(): longest time a batch holding only CLIENT_DEL messages waits before it is
   * written, ms (coalescing the removals of many short connections into a few writes). Default 10.
   */
  delFlushMs?: number;
}

/** The logger a ChannelClient writes to. */
export interface ChannelLog {
  warn(msg: string): void;
  info(msg: string): void;
}

/** Reported through `onDown` when a connection is lost. */
export interface ChannelDownEvent {
  /** "host:port" of the intercept. */
  server: string;
  /** Why (socket error text, 'closed by intercept', 'protocol error: ...'). */
  reason: string;
  /** True when a reconnect is scheduled (`reconnect` option). */
  willReconnect: boolean;
  /** True when no connection to that intercept is up any more. */
  serverDown: boolean;
}

/** Counters of a ChannelClient. */
export interface ChannelClientStats {
  /** Connections currently up. */
  connected: number;
  /** Successful reconnections after a loss. */
  reconnects: number;
  recordsReceived: number;
  framesReceived: number;
  /** Frames with a record count above the limit (the connection is closed). */
  protocolErrors: number;
  /** Bytes handed to the sockets (hello + messages). */
  bytesSent: number;
  /** Writes that found the socket buffer full (kept queued). */
  backpressured: number;
  /** Connections lost after being up. */
  disconnects: number;
  /** Messages dropped: no connection up to that intercept, or queue over maxQueuedBytes. */
  dropped: number;
  /** Channel v2 records of IPv6 replies (skipped: the engine is IPv4-only) or of an unknown version. */
  recordsSkipped: number;
}

interface Conn {
  server: string;
  host: string;
  port: number;
  sock: net.Socket | null;
  up: boolean;
  backoffMs: number;
  timer: NodeJS.Timeout | null;
  wasUp: boolean;
  /** Messages of this event-loop turn, written in one go by flush(). */
  batch: Buffer;
  batchLen: number;
  /** The batch holds a CLIENT_ADD (flushUrgent writes it now). */
  hasAdd: boolean;
}

/** tcpcopy's channel to its intercepts. */
export class ChannelClient {
  /** Called when a connection is lost (after the log line). */
  onDown: ((ev: ChannelDownEvent) => void) | undefined;
  /**
   * Called after a lost connection is re-established ("host:port"). intercept forgot the
   * routes registered on the lost connection: re-send CLIENT_ADD for live sessions here.
   */
  onReconnect: ((server: string) => void) | undefined;
  private readonly perServer: Conn[][];
  private readonly conns: Conn[] = [];
  private closed = false;
  private flushScheduled = false;
  private readonly st: ChannelClientStats = {
    connected: 0, reconnects: 0, recordsReceived: 0, framesReceived: 0, protocolErrors: 0,
    bytesSent: 0, backpressured: 0, disconnects: 0, dropped: 0, recordsSkipped: 0,
  };
  private readonly v1rec = Buffer.alloc(64);
  private readonly connectTimeoutMs: number;
  private readonly maxQueued: number;
  private readonly autoFlush: boolean;
  private readonly delFlushMs: number;
  private delTimer: NodeJS.Timeout | null = null;
  private readonly delFlush = (): void => { this.delTimer = null; this.flush(); };
  private readonly flushBound = (): void => { this.flushScheduled = false; this.flush(); };

  constructor(
    private readonly opts: ChannelClientOptions,
    private readonly onRecord: (buf: Buffer, off: number, len: number) => void,
    private readonly log: ChannelLog,
  ) {
    if (opts.servers.length === 0) throw new TcpcopyError('ERR_BAD_OPTION', '-s: no intercept address given; fix: -s 198.18.0.2[:36524]');
    if (!Number.isInteger(opts.connections) || opts.connections < 1 || opts.connections > MAX_CHANNEL_CONNECTIONS) {
      throw new TcpcopyError('ERR_BAD_OPTION', `-C ${opts.connections}: expected an integer 1..${MAX_CHANNEL_CONNECTIONS}`, { option: '-C', value: opts.connections });
    }
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 3000;
    this.maxQueued = opts.maxQueuedBytes ?? 4 << 20;
    this.autoFlush = opts.autoFlush ?? true;
    this.delFlushMs = opts.delFlushMs ?? 10;
    this.perServer = opts.servers.map((s) => {
      const list: Conn[] = [];
      for (let i = 0; i < opts.connections; i++) {
        const c: Conn = {
          server: `${s.host}:${s.port}`, host: s.host, port: s.port, sock: null, up: false,
          backoffMs: 100, timer: null, wasUp: false, batch: Buffer.alloc(CLIENT_MSG_BYTES * 64), batchLen: 0, hasAdd: false,
        };
        list.push(c);
        this.conns.push(c);
      }
      return list;
    });
  }

  /** Connects every connection and sends the hello; rejects with ERR_INTERCEPT_UNREACHABLE naming the first address that fails. */
  async connect(): Promise<void> {
    const results = await Promise.allSettled(this.conns.map((c) => this.open(c)));
    const bad = results.findIndex((r) => r.status === 'rejected');
    if (bad >= 0) {
      const c = this.conns[bad] as Conn;
      const r = results[bad] as PromiseRejectedResult;
      await this.close();
      if (r.reason instanceof TcpcopyError) throw r.reason;
      throw new TcpcopyError('ERR_INTERCEPT_UNREACHABLE',
        `-s ${c.server}: cannot reach intercept (${(r.reason as Error).message}); fix: start intercept there (port -p, default 36524) and check routes/firewall`,
        { server: c.server });
    }
  }

  private open(c: Conn): Promise<void> {
    return new Promise((resolve, reject) => {
      // Reads land in one reused buffer per connection (onread): no Buffer, stream push and
      // 'data' event per read. FrameDecoder copies split records, so reusing it is safe.
      const sock = net.connect({
        host: c.host, port: c.port, noDelay: true,
        onread: { buffer: Buffer.allocUnsafe(READ_BUFFER_BYTES), callback: (n: number, b: Uint8Array): boolean => { onData(b as Buffer, n); return true; } },
      });
      c.sock = sock;
      let settled = false;
      let opened = false;
      const to = setTimeout(() => {
        if (settled) return;
        if (auth !== null) { fail(`intercept did not answer the channel v2 hello within ${this.connectTimeoutMs} ms (a 1.x intercept, or one without --secret-file?): give both sides the same --secret-file, or neither`); return; }
        settled = true; sock.destroy(); reject(new Error(`timed out after ${this.connectTimeoutMs} ms`));
      }, this.connectTimeoutMs);
      const secret = this.opts.secret ?? null;
      const dec = secret === null
        ? new FrameDecoder(this.opts.recordBytes, this.onRecord)
        : new FrameDecoder(V2_RECORD_BYTES, (b, o) => {
          if (v2ToV1(b, o, this.v1rec, 0) === 4) this.onRecord(this.v1rec, 0, 64);
          else this.st.recordsSkipped++;
        });
      // channel v2 handshake: bytes from intercept before the frames start
      let auth: V2ClientHandshake | null = null;
      const ready = (): void => {
        settled = true;
        opened = true;
        clearTimeout(to);
        c.up = true;
        c.backoffMs = 100;
        if (c.wasUp) this.st.reconnects++;
        c.wasUp = true;
        this.st.connected++;
        resolve();
      };
      const fail = (msg: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(to);
        sock.destroy();
        reject(new TcpcopyError('ERR_CHANNEL_AUTH', `-s ${c.server}: ${msg}`, { server: c.server }));
      };
      const handshake = (chunk: Buffer): Buffer | null => {
        const step = (auth as V2ClientHandshake).feed(chunk);
        if (step.kind === 'wait') return null;
        if (step.kind === 'fail') { fail(step.message); return null; }
        if (step.kind === 'send') {
          sock.write(step.bytes);
          this.st.bytesSent += step.bytes.length;
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
        this.st.bytesSent += CLIENT_MSG_BYTES;
        if (secret === null) { ready(); return; }
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
        this.st.framesReceived += dec.frames - f0;
        this.st.recordsReceived += dec.records - r0;
        if (v !== 'ok') {
          this.st.protocolErrors++;
          this.lost(c, sock, `protocol error: frame count ${dec.badCount} > ${dec.maxRecords}`);
        }
      };
      sock.on('error', (err) => {
        if (!settled) { settled = true; clearTimeout(to); reject(err); return; }
        if (opened) this.lost(c, sock, err.message);
      });
      sock.on('close', () => {
        if (!settled && auth !== null) { fail('intercept closed the connection during the channel v2 handshake (wrong --secret-file, or an intercept without one)'); return; }
        if (!settled) { settled = true; clearTimeout(to); reject(new Error('closed')); return; }
        if (opened) this.lost(c, sock, sock.bytesRead === 0 ? 'closed by intercept before sending anything (does it require --secret-file?)' : 'closed by intercept');
      });
    });
  }

  private lost(c: Conn, sock: net.Socket, reason: string): void {
    if (c.sock !== sock) return;
    sock.destroy();
    c.sock = null;
    c.batchLen = 0;
    c.hasAdd = false;
    if (c.up) { c.up = false; this.st.connected--; this.st.disconnects++; }
    if (this.closed) return;
    const willReconnect = this.opts.reconnect;
    const serverDown = !this.perServer.some((l) => l[0]?.server === c.server && l.some((x) => x.up));
    this.log.warn(`intercept ${c.server}: connection lost (${reason}); ${willReconnect
      ? `reconnecting in ${c.backoffMs} ms`
      : 'not reconnecting: -L not given, replies from this intercept are no longer received'}`);
    if (willReconnect) this.schedule(c);
    this.onDown?.({ server: c.server, reason, willReconnect, serverDown });
  }

  private schedule(c: Conn): void {
    if (c.timer) return;
    const delay = c.backoffMs;
    c.backoffMs = Math.min(5000, c.backoffMs * 2);
    c.timer = setTimeout(() => {
      c.timer = null;
      if (this.closed) return;
      this.open(c).then(
        () => { this.log.info(`intercept ${c.server}: reconnected`); this.onReconnect?.(c.server); },
        () => { if (!this.closed) { c.sock = null; this.schedule(c); } },
      );
    }, delay);
    c.timer.unref?.();
  }

  /** Queues CLIENT_ADD to every intercept (one connection each, chosen by the client port); written at flush(). */
  addClient(clientIp: number, clientPort: number, targetIp: number, targetPort: number): void {
    this.queue(MSG_CLIENT_ADD, clientIp, clientPort, targetIp, targetPort);
  }

  /** Queues CLIENT_DEL to every intercept (see addClient). */
  delClient(clientIp: number, clientPort: number, targetIp: number, targetPort: number): void {
    this.queue(MSG_CLIENT_DEL, clientIp, clientPort, targetIp, targetPort);
  }

  private queue(type: number, cip: number, cport: number, tip: number, tport: number): void {
    const n = this.opts.connections;
    for (const list of this.perServer) {
      let c: Conn | undefined;
      for (let k = 0; k < n; k++) {
        const x = list[(cport + k) % n] as Conn;
        if (x.up) { c = x; break; }
      }
      if (!c || !c.sock || c.sock.writableLength > this.maxQueued) { this.st.dropped++; continue; }
      if (c.batchLen + CLIENT_MSG_BYTES > c.batch.length) this.flushConn(c);
      c.batchLen = encodeClientMsg(c.batch, c.batchLen, type, cip, cport, tip, tport);
      if (type === MSG_CLIENT_ADD) c.hasAdd = true;
    }
    if (!this.flushScheduled && this.autoFlush) { this.flushScheduled = true; process.nextTick(this.flushBound); }
  }

  /**
   * Writes every queued message to its socket now (also done automatically at the end of the
   * current tick). Call it before sending a batch of SYNs so CLIENT_ADD leaves first.
   */
  flush(): void {
    for (const c of this.conns) if (c.batchLen > 0) this.flushConn(c);
  }

  /**
   * Writes now the batches that hold a CLIENT_ADD (with the messages queued before it, order
   * kept): those must reach intercept before the SYN. Batches of CLIENT_DEL only are written
   * within delFlushMs (one timer for all), so removals of many sessions share a write.
   */
  flushUrgent(): void {
    for (const c of this.conns) {
      if (c.batchLen === 0) continue;
      if (c.hasAdd) this.flushConn(c);
      else if (this.delTimer === null && !this.closed) {
        this.delTimer = setTimeout(this.delFlush, this.delFlushMs);
        this.delTimer.unref?.();
      }
    }
  }

  private flushConn(c: Conn): void {
    const sock = c.sock;
    const len = c.batchLen;
    c.batchLen = 0;
    c.hasAdd = false;
    if (!sock || !c.up) { this.st.dropped += len / CLIENT_MSG_BYTES; return; }
    const out = Buffer.allocUnsafe(len);
    c.batch.copy(out, 0, 0, len);
    this.st.bytesSent += len;
    if (!sock.write(out)) this.st.backpressured++;
  }

  /** True when at least one connection to every intercept is up. */
  get up(): boolean {
    return this.perServer.every((l) => l.some((c) => c.up));
  }

  /** A snapshot of the counters. */
  stats(): ChannelClientStats {
    return { ...this.st };
  }

  /** Flushes, then closes every connection and cancels reconnects. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.delTimer !== null) { clearTimeout(this.delTimer); this.delTimer = null; }
    await Promise.all(this.conns.map((c) => new Promise<void>((resolve) => {
      if (c.timer) { clearTimeout(c.timer); c.timer = null; }
      const s = c.sock;
      if (c.up) { c.up = false; this.st.connected--; }
      c.sock = null;
      if (!s || s.destroyed) { resolve(); return; }
      s.once('close', () => resolve());
      s.end();
      setTimeout(() => { s.destroy(); }, 500).unref();
    })));
  }
}
