/**
 * The edges' interfaces: where packets come from and where they go. The runner wires a
 * PacketSource to the engine and the engine's output to a PacketSender; tests and
 * benchmarks substitute their own implementations.
 */

/** Receives captured packets from a PacketSource, one call per packet, in batches. */
export interface PacketReceiver {
  /**
   * One captured frame. `buf[off .. off+capLen)` holds it, starting at the link layer given
   * by `linkType` (LINKTYPE_* of src/core/wire/link.ts). The bytes are only valid during
   * this call: copy what must outlive it. `tsMs` is the capture time in milliseconds since
   * the Unix epoch (fractional).
   */
  packet(linkType: number, buf: Buffer, off: number, capLen: number, origLen: number, tsMs: number): void;
  /** Called after each batch (ring block, read chunk): the moment to flush sends. */
  batchEnd(nowMs: number): void;
  /**
   * Called after each ring block inside a batch, when the receiver has it: the moment for checks
   * that cannot wait for the batch's end, because a process starved of CPU finds the whole ring
   * ready at once (16 MiB of packets in one batch: measured, tcpcopy's memory governor saw the
   * resident set 2 s and 15 MiB after it passed the budget).
   */
  blockEnd?(): void;
}

/** Counters every packet source keeps. */
export interface SourceStats {
  /** Frames handed to the receiver. */
  received: number;
  /** Frames the kernel or the ring dropped before we could read them (0 when unknown). */
  dropped: number;
}

/** A live packet capture (device, raw socket, NFQUEUE...). */
export interface PacketSource {
  /** Starts delivering packets to `rx`; resolves once capture is running. */
  start(rx: PacketReceiver): Promise<void>;
  /** Stops capture and releases the socket/ring. Idempotent. */
  stop(): Promise<void>;
  stats(): SourceStats;
  /**
   * Optional: writes the capture time of the packet being delivered (only valid inside
   * rx.packet) as u32 seconds + u32 nanoseconds at `out[off .. off+8)` (a channel v2 stamp).
   */
  writeStamp?(out: Buffer, off: number): void;
}

/** Counters every packet sender keeps. */
export interface SenderStats {
  /** Packets handed to the kernel successfully. */
  sent: number;
  /** Packets the kernel refused (errno other than EAGAIN), counted, never silently lost. */
  failed: number;
  /** Sends that had to wait for the socket (EAGAIN/ENOBUFS) and were retried. */
  retried: number;
  /** The last errno text seen on a failed send, '' if none. */
  lastError: string;
}

/** Sends complete IPv4 packets (raw IP, or Ethernet frames built around them). */
export interface PacketSender {
  /**
   * Queues one complete IPv4 packet `buf[off .. off+len)` (checksums already correct).
   * The bytes are copied before return, so the caller may reuse `buf`.
   */
  send(buf: Buffer, off: number, len: number): void;
  /** Hands every queued packet to the kernel (batched, e.g. sendmmsg). */
  flush(): void;
  stats(): SenderStats;
  close(): void;
}

/** A timer armed on a {@link Clock}: opaque, only for clearTimeout. */
export type TimerHandle = object;

/**
 * The runner's time: "now" and the timers that run on it. The real one reads the wall clock
 * and uses Node's timers (SYSTEM_CLOCK, src/run/live-input.ts); tests use a manual clock that
 * only moves when told, so a whole replay runs deterministically without waiting.
 */
export interface Clock {
  /** Milliseconds (fractional) since the Unix epoch: the engine's `now`. */
  now(): number;
  /** Calls `fn` once, `ms` from now; `unref` (default false) lets the process exit meanwhile. */
  setTimeout(fn: () => void, ms: number, unref?: boolean): TimerHandle;
  /** Cancels a timer of this clock (no-op when it fired already). */
  clearTimeout(h: TimerHandle): void;
  /** Calls `fn` after the I/O of this event-loop turn (setImmediate). */
  setImmediate(fn: () => void): void;
}

/** Reported through `onDown` when a channel connection is lost. */
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

/**
 * tcpcopy's channel to intercept as the runner uses it (ChannelClient, or a simulated
 * intercept in tests): route registrations out, reply records in (through the callback the
 * channel was built with).
 */
export interface ReplyChannel {
  /** Called when a connection is lost. */
  onDown: ((ev: ChannelDownEvent) => void) | undefined;
  /** Called after a lost connection is back ("host:port"): register live sessions again. */
  onReconnect: ((server: string) => void) | undefined;
  /** Opens the channel; rejects with a TcpcopyError when an intercept cannot be reached. */
  connect(): Promise<void>;
  /**
   * Queues CLIENT_ADD (the route for replies to the client address); `payload`: the session
   * wants the target's reply payloads (channel v2 payload flag; ignored on a 1.x channel);
   * `payloadMax`: up to this many bytes per reply (src/channel/caps.ts), 0: intercept's --payload-max.
   */
  addClient(
    clientIp: number,
    clientPort: number,
    targetIp: number,
    targetPort: number,
    payload?: boolean,
    payloadMax?: number,
  ): void;
  /** Queues CLIENT_DEL. */
  delClient(clientIp: number, clientPort: number, targetIp: number, targetPort: number): void;
  /** Writes every queued message now. */
  flush(): void;
  /** Writes now the batches that hold a CLIENT_ADD; removals may wait a little (coalesced). */
  flushUrgent(): void;
  /** True when at least one connection to every intercept is up. */
  readonly up: boolean;
  /** A snapshot of the counters (for the report). */
  stats(): ChannelClientStats;
  /** Flushes and closes; cancels reconnects. */
  close(): Promise<void>;
}

/** Counters of a ChannelClient (a simulated channel keeps the same). */
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
  /** Channel v2 records of an unknown IP version (neither 4 nor 6), skipped. */
  recordsSkipped: number;
}

/** Where the runner writes text (the report on stdout, the status line on stderr). */
export interface TextOut {
  write(s: string): unknown;
  /** Terminal width, when a terminal. */
  columns?: number | undefined;
  /** True when a terminal (the status line is drawn only there by default). */
  isTTY?: boolean | undefined;
}
