/**
 * An intercept: capture (a PacketSource) -> decode -> InterceptCore -> ChannelServer.
 * The capture is injected, so tests run the whole packet path with a fake source.
 */
import { decodeFrame } from '../core/wire/decode';
import { newSegment } from '../core/wire/segment';
import type { PacketReceiver, PacketSource, SourceStats } from '../io/types';
import { InterceptCore, type InterceptCoreOptions } from './core';
import { writeStamp } from '../channel/v2';
import { clock } from '../io/system-clock';
import { ChannelServer, type ChannelServerOptions } from './server';
import type { InterceptStats, Logger } from './types';

/** Period of route and hold expiry (core.tick), ms. */
const TICK_MS = 100;

/** Options of an Intercept (the validated CLI config maps onto it). */
export interface InterceptOptions extends InterceptCoreOptions, ChannelServerOptions {
  /**
   * Period of the housekeeping timer, ms: route and hold expiry, and a safety flush of records
   * (they are written at the end of every capture batch and after every tcpcopy message, so
   * nothing normally waits for it). Default 100. Each tick wakes the process (30-50 µs of CPU on
   * a VM), which is why it is not the original's 5 ms.
   */
  flushMs?: number;
}

/** Everything an intercept counts, capture included. */
export interface InterceptReport extends InterceptStats {
  /** Counters of the capture (frames received, kernel drops). */
  capture: SourceStats;
}

/** A running intercept. */
export class Intercept implements PacketReceiver {
  /** The routing core (exposed for tests and status output). */
  readonly core: InterceptCore;
  private readonly server: ChannelServer;
  private readonly seg = newSegment();
  private now = Date.now();
  private timer: NodeJS.Timeout | null = null;
  private lastTick = 0;
  private boundPort = 0;

  constructor(
    private readonly opts: InterceptOptions,
    private readonly source: PacketSource,
    private readonly log: Logger,
  ) {
    this.server = new ChannelServer(opts, log);
    // stamps (sessions that ask): the capture's own time of the packet, else the clock now
    const stamp =
      opts.stamp ??
      (source.writeStamp !== undefined
        ? (out: Buffer, off: number): void => source.writeStamp?.(out, off)
        : (out: Buffer, off: number): void => {
            const ms = clock();
            writeStamp(out, off, Math.floor(ms / 1000), Math.round((ms % 1000) * 1e6) % 1e9);
          });
    this.core = new InterceptCore({ ...opts, stamp }, this.server.out, log);
  }

  /** The channel port actually bound (useful with port 0). */
  get port(): number {
    return this.boundPort;
  }

  /** Listens for tcpcopy, then starts the capture. */
  async start(): Promise<void> {
    this.boundPort = await this.server.listen(this.core);
    const flushMs = this.opts.flushMs ?? TICK_MS;
    this.timer = setInterval(() => this.onTimer(), flushMs);
    try {
      await this.source.start(this);
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  private onTimer(): void {
    this.now = Date.now();
    if (this.core.pending) this.core.flush();
    if (this.now - this.lastTick >= TICK_MS - 1) {
      // - 1: an interval may fire a millisecond early
      this.lastTick = this.now;
      this.core.tick(this.now);
    }
  }

  /** PacketReceiver: one captured reply. */
  packet(linkType: number, buf: Buffer, off: number, capLen: number): void {
    // both families: IPv6 clients are registered by channel v2 peers only (46-byte CLIENT_ADD)
    if (decodeFrame(linkType, buf, off, capLen, this.seg) === 'ok') this.core.reply(this.seg, this.now);
    else this.core.undecodable();
  }

  /** PacketReceiver: end of a capture batch: flush the frames. */
  batchEnd(nowMs: number): void {
    this.now = nowMs;
    this.core.flush();
  }

  /** Stops the capture and the server (flushing what is pending). Idempotent. */
  async stop(): Promise<void> {
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
    await this.source.stop();
    this.core.flush();
    await this.server.close();
  }

  /** A snapshot of every counter. */
  stats(): InterceptReport {
    return { ...this.core.stats(), capture: this.source.stats() };
  }
}
