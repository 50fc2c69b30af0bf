/**
 * A simulated network for whole-replay tests: tcpcopy's sender, the target (SimTarget) and
 * intercept's channel, joined by links with a fixed latency and a seeded random loss, all on a
 * ManualClock. quinn-proto's test `Pair` is the model: both ends in one process, time
 * simulated, loss and latency injected, everything countable.
 *
 *   Replay --send/flush--> [loss, latency] --> SimTarget --answers--> [loss, latency]
 *          <--onRecord-- SimChannel (routes from CLIENT_ADD/DEL) <--------------'
 */
import type {
  ChannelClientStats,
  ChannelDownEvent,
  PacketReceiver,
  PacketSender,
  PacketSource,
  ReplyChannel,
  SenderStats,
  SourceStats,
  TimerHandle,
} from '../../src/io/types';
import { LINKTYPE_RAW } from '../../src/core/wire/link';
import type { ManualClock } from './manual-clock';
import { clientSteps, type SimTarget, type SynthShape, writeClientPacket } from './target';

/** Link behaviour, the same both ways. */
export interface SimLinkOptions {
  /** One-way latency, ms. */
  latencyMs: number;
  /** Share of packets lost on each link, 0..1 (0.05 = 5%). */
  loss: number;
  /** Seed of the loss pattern (the same seed, the same losses). */
  seed: number;
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function routeKey(ip: number, port: number): number {
  return ip * 65536 + port;
}

/** The network between a Replay and a SimTarget; `sender` and `channel()` go into the Replay's ReplayIo. */
export class SimNetwork {
  /** Packets tcpcopy sent towards the target, and those the link lost. */
  toTarget = 0;
  lostToTarget = 0;
  /** Answers of the target towards intercept, and those the link lost. */
  toIntercept = 0;
  lostToIntercept = 0;
  /** Reply records for a client with no route (no CLIENT_ADD yet, or after CLIENT_DEL). */
  unrouted = 0;
  readonly sender: SimSender;
  private readonly random: () => number;
  private chan: SimChannel | null = null;

  constructor(
    private readonly clock: ManualClock,
    readonly target: SimTarget,
    readonly opts: SimLinkOptions,
  ) {
    this.random = prng(opts.seed);
    this.sender = new SimSender(this);
  }

  /** The channel (built once, by the Replay, with its record callback). */
  channel(onRecord: (buf: Buffer, off: number, len: number) => void): SimChannel {
    this.chan = new SimChannel(onRecord, this);
    return this.chan;
  }

  /** The channel the Replay built, null before. */
  get simChannel(): SimChannel | null {
    return this.chan;
  }

  /** One packet leaves tcpcopy (the bytes are a private copy). */
  transmit(pkt: Buffer): void {
    this.toTarget++;
    if (this.random() < this.opts.loss) {
      this.lostToTarget++;
      return;
    }
    this.clock.setTimeout(() => this.arrive(pkt), this.opts.latencyMs);
  }

  private arrive(pkt: Buffer): void {
    this.target.packet(pkt, 0);
    this.target.takeReplies((buf, off, len) => {
      this.toIntercept++;
      if (this.random() < this.opts.loss) {
        this.lostToIntercept++;
        return;
      }
      const rec = Buffer.from(buf.subarray(off, off + len));
      this.clock.setTimeout(() => this.chan?.deliver(rec), this.opts.latencyMs);
    });
  }
}

/** tcpcopy's raw sender on the simulated network: queued at send(), on the wire at flush(). */
export class SimSender implements PacketSender {
  private queue: Buffer[] = [];
  private sent = 0;
  closed = false;

  constructor(private readonly net: SimNetwork) {}

  send(buf: Buffer, off: number, len: number): void {
    this.queue.push(Buffer.from(buf.subarray(off, off + len)));
  }

  flush(): void {
    const q = this.queue;
    this.queue = [];
    for (const p of q) {
      this.sent++;
      this.net.transmit(p);
    }
  }

  stats(): SenderStats {
    return { sent: this.sent, failed: 0, retried: 0, lastError: '' };
  }

  close(): void {
    this.closed = true;
  }
}

/** intercept's channel on the simulated network: routes from CLIENT_ADD/DEL, reply records to the Replay. */
export class SimChannel implements ReplyChannel {
  onDown: ((ev: ChannelDownEvent) => void) | undefined;
  onReconnect: ((server: string) => void) | undefined;
  /** Routes (client ip:port) intercept holds. */
  readonly routes = new Set<number>();
  private pending: { add: boolean; key: number }[] = [];
  connected = false;
  closed = false;
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

  constructor(
    private readonly onRecord: (buf: Buffer, off: number, len: number) => void,
    private readonly net: SimNetwork,
  ) {}

  async connect(): Promise<void> {
    this.connected = true;
    this.st.connected = 1;
  }

  addClient(clientIp: number, clientPort: number): void {
    this.pending.push({ add: true, key: routeKey(clientIp, clientPort) });
  }

  delClient(clientIp: number, clientPort: number): void {
    this.pending.push({ add: false, key: routeKey(clientIp, clientPort) });
  }

  /** intercept applies the messages as they arrive (before any SYN of the same flush reaches the target). */
  flush(): void {
    for (const m of this.pending) {
      this.st.bytesSent += 14;
      if (m.add) this.routes.add(m.key);
      else this.routes.delete(m.key);
    }
    this.pending = [];
  }

  flushUrgent(): void {
    this.flush();
  }

  get up(): boolean {
    return this.connected && !this.closed;
  }

  stats(): ChannelClientStats {
    return { ...this.st };
  }

  async close(): Promise<void> {
    this.flush();
    this.closed = true;
    this.st.connected = 0;
  }

  /** A reply record reaches intercept's channel: to the Replay when the client has a route. */
  deliver(rec: Buffer): void {
    if (this.closed) return;
    const dstIp = rec.readUInt32BE(16);
    const dstPort = rec.readUInt16BE(22);
    if (!this.routes.has(routeKey(dstIp, dstPort))) {
      this.net.unrouted++;
      return;
    }
    this.st.framesReceived++;
    this.st.recordsReceived++;
    this.onRecord(rec, 0, rec.length);
  }
}

/** Pace of a SimCapture. */
export interface SimCaptureOptions {
  /** Sessions captured (SynthShape connections, clients as clientOf(i)). */
  sessions: number;
  /** Time between two sessions' SYNs, ms. */
  sessionGapMs: number;
  /** Time between two captured packets of one session, ms. */
  stepMs: number;
}

/** A live capture of synthetic keep-alive connections (client -> online server packets), on the manual clock. */
export class SimCapture implements PacketSource {
  private rx: PacketReceiver | null = null;
  private readonly timers: TimerHandle[] = [];
  private readonly buf = Buffer.alloc(4096);
  received = 0;
  /** Packets still to be captured. */
  remaining = 0;

  constructor(
    private readonly clock: ManualClock,
    private readonly shape: SynthShape,
    private readonly opts: SimCaptureOptions,
  ) {}

  async start(rx: PacketReceiver): Promise<void> {
    this.rx = rx;
    const steps = clientSteps(this.shape);
    for (let i = 0; i < this.opts.sessions; i++)
      for (let k = 0; k < steps; k++) {
        this.remaining++;
        this.timers.push(
          this.clock.setTimeout(() => this.capture(i, k), i * this.opts.sessionGapMs + k * this.opts.stepMs),
        );
      }
  }

  private capture(i: number, step: number): void {
    this.remaining--;
    const rx = this.rx;
    if (rx === null) return;
    const len = writeClientPacket(this.buf, 0, i, step, this.shape);
    this.received++;
    const now = this.clock.now();
    rx.packet(LINKTYPE_RAW, this.buf, 0, len, len, now);
    rx.batchEnd(now);
  }

  async stop(): Promise<void> {
    this.rx = null;
    for (const t of this.timers) this.clock.clearTimeout(t);
  }

  stats(): SourceStats {
    return { received: this.received, dropped: 0 };
  }
}
