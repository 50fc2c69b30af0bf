/**
 * The engine's counters: plain numbers in one object that the status line, the final report
 * and the metrics endpoint all read (observability as data: the core counts, the edges log).
 */
import type { OrderStats } from './session/byte-order';

/** How a replayed session ended; every session ends in exactly one outcome. */
export const OUTCOMES = [
  /** Every captured byte was sent and acknowledged, and the connection was closed (or idle-finished). */
  'completed',
  /** The captured client reset the connection; the reset was replayed. */
  'clientReset',
  /** The target reset the connection before all captured data was acknowledged. */
  'targetReset',
  /** The target answered the SYN with a RST (nothing listens on the target port). */
  'targetRefused',
  /** The target never answered the SYN (retries exhausted): closed port, no route back, intercept down. */
  'targetNoHandshake',
  /** The target stopped acknowledging data (retransmissions exhausted) or stopped answering a request. */
  'targetTimeout',
  /** The session sat idle longer than -t / -k. */
  'idleTimeout',
  /**
   * The intercept channel was down: the session's handshake timed out during an outage, or it
   * ended (timeout, idle, unfinished) while the channel was down, so the target's replies were never seen.
   */
  'channelDown',
  /** A client segment was missing from the capture for too long: ended cleanly, nothing garbled sent. */
  'captureGap',
  /** Ended early because a newer connection reused its client address and port. */
  'superseded',
  /** Ended because the memory cap (-m) or the session cap was reached. */
  'evicted',
  /**
   * Not replayed, or ended, because tcpcopy was over its memory budget (--memory-budget): a
   * connection that began while it was over, or the session with the most requests waiting
   * when refusing new ones was not enough.
   */
  'overload',
  /**
   * Ended because the captured data waiting in it (not yet acknowledged by the target) passed
   * the per-session bound (`--session-backlog`): tcpcopy fell that far behind the client
   * (starved of CPU, or a target slower than production); the rest of the connection is
   * counted, not replayed.
   */
  'backlog',
  /** Still open when the replay stopped (end of offline replay, shutdown). */
  'unfinished',
  /** The protocol module ended it with a named reason (`EngineStats.module.ended`; its requests are lost with that reason). */
  'moduleEnded',
] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** Counters of the replay engine. All monotonic except the gauges marked so. */
export interface EngineStats {
  /** Client->server packets handed to the engine (after decoding and transfer matching). */
  clientPackets: number;
  /** Client payload bytes captured. */
  clientBytes: number;
  /** Client segments that were retransmissions/duplicates of bytes already captured. */
  clientDuplicates: number;
  /** Client segments dropped: they belong to no session and could not start one (pure ACK, -O without SYN, RST). */
  clientOrphans: number;
  /**
   * Captured packets to a target address (a transfer without an online address matches any
   * destination of its port): tcpcopy's own packets to the target, read back by a capture of
   * both directions (a module that wants the online replies). Ignored, never replayed.
   */
  clientToTarget: number;
  /** Sessions created (SYN seen, or first data seen mid-stream). */
  sessionsCreated: number;
  /** Of those, sessions whose SYN was synthesized (captured mid-stream). */
  sessionsSynthesized: number;
  /** New connections from a client address and port whose previous replay was still closing: started once it ended, not lost. */
  sessionsQueued: number;
  /** Sessions skipped by sampling (-r / -g). */
  sessionsSampledOut: number;
  /** Connections skipped because -O was given and their SYN was not captured (once per connection and replay variant). */
  sessionsNoSyn: number;
  /** IPv6 connections not replayed because the channel is 1.x (IPv4-only; EngineConfig.ipv6Channel false), once per connection and variant. */
  sessionsNoIpv6Channel: number;
  /** Gauge: sessions in the table now. */
  sessionsActive: number;
  /** Sessions ended, by outcome. */
  outcomes: Record<Outcome, number>;
  /** Requests (client data that starts an exchange) captured for replayed sessions. */
  requestsCaptured: number;
  /** Requests captured in sampled-out sessions (counted as lost by 'sampledOut'). */
  requestsSampledOut: number;
  /** Requests captured in connections skipped by -O (no SYN captured); counted as lost by 'noSyn'. */
  requestsNoSyn: number;
  /** Requests captured in IPv6 connections not replayed over a 1.x channel; counted as lost by 'noIpv6Channel'. */
  requestsNoIpv6Channel: number;
  /** Requests sent to the target and acknowledged by it. */
  requestsReplayed: number;
  /** Requests lost, by the outcome of the session that lost them. */
  requestsLost: Record<Outcome, number>;
  /** Packets emitted toward the target (all kinds). */
  packetsSent: number;
  /** Bytes (IP total length) emitted toward the target. */
  bytesSent: number;
  /** Data bytes sent (first transmissions only). */
  payloadBytesSent: number;
  /** SYNs sent (including retries). */
  synsSent: number;
  /** Pure ACKs sent for target data. */
  acksSent: number;
  /** Retransmitted segments after a timeout. */
  retransTimeout: number;
  /** Retransmitted segments after three duplicate ACKs. */
  retransFast: number;
  /** Zero-window probes sent. */
  windowProbes: number;
  /** RSTs sent (replayed client resets, superseded or evicted sessions). */
  resetsSent: number;
  /** Target RSTs outside the receive window (RFC 9293 3.10.7.4: an older connection's, or forged), ignored. */
  resetsIgnored: number;
  /** Reply headers received from intercept. */
  replies: number;
  /** Reply payload bytes reported (from IP total lengths). */
  replyBytes: number;
  /** Replies for which no session exists (late, or another tcpcopy's). */
  repliesNoSession: number;
  /** Replies that did not parse. */
  repliesMalformed: number;
  /** Lag samples: target's first reply time minus the captured time of the request (ms), log2 histogram. */
  lagHistogram: number[];
  /** Number of lag samples. */
  lagCount: number;
  /** Sum of the lag samples, ms (for the metrics histogram's _sum). */
  lagSumMs: number;
  /** The protocol module's counters (`--module`); null without a module. */
  module: ModuleStats | null;
}

/** Counters of the protocol module (src/modules/api.ts), by the names the module declares. */
export interface ModuleStats {
  /** The module's name (`mysql`, a user's own). */
  name: string;
  /** Sessions the module ended, by reason (their outcome is 'moduleEnded'). */
  ended: Record<string, number>;
  /**
   * Requests lost by module reason: dropped with a reason, or not yet replayed when the module
   * ended the session (and the rest of that connection). In the accounting as `name: reason`.
   */
  lost: Record<string, number>;
  /** The module's own counters (ClientActions/TargetActions.count). */
  counters: Record<string, number>;
  /** Captured requests the module dropped without a reason (not needed): counted as replayed. */
  requestsUnneeded: number;
  /** Client messages offered to the module, and those it replaced, dropped, held (each offer) and inserted. */
  messages: number;
  replaced: number;
  dropped: number;
  held: number;
  inserted: number;
  /** Held messages the module held again after their hold limit passed: dropped, lost as `holdExpired`. */
  holdExpired: number;
  /** Messages the module sent from its target/online callbacks (TargetActions.send). */
  sent: number;
  /** The target's reply payload as delivered to onTargetBytes (in order, once). */
  target: OrderStats;
  /** The online server's captured replies delivered to onOnlineBytes (wantsOnlineReplies). */
  online: OrderStats;
  /** Module calls that threw or broke the API (ended as reason 'moduleError'); the last message. */
  errors: number;
  lastError: string;
}

/** Counters of a module named `name`, all zero. */
export function newModuleStats(name: string): ModuleStats {
  return {
    name,
    ended: {},
    lost: {},
    counters: {},
    requestsUnneeded: 0,
    messages: 0,
    replaced: 0,
    dropped: 0,
    held: 0,
    inserted: 0,
    holdExpired: 0,
    sent: 0,
    target: { bytes: 0, missing: 0, held: 0, notHeld: 0, duplicates: 0 },
    online: { bytes: 0, missing: 0, held: 0, notHeld: 0, duplicates: 0 },
    errors: 0,
    lastError: '',
  };
}

/** Sum of the module's lost requests (0 without a module). */
export function moduleLostTotal(s: EngineStats): number {
  let n = 0;
  if (s.module !== null) for (const v of Object.values(s.module.lost)) n += v;
  return n;
}

/** Lag histogram buckets: bucket i counts lags in [2^(i-1), 2^i) ms, bucket 0 counts < 1 ms. */
export const LAG_BUCKETS = 24;

export function newEngineStats(): EngineStats {
  const outcomes = {} as Record<Outcome, number>;
  const lost = {} as Record<Outcome, number>;
  for (const o of OUTCOMES) {
    outcomes[o] = 0;
    lost[o] = 0;
  }
  return {
    clientPackets: 0,
    clientBytes: 0,
    clientDuplicates: 0,
    clientOrphans: 0,
    clientToTarget: 0,
    sessionsCreated: 0,
    sessionsSynthesized: 0,
    sessionsQueued: 0,
    sessionsSampledOut: 0,
    sessionsNoSyn: 0,
    sessionsNoIpv6Channel: 0,
    sessionsActive: 0,
    outcomes,
    requestsCaptured: 0,
    requestsSampledOut: 0,
    requestsNoSyn: 0,
    requestsNoIpv6Channel: 0,
    requestsReplayed: 0,
    requestsLost: lost,
    packetsSent: 0,
    bytesSent: 0,
    payloadBytesSent: 0,
    synsSent: 0,
    acksSent: 0,
    retransTimeout: 0,
    retransFast: 0,
    windowProbes: 0,
    resetsSent: 0,
    resetsIgnored: 0,
    replies: 0,
    replyBytes: 0,
    repliesNoSession: 0,
    repliesMalformed: 0,
    lagHistogram: new Array<number>(LAG_BUCKETS).fill(0),
    lagCount: 0,
    lagSumMs: 0,
    module: null,
  };
}

/** Adds one lag sample (ms) to the histogram. */
export function recordLag(s: EngineStats, lagMs: number): void {
  let b = 0;
  if (lagMs >= 1) b = Math.min(LAG_BUCKETS - 1, 1 + Math.floor(Math.log2(lagMs)));
  s.lagHistogram[b] = (s.lagHistogram[b] ?? 0) + 1;
  s.lagCount++;
  s.lagSumMs += lagMs;
}

/** Approximate percentile (0..100) of the lag histogram, as the bucket's upper bound in ms. */
export function lagPercentile(s: EngineStats, p: number): number {
  if (s.lagCount === 0) return 0;
  const want = Math.ceil((p / 100) * s.lagCount);
  let acc = 0;
  for (let i = 0; i < LAG_BUCKETS; i++) {
    acc += s.lagHistogram[i] ?? 0;
    if (acc >= want) return i === 0 ? 1 : 2 ** i;
  }
  return 2 ** (LAG_BUCKETS - 1);
}
