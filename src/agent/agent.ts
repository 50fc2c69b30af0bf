/**
 * The capture agent (`tcpcopy agent`): a TPACKET_V3 ring with the BPF filter, whose blocks the
 * native forwarder (native/forward.c) writes straight to the replayers' sockets from a thread
 * of its own (native/ring.c): no JavaScript per packet or per block, and no event-loop wake-up
 * either. The same thread sends a STATUS frame a second (the agent's clock and the drops since
 * the previous one), with the blocks when there is traffic. JavaScript only opens and re-opens
 * the connections (hello, the channel v2 handshake, the first STATUS) and logs the status
 * line. Never blocks production: a replayer that cannot take a block at once loses it,
 * counted; one that is down is reconnected with backoff.
 */
import * as net from 'node:net';
import { randomBytes } from 'node:crypto';
import { TcpcopyError } from '../core/errors';
import { V2_NONCE_BYTES, V2ClientHandshake } from '../channel/v2';
import type { Logger } from '../io/logger';
import {
  loadNative,
  nativeErrorCode,
  type NativeAddon,
  type NativeHandle,
  type NativeRing,
  permissionError,
} from '../io/native';
import { agentFilter, type AgentConfig } from './agent-options';
import { encodeHello, HELLO_AUTH } from './stream-format';

/** Counters per destination in the forwarder's stats array (native/forward.c, ST_*). */
export const FWD_STATS = [
  'frames',
  'bytes',
  'packets',
  'droppedFrames',
  'droppedPackets',
  'droppedData',
  'partial',
  'errors',
  'lastErrno',
  'up',
] as const;
/** Numbers per destination in the stats array. */
export const FWD_STAT_COUNT = FWD_STATS.length;
const S = Object.fromEntries(FWD_STATS.map((k, i) => [k, i])) as Record<(typeof FWD_STATS)[number], number>;

/** First reconnect delay, ms (doubles up to RECONNECT_MAX_MS). */
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5000;
/** Time allowed for a connection and its handshake, ms. */
const CONNECT_TIMEOUT_MS = 3000;
/** STATUS frames (clock, drops) every this many ms (sent by the forwarder's thread). */
const STATUS_FRAME_MS = 1000;

/** The agent's counters for one replayer (its stats array plus the connection's). */
export interface DestinationStats {
  /** "host:port". */
  server: string;
  up: boolean;
  frames: number;
  bytes: number;
  packets: number;
  droppedFrames: number;
  droppedPackets: number;
  droppedData: number;
  /** Successful connections after the first. */
  reconnects: number;
}

/** One replayer: its connection, handshake and reconnection. */
class Destination {
  readonly server: string;
  sock: net.Socket | null = null;
  attached = false;
  reconnects = 0;
  everUp = false;
  failures = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Resolved at the end of the first connection attempt (attached or failed). */
  private firstAttempt: (() => void) | null = null;
  readonly ready = new Promise<void>((resolve) => (this.firstAttempt = resolve));

  constructor(
    readonly index: number,
    readonly host: string,
    readonly port: number,
    private readonly agent: Agent,
  ) {
    this.server = `${host}:${port}`;
  }

  connect(): void {
    if (this.agent.stopping) return;
    const sock = net.connect({ host: this.host, port: this.port });
    this.sock = sock;
    sock.setNoDelay(true);
    const timeout = setTimeout(
      () => sock.destroy(new Error(`no answer within ${CONNECT_TIMEOUT_MS / 1000} s`)),
      CONNECT_TIMEOUT_MS,
    );
    let hs: V2ClientHandshake | null = null;
    let reason = 'closed by the replayer';
    sock.on('connect', () => {
      const secret = this.agent.secret;
      sock.write(this.agent.hello(this.index, secret !== null ? HELLO_AUTH : 0));
      if (secret !== null) {
        const nonceC = randomBytes(V2_NONCE_BYTES);
        hs = new V2ClientHandshake(secret, nonceC);
      } else {
        // nothing to wait for: attach once the hello is on its way
        sock.write(Buffer.alloc(0), () => {
          clearTimeout(timeout);
          this.attach(sock);
        });
      }
    });
    sock.on('data', (chunk: Buffer) => {
      if (hs !== null && !this.attached) {
        const step = hs.feed(chunk);
        if (step.kind === 'send') sock.write(step.bytes);
        else if (step.kind === 'fail') {
          reason = step.message.replace(/intercept/g, 'the replayer');
          sock.destroy();
        } else if (step.kind === 'ok') {
          clearTimeout(timeout);
          hs = null;
          sock.write(Buffer.alloc(0), () => this.attach(sock));
        }
        return;
      }
      // the replayer sends nothing after the handshake, except a refusal
      if (chunk.subarray(0, 4).toString('latin1') === 'TCNO')
        reason = 'the replayer requires --secret-file (it refused this agent without one)';
    });
    sock.on('error', (e) => (reason = e.message));
    sock.on('close', () => {
      clearTimeout(timeout);
      this.lost(sock, reason);
    });
  }

  private attach(sock: net.Socket): void {
    if (this.sock !== sock || sock.destroyed) return;
    const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
    if (fd === undefined || fd < 0) {
      sock.destroy(new Error('no socket descriptor'));
      return;
    }
    this.agent.native.fwdSetFd(this.agent.fwd, this.index, fd);
    this.attached = true;
    if (this.everUp) {
      this.reconnects++;
      this.agent.log.info(`replayer ${this.server} reconnected after ${this.failures} failed attempt(s)`);
    } else {
      this.agent.log.info(`streaming to replayer ${this.server}`);
    }
    this.everUp = true;
    this.failures = 0;
    this.agent.sendStatus(this);
    this.firstAttempt?.();
  }

  private lost(sock: net.Socket, reason: string): void {
    if (this.sock !== sock) return;
    this.firstAttempt?.();
    this.agent.native.fwdSetFd(this.agent.fwd, this.index, -1);
    const wasUp = this.attached;
    this.attached = false;
    this.sock = null;
    if (this.agent.stopping) return;
    this.failures++;
    if (wasUp || this.failures === 1)
      this.agent.log.warn(
        `replayer ${this.server} ${wasUp ? 'lost' : 'unreachable'} (${reason}); reconnecting, packets for it are dropped and counted meanwhile`,
      );
    const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** Math.min(10, this.failures - 1));
    this.timer = setTimeout(() => {
      this.timer = null;
      this.connect();
    }, delay);
  }

  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.agent.native.fwdSetFd(this.agent.fwd, this.index, -1);
    this.attached = false;
    this.sock?.end();
    this.sock = null;
  }
}

/** The running agent. */
export class Agent {
  readonly native: NativeAddon;
  fwd!: NativeHandle;
  stopping = false;
  readonly secret: Buffer | null;
  readonly log: Logger;
  private ring: NativeRing | null = null;
  private dests: Destination[] = [];
  private readonly st: Float64Array;
  private readonly agentId = randomBytes(4).readUInt32BE(0);
  private lineTimer: NodeJS.Timeout | null = null;
  private lastLine = { at: Date.now(), packets: 0 };
  private resolveDone: (() => void) | null = null;
  private readonly startedAt = Date.now();

  constructor(
    private readonly cfg: AgentConfig,
    log: Logger,
    secret: Buffer | null,
  ) {
    this.log = log;
    this.secret = secret;
    this.native = loadNative();
    this.st = new Float64Array(cfg.to.length * FWD_STAT_COUNT);
  }

  /** The hello for destination `index` (flags: HELLO_AUTH, HELLO_QUERY). */
  hello(index: number, flags: number): Buffer {
    return encodeHello({
      flags,
      littleEndian: new Uint8Array(new Uint16Array([1]).buffer)[0] === 1,
      agentId: this.agentId,
      shard: index,
      shards: this.cfg.to.length,
      name: this.cfg.name,
    });
  }

  /** Opens the ring, connects to every replayer and streams until stop(); resolves when stopped. */
  async run(): Promise<void> {
    const cfg = this.cfg;
    const filter = cfg.filter ?? agentFilter(cfg.ports);
    let kb = 4;
    while (kb * 1024 < cfg.snaplen + 128) kb *= 2;
    const blockSize = kb * 1024;
    const blocks = Math.max(4, Math.floor((cfg.bufferMB * 1048576) / blockSize));
    try {
      this.ring = this.native.ringOpen(cfg.device, cfg.snaplen, blockSize, blocks, cfg.captureDelayMs, 0, filter);
    } catch (e) {
      throw this.translate(e, filter);
    }
    this.fwd = this.native.fwdCreate(cfg.to.length, this.ring.linkType, this.ring.blockSize, STATUS_FRAME_MS);
    this.dests = cfg.to.map((d, i) => new Destination(i, d.host, d.port, this));
    // the ring holds what arrives meanwhile; it is forwarded once every replayer answered (or failed once)
    for (const d of this.dests) d.connect();
    await Promise.all(this.dests.map((d) => d.ready));
    if (this.stopping) return;
    this.native.ringForward(this.ring.handle, this.fwd);
    this.log.info(
      `capturing on ${cfg.device} with filter "${filter}", streaming to ${cfg.to.map((d) => `${d.host}:${d.port}`).join(', ')}${cfg.to.length > 1 ? ' (sharded by client address and port)' : ''}`,
    );
    if (cfg.statusIntervalMs > 0) this.lineTimer = setInterval(() => this.statusLine(), cfg.statusIntervalMs);
    await new Promise<void>((resolve) => (this.resolveDone = resolve));
  }

  /** Stops capturing and streaming (a last STATUS goes out first). */
  stop(reason: string): void {
    if (this.stopping) return;
    this.log.info(`stopping: ${reason}`);
    for (const d of this.dests) this.sendStatus(d);
    this.stopping = true;
    if (this.lineTimer !== null) clearInterval(this.lineTimer);
    if (this.ring !== null) this.native.ringClose(this.ring.handle);
    this.statusLine();
    for (const d of this.dests) d.close();
    this.resolveDone?.();
  }

  /** Per-replayer counters. */
  stats(): DestinationStats[] {
    if (this.dests.length > 0) this.native.fwdStats(this.fwd, this.st);
    return this.dests.map((d, i) => {
      const v = (k: keyof typeof S): number => this.st[i * FWD_STAT_COUNT + S[k]] as number;
      return {
        server: d.server,
        up: v('up') === 1,
        frames: v('frames'),
        bytes: v('bytes'),
        packets: v('packets'),
        droppedFrames: v('droppedFrames'),
        droppedPackets: v('droppedPackets'),
        droppedData: v('droppedData'),
        reconnects: d.reconnects,
      };
    });
  }

  /** Kernel ring counters: [packets incl. drops, drops]. */
  private kernel(): [number, number] {
    if (this.ring === null) return [0, 0];
    const k = this.native.ringStats(this.ring.handle);
    return [k[0], k[1]];
  }

  /** Sends destination `d` a STATUS now with the drops not reported yet (kernel drops go to the first replayer). */
  sendStatus(d: Destination): void {
    if (!d.attached || this.stopping) return;
    this.native.fwdStatus(this.fwd, d.index, Date.now(), d.index === 0 ? this.kernel()[1] : 0);
  }

  /** The status line (plain, like tcpcopy's `--status-style plain`). */
  private statusLine(): void {
    const all = this.stats();
    const now = Date.now();
    const packets = all.reduce((a, s) => a + s.packets, 0);
    const rate = ((packets - this.lastLine.packets) * 1000) / Math.max(1, now - this.lastLine.at);
    this.lastLine = { at: now, packets };
    const dropF = all.reduce((a, s) => a + s.droppedFrames, 0);
    const dropP = all.reduce((a, s) => a + s.droppedPackets, 0);
    const up = all.filter((s) => s.up).length;
    const [, kdrops] = this.kernel();
    const rss = process.memoryUsage.rss() / 1048576;
    this.log.info(
      `${((now - this.startedAt) / 1000).toFixed(0)} s: ${packets} packets streamed (${rate.toFixed(0)}/s), ${dropP} dropped in ${dropF} batches, ${kdrops} kernel drops, replayers up ${up}/${all.length}, rss ${rss.toFixed(0)} MiB`,
    );
  }

  private translate(err: unknown, filter: string): unknown {
    const perm = permissionError(err, `capturing on ${this.cfg.device} (-i)`);
    if (perm !== err) return perm;
    const code = nativeErrorCode(err);
    const text = err instanceof Error ? err.message : String(err);
    if (code === 'ENODEV' || code === 'ENXIO')
      return new TcpcopyError(
        'ERR_NO_DEVICE',
        `capture device (-i) ${JSON.stringify(this.cfg.device)} does not exist (see \`ip link\`)`,
        {
          device: this.cfg.device,
        },
      );
    if (code === 'EBADFILTER')
      return new TcpcopyError(
        'ERR_BAD_FILTER',
        `capture filter (-F) ${JSON.stringify(filter)} does not compile: ${text}`,
        {
          filter,
        },
      );
    return new TcpcopyError('ERR_CAPTURE_OPEN', `cannot open the capture ring on ${this.cfg.device}: ${text}`, {
      device: this.cfg.device,
    });
  }
}
