/**
 * Batched raw IPv4 sending (the native addon's sendmmsg): send() copies each packet into an
 * arena, flush() hands the whole batch to the kernel in one call. RawSender writes complete
 * IPv4 packets through an IPPROTO_RAW socket (IP_HDRINCL; the kernel routes by the destination
 * in each header). BatchSender is the shared arena, also used by FrameSender.
 */
import { TcpcopyError } from '../core/errors';
import type { PacketSender, SenderStats } from './types';
import { loadNative, nativeErrorCode, permissionError, type NativeAddon, type NativeHandle } from './native';

/** Batching options common to the native senders. */
export interface BatchOptions {
  /** Packets per batch; send() flushes automatically when full. Default 512. */
  slots?: number;
  /** Arena bytes (holds one batch); send() flushes automatically when the next packet does not fit. Default 1 MiB. */
  arenaBytes?: number;
  /** Socket send buffer in bytes (SO_SNDBUFFORCE when root, else SO_SNDBUF). Default 4 MiB. */
  sndbufBytes?: number;
}

/** The arena and counters behind the native senders. */
export abstract class BatchSender implements PacketSender {
  protected readonly native: NativeAddon;
  protected readonly handle: NativeHandle;
  protected readonly arena: Buffer;
  protected readonly offsets: Uint32Array;
  protected readonly lengths: Uint32Array;
  /** [sent, failed, retried, last errno]: accumulated by the addon. */
  private readonly result = new Float64Array(4);
  private lastErrno = 0;
  private lastErrorText = '';
  protected count = 0;
  protected used = 0;
  private closed = false;

  /** Opens the native socket (kind 0 raw IPv4, 1 frames); maps EPERM to ERR_NO_RAW_PERMISSION. */
  protected constructor(kind: number, device: string, opts: BatchOptions, what: string) {
    const slots = opts.slots ?? 512;
    const bytes = opts.arenaBytes ?? 1 << 20;
    if (!Number.isInteger(slots) || slots < 1 || slots > 65536) {
      throw new TcpcopyError('ERR_BAD_OPTION', `sender slots must be 1..65536, got ${slots}`, { slots });
    }
    if (!Number.isInteger(bytes) || bytes < 65536 + 14) {
      throw new TcpcopyError('ERR_BAD_OPTION', `sender arena must hold a 64 KiB packet, got ${bytes} bytes`, {
        arenaBytes: bytes,
      });
    }
    this.native = loadNative();
    try {
      this.handle = this.native.sendOpen(kind, device, opts.sndbufBytes ?? 4 << 20);
    } catch (err) {
      const perm = permissionError(err, what);
      if (perm !== err) throw perm;
      const code = nativeErrorCode(err);
      if (code === 'ENODEV') {
        throw new TcpcopyError(
          'ERR_NO_DEVICE',
          `output device ${JSON.stringify(device)} does not exist (see \`ip link\`)`,
          { device },
        );
      }
      throw new TcpcopyError('ERR_SEND_OPEN', `${what}: ${err instanceof Error ? err.message : String(err)}`, {
        device,
        errno: code,
      });
    }
    this.arena = Buffer.allocUnsafeSlow(bytes);
    this.offsets = new Uint32Array(slots);
    this.lengths = new Uint32Array(slots);
  }

  /** Queues one complete IPv4 packet (copied); flushes first when the batch is full. */
  send(buf: Buffer, off: number, len: number): void {
    const at = this.reserve(len);
    buf.copy(this.arena, at, off, off + len);
  }

  /**
   * Makes room for a `len`-byte message and records it as the next slot; returns its arena
   * offset. Flushes first when needed.
   */
  protected reserve(len: number): number {
    if (this.count === this.offsets.length || this.used + len > this.arena.length) this.flush();
    if (len > this.arena.length)
      throw new TcpcopyError('ERR_PACKET_TOO_BIG', `packet of ${len} bytes exceeds the send arena`, { len });
    const at = this.used;
    this.offsets[this.count] = at;
    this.lengths[this.count] = len;
    this.count++;
    this.used = (at + len + 7) & ~7;
    return at;
  }

  /** Sends every queued packet with one sendmmsg batch (retrying briefly on EAGAIN/ENOBUFS). */
  flush(): void {
    if (this.count === 0) return;
    const n = this.count;
    this.count = 0;
    this.used = 0;
    if (this.closed) {
      this.result[1] = (this.result[1] ?? 0) + n;
      return;
    }
    this.native.sendBatch(this.handle, this.arena, this.offsets, this.lengths, n, this.result);
  }

  /** Counters; lastError is the strerror text of the last refused packet. */
  stats(): SenderStats {
    const r = this.result;
    const errno = r[3] ?? 0;
    if (errno !== this.lastErrno) {
      this.lastErrno = errno;
      this.lastErrorText = errno === 0 ? '' : this.native.errnoText(errno);
    }
    return { sent: r[0] ?? 0, failed: r[1] ?? 0, retried: r[2] ?? 0, lastError: this.lastErrorText };
  }

  /** Flushes what is queued and closes the socket. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.native.sendClose(this.handle);
  }
}

/** Options of a RawSender. */
export interface RawSenderOptions extends BatchOptions {
  /** Bind sends to this device (SO_BINDTODEVICE); default: the routing table decides. Mirrors -o for IP-layer output. */
  device?: string;
}

/**
 * Sends complete IPv4 packets (checksums filled by the caller) through a raw IP socket,
 * batched with sendmmsg (packets shorter than an IP header are counted as failed at flush).
 * Throws ERR_NO_RAW_PERMISSION without root/CAP_NET_RAW.
 */
export class RawSender extends BatchSender {
  /** Opens the raw socket now. */
  constructor(opts: RawSenderOptions = {}) {
    super(0, opts.device ?? '', opts, 'sending raw IP packets');
  }
}
