import type { EngineConfig } from './engine-config';
import { type EngineStats, newModuleStats } from './stats';
import { ModuleRuntime } from './engine-module';
import { Unreplayed } from './unreplayed';
import type { CapturedPiece } from './session/capture';
import { Session, SessionState } from './session/session';
import { TimerHeap } from './session/timer-heap';
import { UnitPool } from './session/unit-pool';
import { sendAck } from './session/transmit';
import { type TcpRepr, newTcpRepr } from './wire/build';

/** Where the engine's packets and channel registrations go (injected; tests record them). */
export interface EngineOutput {
  /** A complete IPv4 packet for the target, checksums filled. Copy it: `buf` is reused. */
  packet(buf: Buffer, off: number, len: number): void;
  /**
   * Tell every intercept about a client (CLIENT_ADD); always called before that session's SYN.
   * `payload`: the session wants the target's reply payloads (its module asks for them: channel
   * v2's CLIENT_ADD payload flag); false for sessions without a module (headers only).
   * `payloadMax`: the bytes per reply it asks for (the module's targetPayloadMax; 0: intercept's --payload-max).
   */
  clientAdded(
    clientIp: number,
    clientPort: number,
    targetIp: number,
    targetPort: number,
    payload: boolean,
    payloadMax: number,
  ): void;
  /** The session is over (CLIENT_DEL). */
  clientRemoved(clientIp: number, clientPort: number, targetIp: number, targetPort: number): void;
}

/**
 * The state of a ReplayEngine: config, counters, output, session tables, timers and reused
 * scratch space. The engine's paths (engine-lifecycle.ts, engine-reply.ts, engine-timers.ts,
 * session/transmit.ts) are plain functions over it.
 */
export class EngineState {
  /** The TCP header being built for the next packet (reused). */
  readonly repr: TcpRepr = newTcpRepr();
  /** Where packets are built (reused; the output must copy). */
  readonly scratch: Buffer;
  private ipId = 1;
  /** Per replay variant: original client ip:port -> the newest session of that connection. */
  readonly byCapture: Map<number, Session>[] = [];
  /** Replayed client ip:port -> the session that owns the target's replies to it. */
  readonly byReply = new Map<number, Session>();
  readonly timers = new TimerHeap<Session>();
  /** Sessions that owe the target an ACK, flushed by flushAcks(). */
  readonly ackQueue: Session[] = [];
  /** The captured client packet being fed, reused for every packet. */
  readonly piece: CapturedPiece = {
    seq: 0,
    buf: null,
    off: 0,
    len: 0,
    fin: false,
    rst: false,
    ackOk: false,
    ack: 0,
    tsVal: 0,
  };
  /** Recycled Units and payload chunks (no allocation per captured segment). */
  readonly pool = new UnitPool();
  /**
   * Sessions that ended since the last flush(), recycled there (not before: callers of
   * endSession still look at the ended session within the batch, and the ACK queue may hold it).
   */
  readonly ended: Session[] = [];
  /** Ended sessions ready for reuse by newSession (with `ended`, at most MAX_SPARE_SESSIONS). */
  readonly spareSessions: Session[] = [];
  /** Session objects created (not reused), for the benchmarks and tests. */
  sessionsAllocated = 0;
  /** Whether the intercept channel is up (told by the runner through setChannelUp). */
  channelUp = true;
  /** Whether new connections are replayed (false while the runner says tcpcopy is over its memory budget). */
  admitting = true;
  /** Connections seen but not replayed (sampling, -O, session cap, tails of ended replays). */
  readonly unreplayed: Unreplayed;
  /** The protocol module's runtime (engine-module.ts); null without a module. */
  readonly modules: ModuleRuntime | null = null;
  /** Sessions register with the payload flag (the module wants the target's reply payloads). */
  readonly wantsPayload: boolean = false;
  /** The payload bytes per reply they ask for (the module's targetPayloadMax; 0: intercept's --payload-max). */
  readonly payloadMax: number = 0;

  constructor(
    readonly cfg: EngineConfig,
    readonly stats: EngineStats,
    readonly out: EngineOutput,
  ) {
    this.scratch = Buffer.alloc(Math.max(cfg.mtu, 1500) + 128);
    this.unreplayed = new Unreplayed(cfg, stats);
    const mod = cfg.module;
    if (mod !== null) {
      stats.module = newModuleStats(mod.name);
      this.modules = new ModuleRuntime(this, mod, stats.module);
      this.wantsPayload = mod.wantsTargetPayload;
      this.payloadMax = mod.wantsTargetPayload ? Math.max(0, Math.floor(mod.targetPayloadMax ?? 0)) : 0;
    }
  }

  /** The IP identification of the next packet (16 bits, wrapping). */
  nextIpId(): number {
    this.ipId = (this.ipId + 1) & 0xffff;
    return this.ipId;
  }
}

/** Marks the session as owing the target an ACK (sent by flushAcks()). */
export function queueAck(e: EngineState, s: Session): void {
  if (!s.ackPending) {
    s.ackPending = true;
    e.ackQueue.push(s);
  }
}

/** Sends the ACKs owed for reply data received in this batch, then recycles the sessions that ended in it. */
export function flushAcks(e: EngineState): void {
  const q = e.ackQueue;
  for (let i = 0; i < q.length; i++) {
    const s = q[i] as (typeof q)[number];
    if (s.ackPending && s.state === SessionState.Established) sendAck(e, s);
    s.ackPending = false;
  }
  q.length = 0;
  recycleEnded(e);
}

/**
 * Spare Session objects kept for reuse. A short connection's Session (about 1 KiB with its
 * number fields) would otherwise be garbage a few milliseconds after it was made, and at
 * thousands of connections per second the young-generation GC copies and promotes them.
 */
const MAX_SPARE_SESSIONS = 4096;

/** Keeps an ended session for recycling at the next flush(), while spares and ended ones stay under MAX_SPARE_SESSIONS (the rest go to the GC). */
export function retireSession(e: EngineState, s: Session): void {
  if (e.ended.length + e.spareSessions.length < MAX_SPARE_SESSIONS) e.ended.push(s);
}

/** Moves the sessions that ended in this batch to the spare list. */
function recycleEnded(e: EngineState): void {
  const ended = e.ended;
  for (let i = 0; i < ended.length; i++) e.spareSessions.push(ended[i] as Session);
  ended.length = 0;
}

/** A Session for a new connection: a recycled one (reset) or a new one. */
export function takeSession(e: EngineState): Session {
  const s = e.spareSessions.pop();
  if (s === undefined) {
    e.sessionsAllocated++;
    return new Session();
  }
  s.reset();
  return s;
}
