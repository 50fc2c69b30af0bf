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
