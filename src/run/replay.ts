import { ReplayEngine } from '../core/engine';
import { EXIT, type ExitCode } from '../core/errors';
import { engineConfig } from '../core/engine-config';
import { isIpv6 } from '../core/wire/ipv6';
import { decodeFrame, type DecodeStatus, parseIpTcp } from '../core/wire/decode';
import { endpointToString, newSegment } from '../core/wire/segment';
import type { Clock, PacketReceiver, PacketSender, PacketSource, ReplyChannel, TimerHandle } from '../io/types';
import type { Logger } from '../io/logger';
import type { TcpcopyConfig } from '../config/tcpcopy-config';
import { type InputSpec, resolveInput } from './input';
import { DeadlineTimer } from './deadline-timer';
import { liveCaptures } from './live-input';
import type { OfflineFrameSink } from './offline-feed';
import { type FrameFeed, type ReplayIo, systemReplayIo } from './replay-io';
import { lossHints } from './loss-hints';
import { formatReport, lagSummary, type ReplayReport, requestAccounting } from './report';
import { LiveStatus } from './live-status';
import { tcpcopyMetrics } from './metrics';
import { type MetricsServer, startMetricsServer } from '../io/metrics-server';
import type { ReplyPayload } from '../channel/payload';
import { loadModule } from './module-load';
import { RECORD_MAX_PAYLOAD } from '../channel/constants';
import { StreamInput } from '../io/stream-input';
import { readSecret } from '../channel/secret';
import { CompareRun } from './compare-run';
import type { CaptureTimes } from '../compare/session';
import {
  CHECK_MS,
  LIVE_DEFAULT_BUDGET_MB,
  LIVE_MODULE_DEFAULT_BUDGET_MB,
  LIVE_MODULE_SESSION_BACKLOG_KB,
  LIVE_SESSION_BACKLOG_KB,
  MemoryGovernor,
} from './memory-governor';

/** How long tcpcopy without -L waits for a lost intercept to come back before it stops, ms. */
const DOWN_GRACE_MS = 10_000;
/** Long recorded gaps (--max-gap) logged one by one; later ones are only counted. */
const LONG_GAPS_LOGGED = 5;

/**
 * Wires one replay: capture (file or live) -> decode -> engine -> raw send, and intercept's
 * reply records -> engine. Owns the timers, the status line and the final report. Every edge
 * (clock and timers, capture, sender, channel, output, report file) comes from a ReplayIo:
 * the real ones by default, a manual clock and a simulated network in tests.
 */
export class Replay implements OfflineFrameSink, PacketReceiver {
  readonly engine: ReplayEngine;
  private readonly seg = newSegment();
  private readonly replySeg = newSegment();
  private sender: PacketSender | null = null;
  private channel: ReplyChannel | null = null;
  private feed: FrameFeed | null = null;
  private captures: PacketSource[] = [];
  private readonly clock: Clock;
  private readonly decode: Record<string, number> = {};
  private notForTransfers = 0;
  private unknownLinks = new Set<number>();
  private readonly deadline: DeadlineTimer;
  private flushQueued = false;
  private stopping = false;
  private stopReason = '';
  private resolveDone: (() => void) | null = null;
  private readonly startedAt: number;
  private statusTimer: TimerHandle | null = null;
  private memoryTimer: TimerHandle | null = null;
  private governorTimer: TimerHandle | null = null;
  /** --memory-budget's governor; null without a budget. */
  private governor: MemoryGovernor | null = null;
  private endTimer: TimerHandle | null = null;
  private exitCode: ExitCode = EXIT.OK;
  private downTimer: TimerHandle | null = null;

  /** Status line / plain status lines (see live-status.ts); wraps the logger. */
  private readonly live: LiveStatus;
  private readonly log: Logger;
  /** What -i / --offline name (a file or devices), decided once. */
  private readonly input: InputSpec;
  private metrics: MetricsServer | null = null;
  /** -i tcp:// or -i -: the agents and pcap streams. */
  private stream: StreamInput | null = null;
  /** --compare: the comparison and its module; null without. */
  private readonly compare: CompareRun | null;
  /**
   * --compare: the capture time of the packet being handed to the engine (the comparison reads
   * it while the engine delivers that packet's bytes; doc/compare.md "Latency"); null without.
   */
  private readonly cmpTimes: CaptureTimes | null;

  /**
   * @param cfg the validated configuration
   * @param log the logger (wrapped so log lines never garble the status line)
   * @param io the edges; default the real ones (root needed for raw send and live capture)
   */
  constructor(
    private readonly cfg: TcpcopyConfig,
    log: Logger,
    private readonly io: ReplayIo = systemReplayIo(cfg),
  ) {
    this.input = resolveInput(cfg);
    const clock = io.clock;
    this.clock = clock;
    this.startedAt = clock.now();
    this.deadline = new DeadlineTimer(() => {
      this.engine.poll(clock.now());
      this.flushAll();
      this.arm();
    }, clock);
    this.live = new LiveStatus({
      style: cfg.statusStyle,
      intervalMs: cfg.statusIntervalMs,
      stream: io.stderr,
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
    this.compare = cfg.compare !== null ? new CompareRun(cfg.compare) : null;
    this.cmpTimes = this.compare?.comparison.times ?? null;
    this.engine = new ReplayEngine(
      engineConfig(transfers, {
        clientIps: cfg.clientIps,
        localhostIp: cfg.localhostIp,
        localhostIp6: cfg.localhostIp6,
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
        maxBacklogBytes: sessionBacklogOf(cfg.sessionBacklogKB, this.input.kind, holdsMessages(cfg)),
        module: this.compare !== null ? this.compare.moduleBeside(loadModule(cfg.module)) : loadModule(cfg.module),
        // the 1.x channel (no --secret-file) has IPv4 addresses only
        ipv6Channel: cfg.secretFile !== null,
      }),
      {
        packet: (buf, off, len) => this.sender?.send(buf, off, len),
        clientAdded: (ip, port, tip, tport, payload, max) =>
          this.channel?.addClient(ip, port, tip, tport, payload, max),
        clientRemoved: (ip, port, tip, tport) => this.channel?.delClient(ip, port, tip, tport),
      },
    );
  }

  /** Calls `fn` every `ms` on the runner's clock until the handle in `slot` is cleared. */
  private every(ms: number, fn: () => void, set: (h: TimerHandle | null) => void): void {
    const tick = (): void => {
      set(this.clock.setTimeout(tick, ms));
      fn();
    };
    set(this.clock.setTimeout(tick, ms));
  }

  /** Runs the replay to its end (offline: file replayed and drained; live: until stop()). Returns the exit code. */
  async run(): Promise<number> {
    const cfg = this.cfg;
    const io = this.io;
    // a report that cannot be written fails now, not after the whole replay
    if (cfg.reportFile !== null) io.checkReportFile(cfg.reportFile);
    this.sender = io.sender();
    this.channel = io.channel((buf, off, len, payload) => this.onRecord(buf, off, len, payload), {
      warn: (m) => this.log.warn(m),
      info: (m) => this.log.info(m),
    });
    // A lost intercept is counted, logged and reconnected (with backoff). Without -L tcpcopy
    // gives up when it stays down for DOWN_GRACE_MS; with -L it keeps replaying meanwhile.
    this.channel.onDown = (ev) => {
      if (ev.serverDown) this.engine.setChannelUp(false);
      if (!ev.serverDown || this.stopping || cfg.reconnect || this.downTimer !== null) return;
      // once per outage (a server that accepts and fails again reports many losses meanwhile)
      this.log.warn(
        `intercept ${ev.server} is down (${ev.reason}); reconnecting, giving up in ${DOWN_GRACE_MS / 1000} s (-L keeps running)`,
      );
      if (this.downTimer === null) {
        this.downTimer = this.clock.setTimeout(() => {
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
      this.engine.forEachClient((ip, port, tip, tport, payload, max) =>
        this.channel?.addClient(ip, port, tip, tport, payload, max),
      );
      this.channel?.flush();
    };
    await this.channel.connect();
    this.log.info(`connected to intercept ${cfg.intercepts.map((s) => `${s.host}:${s.port}`).join(', ')}`);
    this.announceModule();
    this.announceIpv6();
    const done = new Promise<void>((resolve) => (this.resolveDone = resolve));
    if (this.live.periodMs > 0)
      this.every(
        this.live.periodMs,
        () => this.status(),
        (h) => (this.statusTimer = h),
      );
    // --memory-budget: checked every CHECK_MS (src/run/memory-governor.ts)
    const budget = memoryBudgetOf(
      cfg.memoryBudgetMB,
      this.input.kind,
      cfg.compare !== null ? cfg.compare.settings.memoryMax / 1048576 : 0,
      holdsMessages(cfg),
    );
    if (budget > 0) {
      const gov = new MemoryGovernor(budget, this.engine, io.collectGarbage, this.log);
      this.governor = gov;
      this.every(
        CHECK_MS,
        () => gov.due(io.rssMB, this.clock.now()),
        (h) => (this.governorTimer = h),
      );
    }
    // -m is checked every second, whatever the status period
    if (cfg.memoryMB > 0)
      this.every(
        1000,
        () => this.checkMemory(),
        (h) => (this.memoryTimer = h),
      );
    if (cfg.metrics !== null) {
      this.metrics = await startMetricsServer(
        cfg.metrics,
        () => tcpcopyMetrics(this.report(), this.channel?.up ?? false) + (this.compare?.metrics() ?? ''),
      );
      this.log.info(`metrics at http://${this.metrics.address.host}:${this.metrics.address.port}/metrics`);
    }
    const input = this.input;
    if (input.kind === 'offline') {
      this.feed = io.feed({
        file: input.file,
        accelerate: cfg.accelerate,
        idleGapMs: cfg.idleGapMs,
        repeats: cfg.repeats,
        maxGapMs: cfg.maxGapMs,
        onLongGap: (gapMs, frame) => this.longGap(gapMs, frame),
      });
      await this.feed.open(this.clock.now());
      this.log.info(`replaying ${input.file} (-a ${cfg.accelerate}, -T ${cfg.repeats})`);
      void this.pumpOffline();
    } else if (input.kind === 'stream') {
      // agents and pcap streams, replayed as they arrive; each source is its own port variant (slot)
      this.stream = new StreamInput(input.stream, {
        secret: cfg.secretFile !== null ? readSecret(cfg.secretFile) : null,
        maxSlots: Math.max(1, Math.floor(1024 / cfg.replicas)),
        log: this.log,
        onEnd: () => this.onInputEnd(),
      });
      await this.stream.start(this);
      this.captures.push(this.stream);
      if (input.stream.kind === 'stdin') this.log.info('reading a pcap stream from standard input');
    } else {
      const devices = input.devices.length > 0 ? input.devices : ['any'];
      const online = this.engine.wantsOnlineReplies;
      const caps = liveCaptures(cfg, online);
      for (const [filter, direction] of caps)
        for (const cap of io.captures(devices, filter, direction)) {
          await cap.start(this);
          this.captures.push(cap);
        }
      const what = caps.map(([f, d]) => (d === 'in' ? `"${f}"` : `"${f}" (both directions)`)).join(' and ');
      this.log.info(`capturing on ${devices.join(',')} with filter ${what}`);
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

  /** Live capture: one frame; `slot` = the stream source's replay variant (-i tcp://), 0 otherwise. */
  packet(linkType: number, buf: Buffer, off: number, capLen: number, _origLen = 0, tsMs = 0, slot = 0): void {
    if (this.cmpTimes !== null) this.cmpTimes.at = tsMs > 0 ? tsMs : NaN;
    this.ingest(linkType, buf, off, capLen, slot, this.clock.now());
    if (this.cmpTimes !== null) this.cmpTimes.at = NaN;
  }

  /**
   * Live capture: end of a ring block. The flush is deferred to the check phase of this
   * event-loop turn, so ring blocks and channel reads that the same poll delivered leave in one
   * sendmmsg (one flush per turn, never a second setImmediate while one is queued).
   */
  batchEnd(): void {
    this.queueFlush();
    this.governor?.due(this.io.rssMB, this.clock.now());
  }

  /** Live capture: end of one ring block inside a batch: the memory governor's check (at most every CHECK_MS). */
  blockEnd(): void {
    this.governor?.due(this.io.rssMB, this.clock.now());
  }

  /** Offline feed: one frame due now. */
  frame(linkType: number, buf: Buffer, off: number, len: number, _origLen: number, rep: number, tsMs = 0): void {
    if (this.cmpTimes !== null) this.cmpTimes.at = tsMs > 0 ? tsMs : NaN;
    this.ingest(linkType, buf, off, len, rep, this.clock.now());
    if (this.cmpTimes !== null) this.cmpTimes.at = NaN;
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
    if (!this.engine.onClientPacket(this.seg, now, rep) && !this.engine.onOnlinePacket(this.seg, now))
      this.notForTransfers++;
  }

  /**
   * A 1.x channel (no --secret-file: the original intercept's format) holds IPv4 addresses only:
   * with an IPv6 transfer tcpcopy says at start-up that its IPv6 sessions will not be replayed
   * (they are counted, and their requests lost as 'noIpv6Channel').
   */
  private announceIpv6(): void {
    if (this.engine.cfg.ipv6Channel) return;
    const v6 = this.cfg.transfers.filter((t) => isIpv6(t.targetIp));
    if (v6.length === 0) return;
    this.log.warn(
      `IPv6 transfer${v6.length > 1 ? 's' : ''} ${v6.map((t) => `${t.onlinePort}-${endpointToString(t.targetIp, t.targetPort)}`).join(',')} over a 1.x channel: the 1.x channel (and the original intercept) carries IPv4 addresses only, so IPv6 sessions are NOT replayed (counted, their requests lost as 'noIpv6Channel'); fix: channel v2, the same --secret-file on tcpcopy and on this project's intercept`,
    );
  }

  /** Says at start-up which module runs and whether its sessions can get the target's reply payloads. */
  private announceModule(): void {
    const m = this.engine.cfg.module;
    if (m === null) return;
    const cfg = this.cfg;
    if (this.compare !== null) {
      const c = this.compare.choice;
      this.log.info(
        `comparing responses (--compare ${c.settings.mode}${c.settings.noise === 'off' ? '' : `, noise from ${c.settings.noise === 'reference' ? `reference ${c.settings.reference ?? ''}` : 'replicas 0 and 1'}`}): sessions ask intercept for whole reply payloads (intercept needs --payload-max 65535)${c.outDir !== null ? `; files in ${c.outDir}` : ''}`,
      );
      return;
    }
    const what = `module ${m.name}${m.wantsOnlineReplies ? " (also capturing the online server's replies)" : ''}`;
    if (!m.wantsTargetPayload) this.log.info(`replaying through ${what}`);
    else if (cfg.secretFile !== null)
      this.log.info(
        `replaying through ${what}; its sessions ask intercept for reply payloads (channel v2, up to intercept's --payload-max per reply)`,
      );
    else if (cfg.respPayload)
      this.log.warn(
        `replaying through ${what} over a 1.x channel with 192-byte records (--resp-payload): only replies of 1..${RECORD_MAX_PAYLOAD} payload bytes reach the module, longer ones arrive as missing bytes`,
      );
    else
      this.log.warn(
        `replaying through ${what}, but the 1.x channel carries no reply payloads: module payloads need channel v2 (--secret-file on tcpcopy and intercept; intercept's --payload-max caps each reply) or an original intercept built --with-resp-payload with --resp-payload here (payloads only 1..${RECORD_MAX_PAYLOAD} bytes)`,
      );
  }

  private async pumpOffline(): Promise<void> {
    const feed = this.feed;
    if (feed === null || this.stopping) return;
    try {
      const nextAt = await feed.pump(this, this.clock.now(), 2048);
      this.flushAll();
      this.arm(); // the engine's timers (SYN retries...) must run even when no reply ever comes
      if (nextAt === Infinity) {
        this.onInputEnd();
        return;
      }
      const wait = nextAt - this.clock.now();
      if (wait <= 0) this.clock.setImmediate(() => void this.pumpOffline());
      else this.clock.setTimeout(() => void this.pumpOffline(), Math.min(wait, 1000));
    } catch (e) {
      this.exitCode = EXIT.FAILURE;
      this.log.error((e as Error).message);
      this.stop('capture file error');
    }
  }

  private onInputEnd(): void {
    const feed = this.feed;
    if (feed !== null && feed.fatal !== null) {
      this.log.error(feed.fatal);
      this.exitCode = EXIT.FAILURE; // the file was not read to its end (doc/errors.md)
    }
    if (feed !== null && feed.longGaps > 0)
      this.log.warn(
        `${feed.longGaps} recorded gap(s) longer than --max-gap ${this.cfg.maxGapMs / 1000} s were skipped`,
      );
    this.log.info(
      `end of ${feed?.frames ?? this.stream?.stats().received ?? 0} frames; waiting for ${this.engine.busySessions()} sessions to finish`,
    );
    let lastProgress = this.progressMark();
    let lastChange = this.clock.now();
    const check = (): void => {
      this.endTimer = null;
      const busy = this.engine.busySessions();
      const mark = this.progressMark();
      if (mark !== lastProgress) {
        lastProgress = mark;
        lastChange = this.clock.now();
      }
      if (busy === 0 || this.clock.now() - lastChange > 10_000) {
        const open = this.engine.awaitingCloseSessions();
        if (open > 0)
          this.log.warn(
            `${open} sessions whose client closed were still open on the target after 10 s without progress: they are reset, and the target may not have read their last requests (counted replayed once acknowledged)`,
          );
        this.stop(busy === 0 ? 'capture replayed' : `capture replayed; ${busy} sessions made no progress for 10 s`);
      } else this.endTimer = this.clock.setTimeout(check, 50);
    };
    this.endTimer = this.clock.setTimeout(check, 50);
  }

  private progressMark(): string {
    const e = this.engine.stats;
    return `${e.packetsSent}/${e.replies}/${e.sessionsActive}`;
  }

  // ---- replies ----

  private onRecord(buf: Buffer, off: number, len: number, payload: ReplyPayload | null): void {
    const seg = this.replySeg;
    // IPv4: the 1.x record layout; IPv6 (channel v2): the record's 84-byte IPv6 packet
    if (parseIpTcp(buf, off, len, seg, true) !== 'ok') {
      this.engine.stats.repliesMalformed++;
      return;
    }
    if (this.cmpTimes !== null) this.cmpTimes.at = payload !== null ? payload.atMs : NaN;
    this.engine.onReply(seg, this.clock.now(), payload);
    if (this.cmpTimes !== null) this.cmpTimes.at = NaN;
    this.queueFlush();
  }

  /** Schedules one flushAll + arm at the end of this event-loop turn (setImmediate), once. */
  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    this.clock.setImmediate(this.flushTurn);
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
    const rss = this.io.rssMB();
    const now = this.clock.now();
    const gapWait = this.feed?.waitingMs(now) ?? 0;
    this.live.tick(
      this.engine.stats,
      now,
      this.feed?.progress() ?? null,
      this.channel?.up ?? false,
      rss,
      gapWait,
      this.compare?.status(),
    );
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
    const rss = this.io.rssMB();
    if (rss > this.cfg.memoryMB) {
      this.exitCode = EXIT.MEMORY;
      this.stop(`memory cap -m ${this.cfg.memoryMB} MiB exceeded (resident ${rss.toFixed(0)} MiB)`);
    }
  }

  private async shutdown(): Promise<void> {
    this.deadline.cancel();
    for (const t of [this.downTimer, this.statusTimer, this.memoryTimer, this.governorTimer, this.endTimer])
      if (t !== null) this.clock.clearTimeout(t);
    this.downTimer = this.statusTimer = this.memoryTimer = this.governorTimer = this.endTimer = null;
    for (const c of this.captures) await c.stop();
    this.engine.finish(this.clock.now());
    this.flushAll();
    await this.feed?.close();
    if (this.compare !== null) {
      try {
        await this.compare.finish();
      } catch (e) {
        this.log.error(`--compare-out ${this.compare.choice.outDir ?? ''}: ${(e as Error).message}`);
        this.exitCode = EXIT.FAILURE;
      }
    }
    const report = this.report();
    this.live.done();
    this.io.stdout.write(this.reportText(report) + '\n');
    await this.metrics?.close();
    if (this.cfg.reportFile !== null) this.writeJsonReport(this.cfg.reportFile, report);
    await this.channel?.close();
    this.sender?.close();
    this.resolveDone?.();
  }

  /** --report json:FILE at the end: a failure is logged (the text report is out already) and makes the exit code 1. */
  private writeJsonReport(file: string, report: ReplayReport): void {
    const json = {
      ...report,
      stopReason: this.stopReason,
      accounting: requestAccounting(report.engine, report.requestsInFlight, report.capture.agentDropped),
      hints: this.hints(report),
      ...(this.compare !== null ? { compare: this.compare.finalSummary } : {}),
    };
    try {
      this.io.writeReportFile(file, JSON.stringify(json, null, 2) + '\n');
    } catch (e) {
      this.log.error((e as Error).message);
      if (this.exitCode === EXIT.OK) this.exitCode = EXIT.FAILURE;
    }
  }

  /** Loss hints for the report (loss-hints.ts): the module in use, if any, silences the MySQL one. */
  private hints(report: ReplayReport): string[] {
    return lossHints(report.engine, this.cfg.transfers, report.engine.module?.name ?? null);
  }

  /** The text report with its hint lines. */
  private reportText(report: ReplayReport): string {
    const cmp = this.compare?.reportText() ?? '';
    return [
      formatReport(report),
      ...(cmp !== '' ? [cmp] : []),
      ...this.hints(report).map((h) => `  hint       ${h}`),
    ].join('\n');
  }

  /** The report as of now (also printed on SIGUSR1). */
  report(): ReplayReport {
    const sst = this.sender?.stats() ?? { sent: 0, failed: 0, retried: 0, lastError: '' };
    const ch = this.channel?.stats();
    const ru = process.resourceUsage();
    let dropped = 0;
    for (const c of this.captures) dropped += c.stats().dropped;
    return {
      mode: this.input.kind === 'stream' ? `stream ${this.cfg.input ?? ''}` : this.input.kind,
      durationS: (this.clock.now() - this.startedAt) / 1000,
      capture: {
        frames: this.feed?.frames ?? Object.values(this.decode).reduce((a, b) => a + b, 0),
        decode: { ...this.decode },
        notForTransfers: this.notForTransfers,
        dropped,
        damaged: this.feed?.damaged ?? 0,
        fatal: this.feed?.fatal ?? null,
        ...(this.stream !== null ? { agentDropped: this.stream.agentDropped(), sources: this.stream.sources() } : {}),
      },
      engine: this.engine.stats,
      requestsInFlight: this.engine.requestsInFlight(),
      channel: ch !== undefined ? { ...ch } : {},
      sender: { sent: sst.sent, failed: sst.failed, retried: sst.retried, lastError: sst.lastError },
      lag: lagSummary(this.engine.stats),
      process: { cpuUserS: ru.userCPUTime / 1e6, cpuSystemS: ru.systemCPUTime / 1e6, maxRssMB: ru.maxRSS / 1024 },
      ...(this.governor !== null
        ? {
            memoryBudget: {
              budgetMB: this.governor.budgetMB,
              ...this.governor.stats,
              closedMs: this.governor.closedMsAt(this.clock.now()),
            },
          }
        : {}),
    };
  }

  /** Prints the report now (SIGUSR1). */
  printReport(): void {
    this.live.around(() => this.io.stdout.write(this.reportText(this.report()) + '\n'));
  }
}

/**
 * `--session-backlog` in force, bytes (Infinity = no bound): 'auto' is LIVE_SESSION_BACKLOG_KB
 * when capturing from this host's devices, LIVE_MODULE_SESSION_BACKLOG_KB with a protocol
 * module or a comparison (`withModule`: their sessions hold messages during logins).
 */
export function sessionBacklogOf(v: number | 'auto', input: InputSpec['kind'], withModule = false): number {
  const live = withModule ? LIVE_MODULE_SESSION_BACKLOG_KB : LIVE_SESSION_BACKLOG_KB;
  const kb = v === 'auto' ? (input === 'live' ? live : 0) : v;
  return kb > 0 ? kb * 1024 : Infinity;
}

/** Whether sessions hold their messages during logins: a protocol module or a comparison. */
function holdsMessages(cfg: TcpcopyConfig): boolean {
  return cfg.module !== null || cfg.compare !== null;
}

/**
 * The memory budget in force, MiB (0 = none): 'auto' is LIVE_DEFAULT_BUDGET_MB when capturing
 * from this host's devices, LIVE_MODULE_DEFAULT_BUDGET_MB with a protocol module or a
 * comparison (`withModule`: their sessions hold messages during logins), plus `extraMB`
 * (--compare: its --compare-memory-max, which the comparison may hold on top of the replay).
 */
export function memoryBudgetOf(v: number | 'auto', input: InputSpec['kind'], extraMB = 0, withModule = false): number {
  if (v !== 'auto') return v;
  const base = withModule ? LIVE_MODULE_DEFAULT_BUDGET_MB : LIVE_DEFAULT_BUDGET_MB;
  return input === 'live' ? base + extraMB : 0;
}
