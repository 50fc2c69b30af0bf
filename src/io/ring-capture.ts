/**
 * Live capture through an AF_PACKET TPACKET_V3 ring (the native addon): the kernel fills
 * blocks of packets in shared memory, wakes us once per retired block, and JS walks each
 * block's tpacket3_hdr chain over one external Buffer covering the whole ring: no system call,
 * allocation or event-loop wake-up per packet.
 */
import { TcpcopyError } from '../core/errors';
import type { PacketReceiver, PacketSource, SourceStats } from './types';
import { loadNative, nativeErrorCode, permissionError, type NativeAddon, type NativeRing } from './native';

/** Options of a RingCapture. */
export interface RingCaptureOptions {
  /**
   * Device name, or 'any' for all devices (frames then start at the IP header and are
   * delivered with linkType LINKTYPE_RAW). Devices without an Ethernet header (tun, wireguard)
   * are delivered as LINKTYPE_RAW too. Mirrors the original's -i.
   */
  device: string;
  /** BPF filter expression in tcpdump syntax; '' = everything. Mirrors -F. */
  filter: string;
  /** Bytes kept of each packet (link header included). Default 65535; intercept passes ~128 for headers only. Mirrors -S. */
  snaplen?: number;
  /** Ring size in MiB (rounded down to whole blocks, at least 4 blocks). Default 16. Mirrors -B. */
  bufferMB?: number;
  /** Which packets: 'in' (received; default; tcpcopy never sees what it sends itself), 'out' (sent by this host), 'both'. */
  direction?: 'in' | 'out' | 'both';
  /** Block retire timeout in ms (tp_retire_blk_tov): the longest a captured packet waits in a partly filled block. Default 1. */
  blockTimeoutMs?: number;
  /** Block size in KiB (power of two, >= 4). Default 256. */
  blockKB?: number;
  /**
   * Hand each packet's capture time to rx.packet (`tsMs`); false passes 0. Default true. A
   * receiver that does not read it saves a heap number per packet (a fractional millisecond
   * count is not a small integer, so V8 allocates it to pass it on).
   */
  timestamps?: boolean;
}

/** Counters of a RingCapture. */
export interface RingCaptureStats extends SourceStats {
  /** Blocks walked. */
  blocks: number;
  /** Packets the kernel accepted into the ring (passed the filter), drops included. */
  kernelPackets: number;
  /** Times the kernel found the ring full (tp_freeze_q_cnt). */
  freezes: number;
}

// Offsets inside a tpacket3_hdr (linux/if_packet.h), in bytes.
const H_NEXT = 0;
const H_SEC = 4;
const H_NSEC = 8;
const H_SNAPLEN = 12;
const H_LEN = 16;
const H_MAC = 24; // u16

const DIRECTIONS = { in: 0, out: 1, both: 2 } as const;

/** Validates options into the numbers the addon wants; throws TcpcopyError ERR_BAD_OPTION. */
function geometry(opts: RingCaptureOptions): {
  snaplen: number;
  blockSize: number;
  blockCount: number;
  retire: number;
} {
  const snaplen = opts.snaplen ?? 65535;
  if (!Number.isInteger(snaplen) || snaplen < 64 || snaplen > 262144) {
    throw new TcpcopyError('ERR_BAD_OPTION', `snaplen (-S) must be an integer in 64..262144, got ${snaplen}`, {
      snaplen,
    });
  }
  const mb = opts.bufferMB ?? 16;
  if (!Number.isFinite(mb) || mb <= 0 || mb > 4096) {
    throw new TcpcopyError('ERR_BAD_OPTION', `capture buffer (-B) must be 1..4096 MiB, got ${mb}`, { bufferMB: mb });
  }
  const kb = opts.blockKB ?? 256;
  if (!Number.isInteger(kb) || kb < 4 || (kb & (kb - 1)) !== 0 || kb * 1024 < snaplen + 128) {
    throw new TcpcopyError(
      'ERR_BAD_OPTION',
      `ring block size must be a power of two KiB >= 4 that holds one snaplen packet, got ${kb} KiB`,
      { blockKB: kb },
    );
  }
  const blockSize = kb * 1024;
  const blockCount = Math.max(4, Math.floor((mb * 1048576) / blockSize));
  const retire = opts.blockTimeoutMs ?? 1;
  if (!Number.isInteger(retire) || retire < 1 || retire > 1000) {
    throw new TcpcopyError('ERR_BAD_OPTION', `block timeout must be an integer 1..1000 ms, got ${retire}`, {
      blockTimeoutMs: retire,
    });
  }
  return { snaplen, blockSize, blockCount, retire };
}

/** A TPACKET_V3 ring capture on one device (or 'any'); see RingCaptureOptions. */
export class RingCapture implements PacketSource {
  private readonly opts: RingCaptureOptions;
  private native: NativeAddon | undefined;
  private r: NativeRing | undefined;
  private u32: Uint32Array = new Uint32Array(0);
  private u16: Uint16Array = new Uint16Array(0);
  private rx: PacketReceiver | undefined;
  private received = 0;
  /** Word offset (u32 index) of the header of the packet being delivered (writeStamp). */
  private curHdr = -1;
  private stopped = false;
  private refed = true;
  private closedStats: [number, number, number, number] = [0, 0, 0, 0];
  private readonly onBlock = (blockOff: number, n: number, first: number): void => this.walk(blockOff, n, first);
  private readonly onBatchEnd = (): void => {
    if (!this.stopped) this.rx?.batchEnd(Date.now());
  };

  /** Validates options; nothing is opened until start() (or open()). */
  constructor(opts: RingCaptureOptions) {
    geometry(opts);
    this.opts = opts;
  }

  /** LINKTYPE_* of delivered frames (valid after open/start). */
  get linkType(): number {
    return this.r?.linkType ?? 0;
  }

  /**
   * Opens socket, filter and ring without registering with the event loop (for pollOnce).
   * Throws TcpcopyError ERR_NO_RAW_PERMISSION / ERR_NO_DEVICE / ERR_BAD_FILTER /
   * ERR_CAPTURE_OPEN.
   */
  open(rx: PacketReceiver): void {
    if (this.r !== undefined) return;
    if (this.stopped) throw new TcpcopyError('ERR_CAPTURE_OPEN', 'this RingCapture was stopped; create a new one');
    const g = geometry(this.opts);
    const native = loadNative();
    const dir = DIRECTIONS[this.opts.direction ?? 'in'];
    try {
      this.r = native.ringOpen(this.opts.device, g.snaplen, g.blockSize, g.blockCount, g.retire, dir, this.opts.filter);
    } catch (err) {
      throw this.translate(err);
    }
    this.native = native;
    this.rx = rx;
    const ring = this.r.ring;
    this.u32 = new Uint32Array(ring.buffer, ring.byteOffset, ring.length >>> 2);
    this.u16 = new Uint16Array(ring.buffer, ring.byteOffset, ring.length >>> 1);
  }

  /** Opens the ring and starts delivering to `rx` from the event loop. */
  async start(rx: PacketReceiver): Promise<void> {
    this.open(rx);
    const r = this.r;
    if (r === undefined || this.native === undefined) return;
    this.native.ringStart(r.handle, this.onBlock, this.onBatchEnd);
    if (!this.refed) this.native.ringRef(r.handle, false);
  }

  /**
   * Synchronously delivers the packets of up to `maxBlocks` ready blocks, waiting up to
   * `timeoutMs` for the first; calls rx.batchEnd when any were delivered. Returns blocks walked.
   */
  pollOnce(maxBlocks = 64, timeoutMs = 0): number {
    const r = this.r;
    if (r === undefined || this.native === undefined || this.stopped) return 0;
    const n = this.native.ringPoll(r.handle, maxBlocks, timeoutMs, this.onBlock);
    if (n > 0 && !this.stopped) this.rx?.batchEnd(Date.now());
    return n;
  }

  /** Lets the process exit while capturing (uv_unref); ref() undoes it. */
  unref(): this {
    this.refed = false;
    if (this.r !== undefined && this.native !== undefined && !this.stopped) this.native.ringRef(this.r.handle, false);
    return this;
  }

  /** Makes the capture keep the process alive again (the default). */
  ref(): this {
    this.refed = true;
    if (this.r !== undefined && this.native !== undefined && !this.stopped) this.native.ringRef(this.r.handle, true);
    return this;
  }

  /** Stops capture, unregisters from the event loop, unmaps the ring. Idempotent; safe inside rx.packet. */
  async stop(): Promise<void> {
    this.close();
  }

  /** Synchronous stop(). */
  close(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.r !== undefined && this.native !== undefined) {
      this.closedStats = this.native.ringStats(this.r.handle);
      this.native.ringClose(this.r.handle);
      this.closedStats = this.native.ringStats(this.r.handle);
    }
  }

  /** Counters: received (delivered to rx), dropped (kernel tp_drops, accumulated), blocks. */
  stats(): RingCaptureStats {
    const k =
      this.r !== undefined && this.native !== undefined && !this.stopped
        ? this.native.ringStats(this.r.handle)
        : this.closedStats;
    return { received: this.received, dropped: k[1], blocks: k[3], kernelPackets: k[0], freezes: k[2] };
  }

  /**
   * Writes the kernel's capture time of the packet being delivered (call it inside rx.packet)
   * as a channel v2 stamp: u32 seconds, u32 nanoseconds at `out[off .. off+8)`. Allocation-free,
   * so a receiver that wants the time of only some packets does not pay `tsMs` for all.
   */
  writeStamp(out: Buffer, off: number): void {
    const w = this.curHdr;
    out.writeUInt32BE(w >= 0 ? (this.u32[w + H_SEC / 4] ?? 0) : 0, off);
    out.writeUInt32BE(w >= 0 ? (this.u32[w + H_NSEC / 4] ?? 0) : 0, off + 4);
  }

  /** Walks one block's tpacket3_hdr chain. */
  private walk(blockOff: number, n: number, first: number): void {
    const rx = this.rx;
    if (rx === undefined) return;
    const ring = this.r?.ring;
    if (ring === undefined) return;
    const u32 = this.u32;
    const u16 = this.u16;
    const link = this.r?.linkType ?? 0;
    const wantTs = this.opts.timestamps !== false;
    let off = blockOff + first;
    for (let i = 0; i < n && !this.stopped; i++) {
      const w = off >>> 2;
      const capLen = u32[w + H_SNAPLEN / 4] ?? 0;
      const origLen = u32[w + H_LEN / 4] ?? 0;
      const mac = u16[(off + H_MAC) >>> 1] ?? 0;
      const tsMs = wantTs ? (u32[w + H_SEC / 4] ?? 0) * 1000 + (u32[w + H_NSEC / 4] ?? 0) / 1e6 : 0;
      this.received++;
      this.curHdr = w;
      rx.packet(link, ring, off + mac, capLen, origLen, tsMs);
      const next = u32[w + H_NEXT / 4] ?? 0;
      if (next === 0) break;
      off += next;
    }
    if (!this.stopped) rx.blockEnd?.();
  }

  private translate(err: unknown): unknown {
    const code = nativeErrorCode(err);
    const text = err instanceof Error ? err.message : String(err);
    const perm = permissionError(err, `capturing on ${this.opts.device} (-i)`);
    if (perm !== err) return perm;
    if (code === 'ENODEV' || code === 'ENXIO') {
      return new TcpcopyError(
        'ERR_NO_DEVICE',
        `capture device (-i) ${JSON.stringify(this.opts.device)} does not exist (see \`ip link\`)`,
        { device: this.opts.device },
      );
    }
    if (code === 'EBADFILTER') {
      return new TcpcopyError(
        'ERR_BAD_FILTER',
        `capture filter (-F) ${JSON.stringify(this.opts.filter)} does not compile: ${text}`,
        { filter: this.opts.filter },
      );
    }
    return new TcpcopyError('ERR_CAPTURE_OPEN', `cannot open the capture ring on ${this.opts.device}: ${text}`, {
      device: this.opts.device,
      errno: code,
    });
  }
}
