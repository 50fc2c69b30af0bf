/**
 * Runs a whole Replay (capture -> engine -> sender, channel) on a ManualClock against a
 * SimNetwork: the pieces a test needs, wired as the real runner wires them.
 */
import { parseTcpcopyArgs } from '../../src/cli/tcpcopy-config';
import type { TcpcopyConfig } from '../../src/config/tcpcopy-config';
import type { Logger } from '../../src/io/logger';
import type { TextOut } from '../../src/io/types';
import { Replay } from '../../src/run/replay';
import type { ReplayIo } from '../../src/run/replay-io';
import { checkReportFile, writeReportFile } from '../../src/run/report-file';
import { ManualClock } from './manual-clock';
import { SimCapture, type SimCaptureOptions, type SimLinkOptions, SimNetwork } from './network';
import { ONLINE_IP, ONLINE_PORT, SimTarget, type SynthShape, TARGET_IP, TARGET_PORT } from './target';
import { ipToString } from '../../src/core/wire/segment';

/** Text written to a simulated stdout/stderr. */
export class TextSink implements TextOut {
  text = '';
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

/** A logger that keeps its lines ("level: message"). */
export class LineLog implements Logger {
  readonly lines: string[] = [];
  debug(): void {}
  info(m: string): void {
    this.lines.push(`info: ${m}`);
  }
  warn(m: string): void {
    this.lines.push(`warn: ${m}`);
  }
  error(m: string): void {
    this.lines.push(`error: ${m}`);
  }
  close(): void {}
}

/** tcpcopy's configuration for the simulated transfer (live input "sim0"), with extra argv. */
export function simConfig(extra: readonly string[] = []): TcpcopyConfig {
  const cfg = parseTcpcopyArgs([
    '-x',
    `${ipToString(ONLINE_IP)}:${ONLINE_PORT}-${ipToString(TARGET_IP)}:${TARGET_PORT}`,
    '-s',
    '198.18.0.3',
    '--status',
    '0',
    ...extra,
  ]);
  return { ...cfg, input: 'sim0' };
}

/** Everything of one simulated replay. */
export interface SimReplay {
  clock: ManualClock;
  net: SimNetwork;
  capture: SimCapture;
  replay: Replay;
  log: LineLog;
  stdout: TextSink;
  stderr: TextSink;
  /** The io the replay got (tests may look at what it was asked for). */
  io: ReplayIo & { asked: string[] };
  /** The resident set the replay reads (MiB; a test sets it) and the full collections it asked for. */
  memory: { rssMB: number; collections: number };
}

/** Builds a Replay on a manual clock and a simulated network (nothing runs until driven). */
export function simReplay(
  shape: SynthShape,
  pace: SimCaptureOptions,
  link: SimLinkOptions,
  cfg: TcpcopyConfig = simConfig(),
): SimReplay {
  const clock = new ManualClock();
  const net = new SimNetwork(clock, new SimTarget(shape.respLen), link);
  const capture = new SimCapture(clock, shape, pace);
  const stdout = new TextSink();
  const stderr = new TextSink();
  const asked: string[] = [];
  const memory = { rssMB: 64, collections: 0 };
  const io: ReplayIo & { asked: string[] } = {
    asked,
    clock,
    sender: () => {
      asked.push('sender');
      return net.sender;
    },
    channel: (onRecord) => {
      asked.push('channel');
      return net.channel((buf, off, len) => onRecord(buf, off, len, null));
    },
    captures: () => {
      asked.push('captures');
      return [capture];
    },
    feed: () => {
      throw new Error('the simulated replay is live');
    },
    stdout,
    stderr,
    checkReportFile,
    writeReportFile,
    rssMB: () => memory.rssMB,
    collectGarbage: () => {
      memory.collections++;
    },
  };
  const log = new LineLog();
  return { clock, net, capture, replay: new Replay(cfg, log, io), log, stdout, stderr, io, memory };
}

/** Lets pending promise callbacks run (a real event-loop turn; no simulated time passes). */
export function settle(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

/**
 * Runs the manual clock step by step (letting promises settle between steps) until `cond()`
 * holds or `limitMs` of simulated time passed or nothing is left to run. Returns cond().
 */
export async function drive(clock: ManualClock, cond: () => boolean, limitMs: number): Promise<boolean> {
  const end = clock.now() + limitMs;
  for (;;) {
    await settle();
    if (cond()) return true;
    if (!clock.step(end)) {
      await settle();
      return cond();
    }
  }
}
