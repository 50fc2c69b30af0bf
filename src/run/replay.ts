import * as fs from 'node:fs';
import { ReplayEngine } from '../core/engine';
import { EXIT, type ExitCode } from '../core/errors';
import { engineConfig } from '../core/engine-config';
import { decodeFrame, type DecodeStatus, parseIpv4Tcp } from '../core/wire/decode';
import { newSegment } from '../core/wire/segment';
import { ChannelClient } from '../io/channel-client';
import { readSecret } from '../channel/secret';
import { FrameSender, parseMac } from '../io/frame-sender';
import { RawSender } from '../io/raw-sender';
import { RingCapture } from '../io/ring-capture';
import type { PacketReceiver, PacketSender } from '../io/types';
import type { Logger } from '../io/logger';
import type { TcpcopyConfig } from '../config/tcpcopy-config';
import { type InputSpec, resolveInput } from './input';
import { DeadlineTimer } from './deadline-timer';
import { clock, liveRingGeometry, transferFilter } from './live-input';
import { OfflineFeed, type OfflineFrameSink } from './offline-feed';
import { formatReport, lagSummary, type ReplayReport, requestAccounting } from './report';
import { LiveStatus } from './live-status';
import { tcpcopyMetrics } from './metrics';
import { type MetricsServer, startMetricsServer } from '../io/metrics-server';

/** How long tcpcopy without -L waits for a lost intercept to come back before it stops, ms. */
const DOWN_GRACE_MS = 10_000;
/** Long recorded gaps (--max-gap) logged one by one; later ones are only counted. */
const LONG_GAPS_LOGGED = 5;

/**
 * Wires one replay: capture (file or live) -> decode -> engine -> raw send, and intercept's
 * reply records -> engine. Owns the timers, the status line and the final report.
 */
export class Replay implements OfflineFrameSink, PacketReceiver {
  readonly engine: ReplayEngine;
  private readonly seg = newSegment();
  private readonly replySeg = newSegment();
  private sender: PacketSender | null = null;
  private channel: ChannelClient | null = null;
  private feed: OfflineFeed | null = null;
  private captures: RingCapture[] = [];
  private readonly decode: Record<string, number> = {};
  private notForTransfers = 0;
  private unknownLinks = new Set<number>();
  private readonly deadline = new DeadlineTimer(() => {
    this.engine.poll(clock());
    this.flushAll();
    this.arm();
  }, clock);
  private flushQueued = false;
  private stopping = false;
  private stopReason = '';
  private resolveDone: (() => void) | null = null;
  private readonly startedAt = clock();
  private statusTimer: NodeJS.Timeout | null = null;
  private memoryTimer: NodeJS.Timeout | null = null;
  private exitCode: ExitCode = EXIT.OK;
  /** -o: next-hop MAC (6 bytes, parsed once) by target address, from the transfers' `@mac`. */
  private readonly macByTarget = new Map<number, Buffer>();
  private downTimer: NodeJS.Timeout | null = null;

  /** Status line / plain status lines (see live-status.ts); wraps the logger. */
  private readonly live: LiveStatus;
  private readonly log: Logger;
  /** What -i / --offline name (a file or devices), decided once. */
  private readonly input: InputSpec;
  private metrics: MetricsServer | null = null;

  constructor(
    private readonly cfg: TcpcopyConfig,
    log: Logger,
  ) {
    this.input = resolveInput(cfg);
    this.live = new LiveStatus({
      style: cfg.statusStyle,
      intervalMs: cfg.statusIntervalMs,
      stream: process.stderr,
      log,
      startedAt: this.startedAt,
    });
    this.log = this.live.log;
    const transfers = cfg.transfers.map((t) => ({
      onlineIp: t.onlineIp,
      onlinePort: t.onlinePort,
      targetIp: t.targetIp,
      targetPort: t.targetPort,
    }));
    for (const t of cfg.transfers) {
      const mac = t.targetMac !== null ? parseMac(t.targetMac) : null;
      if (mac !== null) this.macByTarget.set(t.targetIp, mac);
    }
    this.engine = new ReplayEngine(
      engineConfig(transfers, {
        clientIps: cfg.clientIps,
        localhostIp: cfg.localhostIp,
        replicas: cfg.replicas,
        portOffset: cfg.portOffset,
        samplePercent: cfg.samplePercent,
        rampMs: cfg.rampMs,
        onlySyn: cfg.onlySyn,
        noWait: cfg.noWait,
        mss: cfg.mss,
        mtu: cfg.mtu,
        sessionTimeoutMs: cfg.sessionTimeoutMs,
        keepaliveTimeoutMs: cfg.keepaliveTimeoutMs,
        rtoInitialMs: cfg.rtoMs,
        delayedAckMs: cfg.delayedAckMs,
      }),
      {
        packet: (buf, off, len) => this.sendPacket(buf, off, len),
        clientAdded: (ip, port, tip, tport) => this.channel?.addClient(ip, port, tip, tport),
        clientRemoved: (ip, port, tip, tport) => this.channel?.delClient(ip, port, tip, tport),
      },
    );
  }

  private sendPacket(buf: Buffer, off: number, len: number): void {
    const s = this.sender;
    if (s === null) return;
    if (s instanceof FrameSender) {
      const mac = this.macByTarget.get(buf.readUInt32BE(off + 16));
      if (mac !== undefined) s.sendTo(mac, buf, off, len);
      return;
    }
    s.send(buf, off, len);
  }

  /**
   * -o: the Ethernet sender. Frames go to the `@mac` of the packet's target (sendPacket); the
   * source MAC is the online side's `@mac` of the first transfer that gives one (as the
   * original writes it), else the device's own address.
   */
  private frameSender(device: string): FrameSender {
    const first = this.cfg.transfers.find((t) => t.targetMac !== null);
    const src = this.cfg.transfers.find((t) => t.onlineMac !== null)?.onlineMac;
    return new FrameSender({
      device,
      dstMac: first?.targetMac ?? '00:00:00:00:00:00',
      ...(src !== undefined && src !== null ? { srcMac: src } : {}),
    });
  }

  /** Runs the replay to its end (offline: file replayed and drained; live: until stop()). Returns the exit code. */
  async run(): Promise<number> {
    const cfg = this.cfg;
    this.sender = cfg.sendDevice !== null ? this.frameSender(cfg.sendDevice) : new RawSender();
    this.channel = new ChannelClient(
      {
        servers: cfg.intercepts,
        connections: cfg.connections,
        reconnect: true,
        recordBytes: 64,
        autoFlush: false,
        ...(cfg.secretFile !== null ? { secret: readSecret(cfg.secretFile) } : {}),
      },
      (buf, off, len) => this.onRecord(buf, off, len),
      { warn: (m) => this.log.warn(m), info: (m) => this.log.info(m) },
    );
    // A lost intercept is counted, logged and reconnected (with backoff). Without -L tcpcopy
    // gives up when it stays down for DOWN_GRACE_MS; with -L it keeps replaying meanwhile.
    this.channel.onDown = (ev) => {
      if (ev.serverDown) this.engine.setChannelUp(false);
      if (!ev.serverDown || this.stopping || cfg.reconnect) return;
      this.log.warn(
        `intercept ${ev.server} is down (${ev.reason}); reconnecting, giving up in ${DOWN_GRACE_MS / 1000} s (-L keeps running)`,
      );
      if (this.downTimer === null) {
        this.downTimer = setTimeout(() => {
          this.downTimer = null;
          if (this.channel !== null && !this.channel.up && !this.stopping) {
            this.exitCode = EXIT.FAILURE;
            this.stop(
              `intercept ${ev.server} stayed unreachable for ${DOWN_GRACE_MS / 1000} s; use -L to keep running`,
            );
          }
        }, DOWN_GRACE_MS);
      }
    };
    // intercept forgets the routes of a lost connection: register every live session again
    this.channel.onReconnect = () => {
      this.engine.setChannelUp(this.channel?.up ?? true);
      this.engine.forEachClient((ip, port, tip, tport) => this.channel?.addClient(ip, port, tip, tport));
      this.channel?.flush();
    };
    await this.channel.connect();
    this.log.info(`connected to intercept ${cfg.intercepts.map((s) => `${s.host}:${s.port}`).join(', ')}`);
    const done = new Promise<void>((resolve) => (this.resolveDone = resolve));
    // the status timer also enforces -m, so it runs (every second) even without status output
    if (this.live.periodMs > 0) this.statusTimer = setInterval(() => this.status(), this.live.periodMs);
    // -m is checked every second, whatever the status period
    if (cfg.memoryMB > 0) this.memoryTimer = setInterval(() => this.checkMemory(), 1000);
    if (cfg.metrics !== null) {
      this.metrics = await startMetricsServer(cfg.metrics, () =>
        tcpcopyMetrics(this.report(), this.channel?.up ?? false),
      );
      this.log.info(`metrics at http://${this.metrics.address.host}:${this.metrics.address.port}/metrics`);
    }
    const input = this.input;
    if (input.kind === 'offline') {
      this.feed = new OfflineFeed({
        file: input.file,
        accelerate: cfg.accelerate,
        idleGapMs: cfg.idleGapMs,
        repeats: cfg.repeats,
        maxGapMs: cfg.maxGapMs,
        onLongGap: (gapMs, frame) => this.longGap(gapMs, frame),
      });
      await this.feed.open(clock());
      this.log.info(`replaying ${input.file} (-a ${cfg.accelerate}, -T ${cfg.repeats})`);
      void this.pumpOffline();
    } else {
      const devices = input.devices.length > 0 ? input.devices : ['any'];
      const filter = cfg.filter ?? transferFilter(cfg);
      for (const device of devices) {
        const cap = new RingCapture({
          device,
          filter,
          snaplen: cfg.snaplen,
          bufferMB: cfg.bufferMB,
          direction: 'in',
          timestamps: false,
          ...liveRingGeometry(cfg.snaplen, cfg.captureDelayMs),
        });
        await cap.start(this);
        this.captures.push(cap);
      }
      this.log.info(`capturing on ${devices.join(',')} with filter "${filter}"`);
    }
    this.arm();
    await done;
    return this.exitCode;
  }

  /** Ends the replay (signal, memory cap, channel loss): finishes sessions and resolves run(). */
  stop(reason: string): void {
    if (this.stopping) return;
    this.stopping = true;
    this.stopReason = reason;
    this.log.info(`stopping: ${reason}`);
    void this.shutdown();
  }

  // ---- capture input ----

  /** Live capture: one frame. */
  packet(linkType: number, buf: Buffer, off: number, capLen: number): void {
    this.ingest(linkType, buf, off, capLen, 0, clock());
  }

  /**
   * Live capture: end of a ring block. The flush is deferred to the check phase of this
   * event-loop turn, so ring blocks and channel reads that the same poll delivered leave in one
   * sendmmsg (one flush per turn, never a second setImmediate while one is queued).
   */
  batchEnd(): void {
    this.queueFlush();
  }

  /** Offline feed: one frame due now. */
  frame(linkType: number, buf: Buffer, off: number, len: number, _origLen: number, rep: number): void {
    this.ingest(linkType, buf, off, len, rep, clock());
  }

  private ingest(linkType: number, buf: Buffer, off: number, capLen: number, rep: number, now: number): void {
    const st: DecodeStatus = decodeFrame(linkType, buf, off, capLen, this.seg);
    this.decode[st] = (this.decode[st] ?? 0) + 1;
    if (st !== 'ok') {
      if (st === 'unknown-link' && !this.unknownLinks.has(linkType)) {
        this.unknownLinks.add(linkType);
        this.log.error(
          `link type ${linkType} is not supported (supported: Ethernet 1, raw IP 101/228, Linux cooked 113/276, BSD loopback 0); its frames are skipped and counted`,
        );
      }
      return;
    }
    if (!this.engine.onClientPacket(this.seg, now, rep)) this.notForTransfers++;
  }

  private async pumpOffline(): Promise<void> {
    const feed = this.feed;
    if (feed === null || this.stopping) return;
    try {
      const nextAt = await feed.pump(this, clock(), 2048);
      this.flushAll();
      this.arm(); // the engine's timers (SYN retries...) must run even when no reply ever comes
      if (nextAt === Infinity) {
        this.onInputEnd();
        return;
      }
      const wait = nextAt - clock();
      if (wait <= 0) setImmediate(() => void this.pumpOffline());
      else setTimeout(() => void this.pumpOffline(), Math.min(wait, 1000));
    } catch (e) {
      this.exitCode = EXIT.FAILURE;
      this.log.error((e as Error).message);
      this.stop('capture file error');
    }
  }

  private onInputEnd(): void {
    const feed = this.feed as OfflineFeed;
    if (feed.fatal !== null) {
      this.log.error(feed.fatal);
      this.exitCode = EXIT.FAILURE; // the file was not read to its end (doc/errors.md)
    }
    if (feed.longGaps > 0)
      this.log.warn(
        `${feed.longGaps} recorded gap(s) longer than --max-gap ${this.cfg.maxGapMs / 1000} s were skipped`,
      );
    this.log.info(`end of ${feed.frames} frames; waiting for ${this.engine.busySessions()} sessions to finish`);
    let lastProgress = this.progressMark();
    let lastChange = clock();
    const check = setInterval(() => {
      const busy = this.engine.busySessions();
      const mark = this.progressMark();
      if (mark !== lastProgress) {
        lastProgress = mark;
        lastChange = clock();
      }
      if (busy === 0 || clock() - lastChange > 10_000) {
        clearInterval(check);
        this.stop(busy === 0 ? 'capture replayed' : `capture replayed; ${busy} sessions made no progress for 10 s`);
      }
    }, 50);
  }

  private progressMark(): string {
    const e = this.engine.stats;
    return `${e.packetsSent}/${e.replies}/${e.sessionsActive}`;
  }

  // ---- replies ----

  private onRecord(buf: Buffer, off: number, len: number): void {
    const seg = this.replySeg;
    if (parseIpv4Tcp(buf, off, len, seg, true) !== 'ok') {
      this.engine.stats.repliesMalformed++;
      return;
    }
    this.engine.onReply(seg, clock());
    this.queueFlush();
  }

  /** Schedules one flushAll + arm at the end of this event-loop turn (setImmediate), once. */
  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(this.flushTurn);
  }

  private readonly flushTurn = (): void => {
    this.flushQueued = false;
    if (this.stopping) return; // shutdown() flushes itself
    this.flushAll();
    this.arm();
  };

  // ---- timers and flushing ----

  /** Sends what the engine queued: channel messages first (CLIENT_ADD precedes the SYN; CLIENT_DEL-only batches are coalesced, see flushUrgent), then packets. */
  private flushAll(): void {
    this.engine.flush();
    this.channel?.flushUrgent();
    this.sender?.flush();
  }

  /** Keeps the deadline timer at the engine's next deadline (see deadline-timer.ts). */
  private arm(): void {
    if (!this.stopping) this.deadline.arm(this.engine.nextDeadline());
  }

  private status(): void {
    const rss = process.memoryUsage.rss() / 1048576;
    const now = clock();
    const gapWait = this.feed?.waitingMs(now) ?? 0;
    this.live.tick(this.engine.stats, now, this.feed?.progress() ?? null, this.channel?.up ?? false, rss, gapWait);
  }

  /** Offline: a recorded gap longer than --max-gap was skipped; the first few are logged. */
  private longGap(gapMs: number, frame: number): void {
    const n = (this.feed?.longGaps ?? 0) + 1; // the feed counts it after this call
    if (n > LONG_GAPS_LOGGED) return;
    const dir = gapMs > 0 ? 'forward' : 'back';
    this.log.warn(
      `capture timestamps jump ${dir} by ${Math.abs(gapMs / 1000)} s before frame ${frame} (more than --max-gap ${this.cfg.maxGapMs / 1000} s); the gap is skipped as with -I` +
        (n === LONG_GAPS_LOGGED ? '; further long gaps are skipped without a message' : ''),
    );
  }

  private checkMemory(): void {
    const rss = process.memoryUsage.rss() / 1048576;
    if (rss > this.cfg.memoryMB) {
      this.exitCode = EXIT.MEMORY;
      this.stop(`memory cap -m ${this.cfg.memoryMB} MiB exceeded (resident ${rss.toFixed(0)} MiB)`);
    }
  }

  private async shutdown(): Promise<void> {
    this.deadline.cancel();
    if (this.downTimer !== null) clearTimeout(this.downTimer);
    if (this.statusTimer !== null) clearInterval(this.statusTimer);
    if (this.memoryTimer !== null) clearInterval(this.memoryTimer);
    for (const c of this.captures) await c.stop();
    this.engine.finish(clock());
    this.flushAll();
    await this.feed?.close();
    const report = this.report();
    this.live.done();
    process.stdout.write(formatReport(report) + '\n');
    await this.metrics?.close();
    if (this.cfg.reportFile !== null)
      fs.writeFileSync(
        this.cfg.reportFile,
        JSON.stringify(
          {
            ...report,
            stopReason: this.stopReason,
            accounting: requestAccounting(report.engine, report.requestsInFlight),
          },
          null,
          2,
        ) + '\n',
      );
    await this.channel?.close();
    this.sender?.close();
    this.resolveDone?.();
  }

  /** The report as of now (also printed on SIGUSR1). */
  report(): ReplayReport {
    const sst = this.sender?.stats() ?? { sent: 0, failed: 0, retried: 0, lastError: '' };
    const ch = this.channel?.stats();
    const ru = process.resourceUsage();
    let dropped = 0;
    for (const c of this.captures) dropped += c.stats().dropped;
    return {
      mode: this.input.kind,
      durationS: (clock() - this.startedAt) / 1000,
      capture: {
        frames: this.feed?.frames ?? Object.values(this.decode).reduce((a, b) => a + b, 0),
        decode: { ...this.decode },
        notForTransfers: this.notForTransfers,
        dropped,
        damaged: this.feed?.damaged ?? 0,
        fatal: this.feed?.fatal ?? null,
      },
      engine: this.engine.stats,
      requestsInFlight: this.engine.requestsInFlight(),
      channel: ch !== undefined ? { ...ch } : {},
      sender: { sent: sst.sent, failed: sst.failed, retried: sst.retried, lastError: sst.lastError },
      lag: lagSummary(this.engine.stats),
      process: { cpuUserS: ru.userCPUTime / 1e6, cpuSystemS: ru.systemCPUTime / 1e6, maxRssMB: ru.maxRSS / 1024 },
    };
  }

  /** Prints the report now (SIGUSR1). */
  printReport(): void {
    this.live.around(() => process.stdout.write(formatReport(this.report()) + '\n'));
  }
}
