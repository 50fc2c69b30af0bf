import { internIpv6 } from '../core/wire/ipv6';
import type { RecordHandler } from '../channel/payload';
import { fullCollector } from '../io/full-gc';
import type { TcpcopyConfig } from '../config/tcpcopy-config';
import { readSecret } from '../channel/secret';
import { ChannelClient, type ChannelLog } from '../io/channel-client';
import { FrameSender, parseMac } from '../io/frame-sender';
import { RawSender } from '../io/raw-sender';
import { RingCapture } from '../io/ring-capture';
import type { Clock, PacketSender, PacketSource, ReplyChannel, SenderStats, TextOut } from '../io/types';
import { SYSTEM_CLOCK } from '../io/system-clock';
import { liveRingGeometry } from './live-input';
import { OfflineFeed, type OfflineFeedOptions } from './offline-feed';
import { checkReportFile, writeReportFile } from './report-file';

/** What the runner needs of an offline feed (OfflineFeed; a test may pass its own). */
export type FrameFeed = Pick<
  OfflineFeed,
  'open' | 'pump' | 'close' | 'progress' | 'frames' | 'damaged' | 'fatal' | 'fatalCode' | 'longGaps' | 'waitingMs'
>;

/**
 * Everything a Replay touches outside itself: time, packet input, packet output, the channel
 * to intercept, text output and the report file. {@link systemReplayIo} builds the real ones
 * (raw sockets, live capture: root); a test passes a manual clock and a simulated network.
 */
export interface ReplayIo {
  /** The runner's clock and timers (the engine's `now`). */
  readonly clock: Clock;
  /** The sender of the replayed packets; called once, in run(). */
  sender(): PacketSender;
  /** The channel to intercept, handing each reply record to `onRecord`; called once, in run(). */
  channel(onRecord: RecordHandler, log: ChannelLog): ReplyChannel;
  /**
   * Live input: one packet source per device (`-i`), capturing with the BPF `filter`; `direction`
   * 'in' (default: client->server packets arrive) or 'both' (a module also wants the online
   * server's replies, which leave the host).
   */
  captures(devices: readonly string[], filter: string, direction?: 'in' | 'both'): PacketSource[];
  /** Offline input: the feed of the capture file. */
  feed(opts: OfflineFeedOptions): FrameFeed;
  /** Where the final report (and SIGUSR1's) goes: stdout. */
  readonly stdout: TextOut;
  /** Where the status line goes: stderr. */
  readonly stderr: TextOut;
  /** `--report json:FILE`: throws ERR_REPORT_FILE at start-up when FILE cannot be written. */
  checkReportFile(file: string): void;
  /** Writes the JSON report (temporary file + rename); throws ERR_REPORT_FILE on failure. */
  writeReportFile(file: string, text: string): void;
  /** Resident set size now, MiB (-m, --memory-budget, the status line). */
  readonly rssMB: () => number;
  /** Runs a full garbage collection (the memory governor, --memory-budget); null when it cannot. */
  readonly collectGarbage: (() => void) | null;
}

/**
 * -o: Ethernet frames, each to the `@mac` of its packet's target (a packet to a target
 * without one is not sent, as before). The source MAC is the online side's `@mac` of the first
 * transfer that gives one (as the original writes it), else the device's own address.
 */
class MacRoutedSender implements PacketSender {
  private readonly frames: FrameSender;
  /** Next-hop MAC (6 bytes, parsed once) by target address, from the transfers' `@mac`. */
  private readonly macByTarget = new Map<number, Buffer>();

  constructor(cfg: TcpcopyConfig, device: string) {
    for (const t of cfg.transfers) {
      const mac = t.targetMac !== null ? parseMac(t.targetMac) : null;
      if (mac !== null) this.macByTarget.set(t.targetIp, mac);
    }
    const first = cfg.transfers.find((t) => t.targetMac !== null);
    const src = cfg.transfers.find((t) => t.onlineMac !== null)?.onlineMac;
    this.frames = new FrameSender({
      device,
      dstMac: first?.targetMac ?? '00:00:00:00:00:00',
      ...(src !== undefined && src !== null ? { srcMac: src } : {}),
    });
  }

  send(buf: Buffer, off: number, len: number): void {
    // the target address: IPv4 at 16, IPv6 (its id, the transfers' own) at 24
    const v6 = (buf[off] as number) >>> 4 === 6;
    const mac = this.macByTarget.get(v6 ? internIpv6(buf, off + 24) : buf.readUInt32BE(off + 16));
    if (mac !== undefined) this.frames.sendTo(mac, buf, off, len);
  }

  flush(): void {
    this.frames.flush();
  }

  stats(): SenderStats {
    return this.frames.stats();
  }

  close(): void {
    this.frames.close();
  }
}

/** The real edges: raw send (or -o Ethernet), ChannelClient, ring capture, the capture file, stdout/stderr, the file system. */
export function systemReplayIo(cfg: TcpcopyConfig): ReplayIo {
  return {
    clock: SYSTEM_CLOCK,
    sender: () => (cfg.sendDevice !== null ? new MacRoutedSender(cfg, cfg.sendDevice) : new RawSender()),
    channel: (onRecord, log) =>
      new ChannelClient(
        {
          servers: cfg.intercepts,
          connections: cfg.connections,
          reconnect: true,
          recordBytes: cfg.respPayload ? 192 : 64,
          autoFlush: false,
          // --compare asks for whole replies: an intercept with a lower --payload-max is warned about
          payloadWanted: cfg.compare !== null ? 65535 : 0,
          // and intercept's capture times: the target's response times (doc/compare.md "Latency")
          stamps: cfg.compare !== null,
          ...(cfg.secretFile !== null ? { secret: readSecret(cfg.secretFile) } : {}),
        },
        onRecord,
        log,
      ),
    captures: (devices, filter, direction = 'in') =>
      devices.map(
        (device) =>
          new RingCapture({
            device,
            filter,
            snaplen: cfg.snaplen,
            bufferMB: cfg.bufferMB,
            direction,
            // --compare: production's response times come from the capture's time stamps
            timestamps: cfg.compare !== null,
            ...liveRingGeometry(cfg.snaplen, cfg.captureDelayMs),
          }),
      ),
    feed: (opts) => new OfflineFeed(opts),
    stdout: process.stdout,
    stderr: process.stderr,
    checkReportFile,
    writeReportFile,
    rssMB: () => process.memoryUsage.rss() / 1048576,
    collectGarbage: fullCollector(),
  };
}
