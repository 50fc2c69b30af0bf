/**
 * Loader and typed surface of the native packet I/O addon (build/Release/tcpcopy_native.node,
 * built from native/*.c by `npm install` through node-gyp). Only src/io uses it: the TPACKET_V3
 * ring capture (ring-capture.ts) and the sendmmsg senders (raw-sender.ts, frame-sender.ts).
 */
import * as path from 'node:path';
import { TcpcopyError } from '../core/errors';

/** Opaque handle of a native object (ring or sender); only the addon can use it. */
export interface NativeHandle {
  readonly __nativeHandle: unique symbol;
}

/** What ringOpen returns. */
export interface NativeRing {
  /** The ring handle for the ring* functions. */
  handle: NativeHandle;
  /** One external Buffer over the whole mmapped ring (blockSize * blockCount bytes). */
  ring: Buffer;
  /** LINKTYPE_* of the frames: ETHERNET for Ethernet/loopback devices, RAW otherwise and for 'any'. */
  linkType: number;
  /** Bytes per block. */
  blockSize: number;
  /** Number of blocks. */
  blockCount: number;
}

/** Called once per ready block: the tpacket_block_desc at `blockOff`, its packet count and the offset of its first tpacket3_hdr relative to the block. */
export type BlockCallback = (blockOff: number, numPackets: number, firstPacketOff: number) => void;

/** Facts about a network device (SIOCGIF*). */
export interface DeviceInfo {
  /** Interface index. */
  ifindex: number;
  /** ARPHRD_* hardware type (1 = Ethernet, 772 = loopback, 65534 = none). */
  hatype: number;
  /** MTU in bytes. */
  mtu: number;
  /** Hardware address (6 bytes; zeros for devices without one). */
  mac: Buffer;
}

/** The addon's functions (see native/*.c). Errors thrown carry `code` = errno name or EBADFILTER. */
export interface NativeAddon {
  /** Compiles a tcpdump-syntax filter for pcap DLT `dlt`; returns the sock_filter instructions. */
  bpfCompile(filter: string, dlt: number, snaplen: number): Buffer;
  /** strerror text plus errno name, e.g. "No buffer space available (ENOBUFS)". */
  errnoText(errno: number): string;
  /** Opens a TPACKET_V3 ring; direction 0 = in, 1 = out, 2 = both. */
  ringOpen(
    device: string,
    snaplen: number,
    blockSize: number,
    blockCount: number,
    retireMs: number,
    direction: number,
    filter: string,
  ): NativeRing;
  /** Registers the ring fd with the event loop: onBlock per ready block, onBatchEnd once per wake-up. */
  ringStart(handle: NativeHandle, onBlock: BlockCallback, onBatchEnd: () => void): void;
  /**
   * Like ringStart, but every ready block goes to the agent's forwarder in C (native/forward.c)
   * from a thread of the ring's own: no JavaScript runs and the event loop is not woken per
   * block; the same thread sends the forwarder's STATUS frames when due. ringClose ends it.
   */
  ringForward(handle: NativeHandle, forwarder: NativeHandle): void;
  /**
   * The agent's forwarder: `destinations` replayer sockets for frames of `linkType`, ring blocks
   * of `blockSize` bytes; a STATUS frame to each every `statusMs` ms (0 = only fwdStatus's).
   */
  fwdCreate(destinations: number, linkType: number, blockSize: number, statusMs: number): NativeHandle;
  /** Gives destination `dest` a connected socket (the forwarder writes to its own dup), or -1 = down. */
  fwdSetFd(forwarder: NativeHandle, dest: number, fd: number): void;
  /**
   * Queues `dest`'s STATUS frame now: the clock `nowMs` and the drops since its previous STATUS
   * (`kernelDrops`, the ring's kernel drops so far, counts for destination 0); false when it is down or full.
   */
  fwdStatus(forwarder: NativeHandle, dest: number, nowMs: number, kernelDrops: number): boolean;
  /** Copies each destination's FWD_STATS counters (FWD_STAT_COUNT per destination) into `out`. */
  fwdStats(forwarder: NativeHandle, out: Float64Array): void;
  /** The destination (of `destinations`) the forwarder sends a captured frame to. */
  fwdShard(frame: Buffer, linkType: number, destinations: number): number;
  /** Whether the started ring keeps the event loop alive (default true). */
  ringRef(handle: NativeHandle, ref: boolean): void;
  /** Synchronous walk of up to maxBlocks ready blocks, waiting up to timeoutMs for the first. */
  ringPoll(handle: NativeHandle, maxBlocks: number, timeoutMs: number, onBlock: BlockCallback): number;
  /** [packets seen by the kernel incl. drops, drops, freezes, blocks walked], accumulated. */
  ringStats(handle: NativeHandle): [number, number, number, number];
  /** Stops polling, closes the socket, releases the ring pages. Idempotent; deferred when called from inside onBlock. */
  ringClose(handle: NativeHandle): void;
  /** Opens a sender: kind 0 = raw IPv4 (device optional, '' = routing decides), 1 = Ethernet frames on `device`. */
  sendOpen(kind: number, device: string, sndbufBytes: number): NativeHandle;
  /** Sends `count` packets arena[offsets[i], +lengths[i]); adds [sent, failed, retried] into result[0..2], result[3] = last errno. */
  sendBatch(
    handle: NativeHandle,
    arena: Buffer,
    offsets: Uint32Array,
    lengths: Uint32Array,
    count: number,
    result: Float64Array,
  ): void;
  /** Closes the sender socket. Idempotent. */
  sendClose(handle: NativeHandle): void;
  /** Device facts, or null when there is no such device. */
  deviceInfo(name: string): DeviceInfo | null;
  /**
   * RLIMIT_NOFILE: [soft, hard, errno] (-1 = unlimited). With `raise`, first lifts the soft limit
   * to the hard one; errno is that raise's failure (0 = none). Older builds lack it.
   */
  nofileLimit?(raise: boolean): [number, number, number];
}

let cached: NativeAddon | undefined;

/** Directory of the package (the one holding package.json), from src/io or dist/src/io. */
function packageRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    if (path.basename(dir) === 'dist') return path.dirname(dir);
    const parent = path.dirname(dir);
    if (path.basename(dir) === 'src' && path.basename(parent) !== 'dist') return parent;
    dir = parent;
  }
  return path.resolve(__dirname, '..', '..', '..');
}

/** Absolute path of the addon file. */
export function nativeAddonPath(): string {
  return path.join(packageRoot(), 'build', 'Release', 'tcpcopy_native.node');
}

/**
 * Loads the addon once. Throws TcpcopyError ERR_NATIVE_MISSING (with the fix) when it was not
 * built.
 */
export function loadNative(): NativeAddon {
  if (cached !== undefined) return cached;
  const file = nativeAddonPath();
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    cached = require(file) as NativeAddon;
  } catch (err) {
    const why = err instanceof Error ? (err.message.split('\n')[0] ?? '') : String(err);
    throw new TcpcopyError(
      'ERR_NATIVE_MISSING',
      `the native packet I/O addon ${file} could not be loaded (${why}); run \`npm install\` in the package directory (it needs g++, make, python3 and libpcap-dev)`,
      { file },
    );
  }
  return cached;
}

/** The errno-style `code` of an error thrown by the addon, or ''. */
export function nativeErrorCode(err: unknown): string {
  if (err instanceof Error && 'code' in err && typeof err.code === 'string') return err.code;
  return '';
}

/** Turns an EPERM/EACCES from the addon into the user-facing permission error; otherwise returns `err`. */
export function permissionError(err: unknown, what: string): unknown {
  const code = nativeErrorCode(err);
  if (code !== 'EPERM' && code !== 'EACCES') return err;
  return new TcpcopyError(
    'ERR_NO_RAW_PERMISSION',
    `${what} needs root or CAP_NET_RAW (and CAP_NET_ADMIN): run as root, or grant them with \`setcap cap_net_raw,cap_net_admin=ep $(readlink -f $(which node))\``,
    { errno: code },
  );
}

/** The open-files limits after raiseNofileLimit(). */
export interface NofileLimit {
  /** Soft limit in force now (-1 = unlimited). */
  soft: number;
  /** Hard limit (-1 = unlimited). */
  hard: number;
  /** Soft limit before the call. */
  before: number;
  /** Why the raise failed ('' = it did not, or was not needed). */
  error: string;
}

/**
 * Raises the soft RLIMIT_NOFILE to the hard limit, as nginx does (Node's own start-up usually
 * has done it already; this makes it explicit and tells the limit). Null when the addon is
 * missing or too old: the caller goes on with what it has.
 */
export function raiseNofileLimit(): NofileLimit | null {
  let nat: NativeAddon;
  try {
    nat = loadNative();
  } catch {
    return null;
  }
  if (typeof nat.nofileLimit !== 'function') return null;
  const [before] = nat.nofileLimit(false);
  const [soft, hard, errno] = nat.nofileLimit(true);
  return { soft, hard, before, error: errno !== 0 ? nat.errnoText(errno) : '' };
}
