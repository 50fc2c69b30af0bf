/**
 * tcpcopy's side of the channel: one or more TCP connections to every intercept. Sends the
 * version hello, CLIENT_ADD / CLIENT_DEL messages, and decodes the reply-record frames that
 * come back, handing each record to `onRecord` (parse it with parseIpTcp(buf, off, len,
 * seg, true)). Reconnects with capped exponential backoff when `reconnect` (-L). Each connection
 * (socket, handshake, frame decoding, its batch) is a Conn of channel-conn.ts, which alone
 * changes its state; this class picks connections, decides on reconnects and logs.
 */
import { TcpcopyError } from '../core/errors';
import { isIpv6 } from '../core/wire/ipv6';
import { MSG_CLIENT_ADD, MSG_CLIENT_DEL, MSG_FLAG_PAYLOAD, type RecordBytes } from '../channel/constants';
import type { RecordHandler } from '../channel/payload';
import { Conn, type ConnEnv } from './channel-conn';
import { SYSTEM_CLOCK } from './system-clock';
import type { ChannelClientStats, ChannelDownEvent, Clock, ReplyChannel, TimerHandle } from './types';

export type { ChannelClientStats, ChannelDownEvent } from './types';

/** Default connections per intercept (the original's `-C` default). */
export const DEFAULT_CHANNEL_CONNECTIONS = 2;
/** Most connections per intercept (the original's `-C` maximum). */
export const MAX_CHANNEL_CONNECTIONS = 11;

/** Options of a ChannelClient. */
export interface ChannelClientOptions {
  /** intercept addresses, from `-s ip[:port],...` (port defaults to `-p`, 36524). */
  servers: readonly { host: string; port: number }[];
  /** Connections per intercept, `-C`, 1..11; DEFAULT_CHANNEL_CONNECTIONS (2) as in the original. */
  connections: number;
  /**
   * `-L`: reconnect when a connection is lost, after 100 ms doubling to 5 s on every failure in
   * a row: a failed attempt, or a connection lost within STABLE_MS of coming up (a server that
   * accepts and then fails). Without it a lost connection is logged loudly, `onDown` fires and
   * the connection stays down (the original tcpcopy exits).
   */
  reconnect: boolean;
  /** The clock for reconnect backoff, the connect timeout and the CLIENT_DEL delay; default the system's. */
  clock?: Clock;
  /**
   * Record variant of a 1.x channel: 64 (headers only) or 192 (the original intercept built
   * --with-resp-payload: a reply's whole payload when it is 1..128 bytes).
   */
  recordBytes: RecordBytes;
  /** Time allowed for each connection attempt in ms; default 3000. */
  connectTimeoutMs?: number;
  /** Most bytes queued per connection while the socket is backed up; beyond, messages are dropped and counted. Default 4 MiB. */
  maxQueuedBytes?: number;
  /**
   * Channel v2 shared secret (`--secret-file`): authenticate both ways after the hello and use
   * 88-byte v2 records (IPv4 ones are handed to onRecord in the 1.x layout, IPv6 ones as their
   * 84-byte IPv6 packet); IPv6 sessions register with 46-byte messages. Absent = 1.x channel.
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
   * written, ms (coalescing the removals of many short connections into a few writes; a
   * CLIENT_ADD takes them along at once, in order). Default 200: a late removal costs intercept
   * nothing (routes also expire), while every timer wake-up costs 30-50 µs of CPU on a VM.
   */
  delFlushMs?: number;
  /**
   * Channel v2: the payload bytes per reply that sessions here ask for (`addClient`'s
   * payloadMax); an intercept whose --payload-max is lower is named in a warning. 0 (default): none.
   */
  payloadWanted?: number;
  /**
   * Channel v2: sessions that ask for payload also ask for intercept's capture time stamps
   * (MSG_FLAG_STAMP), where intercept takes them: their ReplyPayload then has `atMs`. Default
   * false (`--compare` sets it: the target's response times).
   */
  stamps?: boolean;
}

/** The logger a ChannelClient writes to. */
export interface ChannelLog {
  warn(msg: string): void;
  info(msg: string): void;
}

/** First reconnect delay, ms; it doubles on each failure in a row. */
export const BACKOFF_INITIAL_MS = 100;
/** Longest reconnect delay, ms. */
export const BACKOFF_MAX_MS = 5000;
/** A connection lost after being up this long (ms) was healthy: the backoff starts over. */
export const STABLE_MS = 10_000;
/** While a connection keeps failing, one summary line at most this often (ms), not a line per attempt. */
export const SUMMARY_MS = 10_000;

/** Reconnect state of one connection (the client's alone). */
interface Redial {
  /** Delay before the next attempt, ms. */
  backoffMs: number;
  /** The pending attempt. */
  timer: TimerHandle | null;
  /** Failures in a row (failed attempts and quick losses) since the connection was last healthy. */
  failures: number;
  /** Failures not yet in a summary line, and the last one's reason. */
  unreported: number;
  lastReason: string;
  /** When the last line about this connection was logged (clock ms). */
  loggedAt: number;
  /** When its last "reconnected" line was logged (clock ms). */
  upLoggedAt: number;
}

/** tcpcopy's channel to its intercepts. */
export class ChannelClient implements ReplyChannel {
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
    connected: 0,
    reconnects: 0,
    recordsReceived: 0,
    framesReceived: 0,
    protocolErrors: 0,
    bytesSent: 0,
    backpressured: 0,
    disconnects: 0,
    dropped: 0,
    recordsSkipped: 0,
  };
  /** What the connections share (see channel-conn.ts). */
  private readonly env: ConnEnv;
  private readonly maxQueued: number;
  private readonly autoFlush: boolean;
  private readonly delFlushMs: number;
  private delTimer: TimerHandle | null = null;
  private readonly clock: Clock;
  private readonly redial = new Map<Conn, Redial>();
  /** Intercepts already warned about a --payload-max below payloadWanted. */
  private readonly capsWarned = new Set<string>();
  private readonly delFlush = (): void => {
    this.delTimer = null;
    this.flush();
  };
  private readonly flushBound = (): void => {
    this.flushScheduled = false;
    this.flush();
  };

  constructor(
    private readonly opts: ChannelClientOptions,
    onRecord: RecordHandler,
    private readonly log: ChannelLog,
  ) {
    if (opts.servers.length === 0)
      throw new TcpcopyError('ERR_BAD_OPTION', '-s: no intercept address given; fix: -s 198.18.0.2[:36524]');
    if (!Number.isInteger(opts.connections) || opts.connections < 1 || opts.connections > MAX_CHANNEL_CONNECTIONS) {
      throw new TcpcopyError(
        'ERR_BAD_OPTION',
        `-C ${opts.connections}: expected an integer 1..${MAX_CHANNEL_CONNECTIONS}`,
        { option: '-C', value: opts.connections },
      );
    }
    this.clock = opts.clock ?? SYSTEM_CLOCK;
    this.env = {
      clock: this.clock,
      connectTimeoutMs: opts.connectTimeoutMs ?? 3000,
      secret: opts.secret ?? null,
      recordBytes: opts.recordBytes,
      onRecord,
      st: this.st,
      v1rec: Buffer.alloc(64),
      lost: (c, reason) => this.lost(c, reason),
      caps: (c, a) => this.capsAnswer(c, a.payloadMax),
      stamps: opts.stamps ?? false,
    };
    this.maxQueued = opts.maxQueuedBytes ?? 4 << 20;
    this.autoFlush = opts.autoFlush ?? true;
    this.delFlushMs = opts.delFlushMs ?? 200;
    this.perServer = opts.servers.map((s) => {
      const list: Conn[] = [];
      for (let i = 0; i < opts.connections; i++) {
        const c = new Conn(s.host, s.port, this.env);
        list.push(c);
        this.conns.push(c);
        this.redial.set(c, {
          backoffMs: BACKOFF_INITIAL_MS,
          timer: null,
          failures: 0,
          unreported: 0,
          lastReason: '',
          loggedAt: -Infinity,
          upLoggedAt: -Infinity,
        });
      }
      return list;
    });
  }

  /** Connects every connection and sends the hello; rejects with ERR_INTERCEPT_UNREACHABLE naming the first address that fails. */
  async connect(): Promise<void> {
    const results = await Promise.allSettled(this.conns.map((c) => c.open()));
    const bad = results.findIndex((r) => r.status === 'rejected');
    if (bad >= 0) {
      const c = this.conns[bad] as Conn;
      const r = results[bad] as PromiseRejectedResult;
      await this.close();
      if (r.reason instanceof TcpcopyError) throw r.reason;
      throw new TcpcopyError(
        'ERR_INTERCEPT_UNREACHABLE',
        `-s ${c.server}: cannot reach intercept (${(r.reason as Error).message}); fix: start intercept there (port -p, default 36524) and check routes/firewall`,
        { server: c.server },
      );
    }
  }

  /**
   * A connection that was up failed (it is down already): reconnects (-L) and tells onDown. The
   * first failure of a series is logged; further ones (the connection keeps failing, or came up
   * and was lost within STABLE_MS) only in a summary line every SUMMARY_MS.
   */
  private lost(c: Conn, reason: string): void {
    if (this.closed) return;
    const r = this.redial.get(c) as Redial;
    const now = this.clock.now();
    if (c.upSince >= 0 && now - c.upSince >= STABLE_MS) {
      // it was healthy: a new series
      r.failures = 0;
      r.backoffMs = BACKOFF_INITIAL_MS;
      r.upLoggedAt = -Infinity;
    }
    r.failures++;
    const willReconnect = this.opts.reconnect;
    const serverDown = !this.perServer.some((l) => l[0]?.server === c.server && l.some((x) => x.up));
    if (r.failures === 1 || !willReconnect) {
      this.log.warn(
        `intercept ${c.server}: connection lost (${reason}); ${
          willReconnect
            ? `reconnecting in ${r.backoffMs} ms`
            : 'not reconnecting: -L not given, replies from this intercept are no longer received'
        }`,
      );
      r.loggedAt = now;
      r.unreported = 0;
    } else this.failedAgain(c, r, `lost after connecting: ${reason}`);
    if (willReconnect) this.schedule(c, r);
    this.onDown?.({ server: c.server, reason, willReconnect, serverDown });
  }

  /** One more failure in a series: counted, and summed up in one line every SUMMARY_MS. */
  private failedAgain(c: Conn, r: Redial, reason: string): void {
    r.unreported++;
    r.lastReason = reason;
    const now = this.clock.now();
    if (now - r.loggedAt < SUMMARY_MS) return;
    this.log.warn(
      `intercept ${c.server}: still failing: ${r.unreported} more failures in the last ${Math.round((now - r.loggedAt) / 1000)} s (${r.failures} in a row; last: ${r.lastReason}); next attempt in ${r.backoffMs} ms`,
    );
    r.loggedAt = now;
    r.unreported = 0;
  }

  /** Reopens `c` after its backoff delay (doubling up to BACKOFF_MAX_MS), again on failure until closed. */
  private schedule(c: Conn, r: Redial): void {
    if (r.timer !== null) return;
    const delay = r.backoffMs;
    r.backoffMs = Math.min(BACKOFF_MAX_MS, delay * 2);
    r.timer = this.clock.setTimeout(
      () => {
        r.timer = null;
        if (this.closed) return;
        c.open().then(
          () => {
            // a connection that keeps failing comes up often: said once per summary period
            const now = this.clock.now();
            if (now - r.upLoggedAt >= SUMMARY_MS) {
              this.log.info(
                `intercept ${c.server}: reconnected${r.failures > 1 ? ` (after ${r.failures} failures in a row)` : ''}`,
              );
              r.upLoggedAt = now;
            }
            this.onReconnect?.(c.server);
          },
          (e: unknown) => {
            if (this.closed) return;
            r.failures++;
            this.failedAgain(c, r, `reconnect failed: ${(e as Error).message}`);
            this.schedule(c, r);
          },
        );
      },
      delay,
      true,
    );
  }

  /** An intercept said it takes per-session caps; a ceiling below what sessions want is worth a warning (once per intercept). */
  private capsAnswer(c: Conn, ceiling: number): void {
    const want = this.opts.payloadWanted ?? 0;
    if (want <= 0 || ceiling >= Math.min(want, 65535) || this.capsWarned.has(c.server)) return;
    this.capsWarned.add(c.server);
    this.log.warn(
      `intercept ${c.server} sends at most ${ceiling} payload bytes per reply (its --payload-max); sessions here ask for ${want}: longer replies arrive cut (start intercept with --payload-max ${Math.min(want, 65535)})`,
    );
  }

  /**
   * Queues CLIENT_ADD to every intercept (one connection each, chosen by the client port);
   * written at flush(). `payload`: on a channel v2, ask for this session's reply payloads
   * (MSG_FLAG_PAYLOAD; they arrive with the records as ReplyPayload). `payloadMax`: ask for
   * up to this many bytes per reply (src/channel/caps.ts: honoured by an intercept that takes
   * per-session caps, up to its --payload-max); 0 (default): intercept's --payload-max. A 1.x
   * channel has no per-session payload: there the record variant (`recordBytes` 192) decides.
   */
  addClient(
    clientIp: number,
    clientPort: number,
    targetIp: number,
    targetPort: number,
    payload = false,
    payloadMax = 0,
  ): void {
    const flag = payload && this.env.secret !== null ? MSG_FLAG_PAYLOAD : 0;
    if (this.refuseIpv6(clientIp, targetIp)) return;
    this.queue(MSG_CLIENT_ADD | flag, clientIp, clientPort, targetIp, targetPort, flag !== 0 ? payloadMax : 0);
  }

  /** Per intercept connection: intercept's --payload-max when it takes per-session caps there, else -1. */
  payloadCeilings(): { server: string; ceiling: number }[] {
    return this.conns.map((c) => ({ server: c.server, ceiling: c.payloadCeiling }));
  }

  /** Queues CLIENT_DEL to every intercept (see addClient). */
  delClient(clientIp: number, clientPort: number, targetIp: number, targetPort: number): void {
    if (this.refuseIpv6(clientIp, targetIp)) return;
    this.queue(MSG_CLIENT_DEL, clientIp, clientPort, targetIp, targetPort);
  }

  /** True when the channel carries IPv6 sessions: channel v2 (46-byte IPv6 messages); a 1.x channel is IPv4-only. */
  get carriesIpv6(): boolean {
    return this.env.secret !== null;
  }

  /**
   * An IPv6 session on a 1.x channel cannot be registered (the 14-byte message holds IPv4
   * addresses): counted as dropped. The runner does not start such sessions (they are lost as
   * 'ipv6Channel1x'), so this only guards the wire.
   */
  private refuseIpv6(clientIp: number, targetIp: number): boolean {
    if (this.env.secret !== null || (!isIpv6(clientIp) && !isIpv6(targetIp))) return false;
    this.st.dropped++;
    return true;
  }

  /** Appends one message to the batch of a connection that is up to every intercept (chosen by the client port). */
  private queue(type: number, cip: number, cport: number, tip: number, tport: number, cap = 0): void {
    const n = this.opts.connections;
    for (const list of this.perServer) {
      let c: Conn | undefined;
      for (let k = 0; k < n; k++) {
        const x = list[(cport + k) % n] as Conn;
        if (x.up) {
          c = x;
          break;
        }
      }
      if (!c || c.backlog > this.maxQueued) {
        this.st.dropped++;
        continue;
      }
      c.queue(type, cip, cport, tip, tport, cap);
    }
    if (!this.flushScheduled && this.autoFlush) {
      this.flushScheduled = true;
      process.nextTick(this.flushBound);
    }
  }

  /**
   * Writes every queued message to its socket now (also done automatically at the end of the
   * current tick). Call it before sending a batch of SYNs so CLIENT_ADD leaves first.
   */
  flush(): void {
    for (const c of this.conns) if (c.pending) c.writeBatch();
  }

  /**
   * Writes now the batches that hold a CLIENT_ADD (with the messages queued before it, order
   * kept): those must reach intercept before the SYN. Batches of CLIENT_DEL only are written
   * within delFlushMs (one timer for all), so removals of many sessions share a write.
   */
  flushUrgent(): void {
    for (const c of this.conns) {
      if (!c.pending) continue;
      if (c.urgent) c.writeBatch();
      else if (this.delTimer === null && !this.closed)
        this.delTimer = this.clock.setTimeout(this.delFlush, this.delFlushMs, true);
    }
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
    if (this.delTimer !== null) {
      this.clock.clearTimeout(this.delTimer);
      this.delTimer = null;
    }
    for (const r of this.redial.values()) {
      if (r.timer !== null) this.clock.clearTimeout(r.timer);
      r.timer = null;
    }
    await Promise.all(this.conns.map((c) => c.close()));
  }
}
