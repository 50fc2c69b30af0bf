/**
 * Offline replay of a large capture at full speed, without a network: a synthesized pcap
 * (Ethernet frames, both directions as a NIC capture has them) is read by the runner's
 * OfflineFeed (-a 0), decoded with decodeFrame and fed to ReplayEngine exactly as
 * src/run/replay.ts does, with SimTarget standing in for raw send, target and intercept.
 * Prints records/s and CPU µs per request (simulated target included).
 *
 * Also the memory figure: 100,000 connections opened (SYN, handshake ACK, one request each)
 * and never closed, with the target answering (sessions established and idle) or silent
 * (sessions in SYN-SENT holding their request); RSS and heap per session after a GC.
 */
import { rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ReplayEngine } from '../src/core/engine';
import { engineConfig } from '../src/core/engine-config';
import { decodeFrame, parseIpv4Tcp } from '../src/core/wire/decode';
import { LINKTYPE_ETHERNET } from '../src/core/wire/link';
import { newSegment } from '../src/core/wire/segment';
import { PcapWriter } from '../src/io/capture-file/writer';
import { OfflineFeed, type OfflineFrameSink } from '../src/run/offline-feed';
import { gc, GcCounter, type GcFigures } from './engine';
import {
  clientSteps,
  ONLINE_IP,
  ONLINE_PORT,
  SimTarget,
  type SynthShape,
  TARGET_IP,
  TARGET_PORT,
  writeClientPacket,
  writeServerPacket,
} from './sim';

const TRANSFER = [{ onlineIp: ONLINE_IP, onlinePort: ONLINE_PORT, targetIp: TARGET_IP, targetPort: TARGET_PORT }];

/** Options of the synthesized capture. */
export interface SynthCaptureOptions extends SynthShape {
  /** Connections in the file. */
  sessions: number;
  /** Connections open at once in the recording (they advance round-robin). */
  concurrent: number;
}

/** Writes the capture; returns its records and size. */
export function synthesizeCapture(
  file: string,
  o: SynthCaptureOptions,
): { records: number; bytes: number; seconds: number } {
  const t0 = performance.now();
  const w = PcapWriter.create(file, LINKTYPE_ETHERNET, { bufferBytes: 4 << 20 });
  const buf = Buffer.alloc(4096);
  buf.fill(0, 0, 12);
  buf.writeUInt16BE(0x0800, 12);
  const steps = clientSteps(o);
  let ts = 1.7e12;
  for (let base = 0; base < o.sessions; base += o.concurrent) {
    const end = Math.min(o.sessions, base + o.concurrent);
    for (let step = 0; step < steps; step++) {
      for (let i = base; i < end; i++) {
        const n = writeClientPacket(buf, 14, i, step, o);
        w.write(ts, buf, 0, 14 + n);
        ts += 0.01;
        const m = writeServerPacket(buf, 14, i, step, o);
        if (m > 0) {
          w.write(ts, buf, 0, 14 + m);
          ts += 0.01;
        }
      }
    }
  }
  w.close();
  return { records: w.records, bytes: statSync(file).size, seconds: (performance.now() - t0) / 1000 };
}

/** What the offline run measured. */
export interface OfflineBenchResult {
  sessions: number;
  requestsPerSession: number;
  records: number;
  fileMB: number;
  seconds: number;
  cpuSeconds: number;
  recordsPerSec: number;
  requestsReplayed: number;
  requestsPerSec: number;
  cpuUsPerRequest: number;
  completed: number;
  gc: GcFigures;
  peakRssMB: number;
}

/** The runner's offline path (feed -> decodeFrame -> engine) with the simulator. */
export async function runOfflineBench(o: SynthCaptureOptions, log: (s: string) => void): Promise<OfflineBenchResult> {
  const file = join(tmpdir(), `tcs-bench-${process.pid}.pcap`);
  try {
    const syn = synthesizeCapture(file, o);
    log(
      `offline: synthesized ${syn.records} records (${(syn.bytes / 1048576).toFixed(0)} MiB, ${o.sessions} sessions x ${o.requests} requests) in ${syn.seconds.toFixed(1)} s`,
    );
    const sim = new SimTarget(o.respLen);
    const engine = new ReplayEngine(engineConfig(TRANSFER), sim);
    const seg = newSegment();
    let notOurs = 0;
    let bad = 0;
    let now = performance.timeOrigin + performance.now();
    const sink: OfflineFrameSink = {
      frame(linkType: number, buf: Buffer, off: number, len: number, _orig: number, rep: number): void {
        if (decodeFrame(linkType, buf, off, len, seg) !== 'ok') {
          bad++;
          return;
        }
        if (!engine.onClientPacket(seg, now, rep)) notOurs++;
      },
    };
    gc();
    const gcc = new GcCounter();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const feed = new OfflineFeed({ file, accelerate: 0, idleGapMs: 0, repeats: 1 });
    await feed.open(now);
    for (;;) {
      now = performance.timeOrigin + performance.now();
      const next = await feed.pump(sink, now, 256);
      sim.drain(engine, now);
      engine.flush();
      if (engine.nextDeadline() <= now) engine.poll(now);
      if (next === Infinity) break;
    }
    engine.poll(now);
    sim.drain(engine, now);
    await feed.close();
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const gcf = await gcc.stop();
    const st = engine.stats;
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    if (bad > 0 || notOurs !== syn.records - st.clientPackets)
      log(`offline: WARNING decode failures ${bad}, not ours ${notOurs}`);
    return {
      sessions: o.sessions,
      requestsPerSession: o.requests,
      records: feed.frames,
      fileMB: syn.bytes / 1048576,
      seconds,
      cpuSeconds,
      recordsPerSec: feed.frames / seconds,
      requestsReplayed: st.requestsReplayed,
      requestsPerSec: st.requestsReplayed / seconds,
      cpuUsPerRequest: (cpuSeconds * 1e6) / Math.max(1, st.requestsReplayed),
      completed: st.outcomes.completed,
      gc: gcf,
      peakRssMB: process.resourceUsage().maxRSS / 1024,
    };
  } finally {
    rmSync(file, { force: true });
  }
}

/** What the memory run measured. */
export interface MemoryBenchResult {
  sessions: number;
  targetAnswers: boolean;
  activeSessions: number;
  rssMB: number;
  heapUsedMB: number;
  /** Heap bytes per open session (growth over the empty engine). */
  heapBytesPerSession: number;
  seconds: number;
}

/** 100k (by default) connections that stay open: SYN, handshake ACK and one request each. */
export async function runMemoryBench(sessions: number, answer: boolean): Promise<MemoryBenchResult> {
  const sh: SynthShape = { requests: 1, reqLen: 120, respLen: 300 };
  const sim = new SimTarget(sh.respLen, answer);
  const engine = new ReplayEngine(engineConfig(TRANSFER), sim);
  const buf = Buffer.alloc(2048);
  const seg = newSegment();
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  const now = 1_000_000;
  for (let step = 0; step < 3; step++) {
    for (let i = 0; i < sessions; i++) {
      const len = writeClientPacket(buf, 0, i, step, sh);
      parseIpv4Tcp(buf, 0, len, seg);
      engine.onClientPacket(seg, now);
      if ((i & 255) === 255) sim.drain(engine, now);
    }
    sim.drain(engine, now);
  }
  engine.flush();
  const seconds = (performance.now() - t0) / 1000;
  gc();
  const mu = process.memoryUsage();
  return {
    sessions,
    targetAnswers: answer,
    activeSessions: engine.activeSessions,
    rssMB: mu.rss / 1048576,
    heapUsedMB: mu.heapUsed / 1048576,
    heapBytesPerSession: (mu.heapUsed - heap0) / sessions,
    seconds,
  };
}
