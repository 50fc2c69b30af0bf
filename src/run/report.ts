import { OUTCOMES, type EngineStats, type ModuleStats, lagPercentile } from '../core/stats';
import type { StreamSourceInfo } from '../io/stream-input';

/** Everything the final report says: engine counters plus the edges' own. */
export interface ReplayReport {
  /** 'offline' or 'live'. */
  mode: string;
  /** Seconds the replay ran. */
  durationS: number;
  /** Capture side: frames read, decode results, packets of no transfer. */
  capture: {
    frames: number;
    decode: Record<string, number>;
    notForTransfers: number;
    dropped: number;
    damaged: number;
    fatal: string | null;
    /**
     * -i tcp:// / -i -: requests the agents dropped before they reached this replayer (their
     * dropped TCP segments with payload; loss reason `agentDropped`).
     */
    agentDropped?: number;
    /** -i tcp:// / -i -: every agent and pcap stream seen (src/io/stream-input.ts). */
    sources?: StreamSourceInfo[];
  };
  engine: EngineStats;
  /** Requests in sessions still open, counted from the sessions (ReplayEngine.requestsInFlight()). */
  requestsInFlight: number;
  channel: Record<string, number>;
  sender: { sent: number; failed: number; retried: number; lastError: string };
  /** Replay lag percentiles (ms, bucket upper bounds). */
  lag: { p50: number; p90: number; p99: number; samples: number };
  /** CPU seconds used by this process (user + system) and peak RSS in MiB. */
  process: { cpuUserS: number; cpuSystemS: number; maxRssMB: number };
  /** --memory-budget (when one is in force): the budget and what the governor did (src/run/memory-governor.ts). */
  memoryBudget?: {
    budgetMB: number;
    overBudget: number;
    collections: number;
    sessionsShed: number;
    /** Sessions with nothing waiting ended early over the budget (no request lost). */
    sessionsIdleEnded: number;
    closedMs: number;
  };
}

/** The request accounting: captured = replayed + lost by reason + in flight, and what that leaves unexplained. */
export interface RequestAccounting {
  /** Requests captured, including sampled-out and -O ones. */
  captured: number;
  /** Requests sent and acknowledged by the target. */
  replayed: number;
  /** Requests not replayed, by reason; `inFlight` (when non-zero) is still open in live sessions. */
  lost: Record<string, number>;
  /** Requests in sessions still open (ReplayEngine.requestsInFlight()); 0 after the engine finished. */
  inFlight: number;
  /**
   * captured - replayed - lost - inFlight: requests the counters cannot explain (a bug). Not
   * hidden in any loss reason; the report prints it on its own line and `balanced` is false.
   */
  unexplained: number;
  /** True when nothing is unexplained (captured = replayed + lost + inFlight). */
  balanced: boolean;
}

/**
 * Requests lost per reason, including sampling, and the identity replayed + lost + in flight =
 * captured. `inFlight` is counted from the sessions still open (ReplayEngine.requestsInFlight());
 * whatever remains is `unexplained`. Without `inFlight` (the live status line, which has only
 * the counters) the remainder is shown as in flight and not checked.
 */
export function requestAccounting(e: EngineStats, inFlight?: number, agentDropped = 0): RequestAccounting {
  const lost: Record<string, number> = { sampledOut: e.requestsSampledOut };
  if (e.requestsNoSyn > 0) lost['noSyn'] = e.requestsNoSyn;
  if (e.requestsNoIpv6Channel > 0) lost['noIpv6Channel'] = e.requestsNoIpv6Channel;
  // requests an agent dropped never reached the engine: captured (by the agent) and lost
  if (agentDropped > 0) lost['agentDropped'] = agentDropped;
  let lostTotal = e.requestsSampledOut + e.requestsNoSyn + e.requestsNoIpv6Channel + agentDropped;
  for (const o of OUTCOMES) {
    const n = e.requestsLost[o];
    if (n > 0) {
      lost[o] = n;
      lostTotal += n;
    }
  }
  // a module's reasons, named after it: `mysql: unknownUser`
  const m = e.module;
  if (m !== null)
    for (const [reason, n] of Object.entries(m.lost))
      if (n > 0) {
        lost[`${m.name}: ${reason}`] = n;
        lostTotal += n;
      }
  const captured = e.requestsCaptured + e.requestsSampledOut + e.requestsNoSyn + e.requestsNoIpv6Channel + agentDropped;
  const remainder = captured - e.requestsReplayed - lostTotal;
  const open = inFlight ?? remainder;
  if (open !== 0) lost['inFlight'] = open;
  const unexplained = remainder - open;
  return { captured, replayed: e.requestsReplayed, lost, inFlight: open, unexplained, balanced: unexplained === 0 };
}

/** Human-readable final report. */
export function formatReport(r: ReplayReport): string {
  const e = r.engine;
  const acc = requestAccounting(e, r.requestsInFlight, r.capture.agentDropped ?? 0);
  const lines: string[] = [];
  lines.push(`tcpcopy report (${r.mode}, ${r.durationS.toFixed(1)} s)`);
  lines.push(
    `  captured   ${r.capture.frames} frames, ${e.clientPackets} client packets of the transfers, ${r.capture.notForTransfers} others, ${r.capture.dropped} dropped by the kernel`,
  );
  for (const s of r.capture.sources ?? [])
    lines.push(
      `  source     slot ${s.slot}: ${s.kind} ${s.name} (${s.remote}${s.agentId !== '' ? `, id ${s.agentId}` : ''}), ${s.packets} packets, ${s.connections} connection(s), agent dropped ${s.droppedPackets} packets in ${s.droppedFrames} batches (${s.agentDropped} with payload), ${s.kernelDropped} kernel drops${s.clockSkewMs !== null ? `, clock skew ${s.clockSkewMs.toFixed(0)} ms` : ''}`,
    );
  const bad = Object.entries(r.capture.decode).filter(([k, v]) => k !== 'ok' && v > 0);
  if (bad.length > 0) lines.push(`  not decoded ${bad.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  if (r.capture.damaged > 0 || r.capture.fatal !== null)
    lines.push(
      `  capture file: ${r.capture.damaged} damaged records${r.capture.fatal !== null ? `; ${r.capture.fatal}` : ''}`,
    );
  lines.push(
    `  sessions   ${e.sessionsCreated} replayed (${e.sessionsSynthesized} mid-stream, ${e.sessionsQueued} behind a closing one on a reused client port), ${e.sessionsSampledOut} sampled out, ${e.sessionsNoSyn} skipped (-O), ${e.sessionsActive} still open${e.sessionsNoIpv6Channel > 0 ? `, ${e.sessionsNoIpv6Channel} IPv6 not replayed (1.x channel: needs --secret-file on both sides)` : ''}`,
  );
  lines.push(
    `  outcomes   ${
      OUTCOMES.filter((o) => e.outcomes[o] > 0)
        .map((o) => `${o}=${e.outcomes[o]}`)
        .join(' ') || '-'
    }`,
  );
  lines.push(`  requests   ${acc.captured} captured, ${acc.replayed} replayed (acknowledged by the target)`);
  const lostEntries = Object.entries(acc.lost).filter(([, v]) => v > 0);
  lines.push(`  lost       ${lostEntries.length === 0 ? 'none' : lostEntries.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  lines.push(
    acc.unexplained === 0
      ? `  unexplained none (captured = replayed + lost${acc.inFlight !== 0 ? ' + in flight' : ''})`
      : `  unexplained ${acc.unexplained} requests: captured ${acc.captured} != replayed ${acc.replayed} + lost ${acc.captured - acc.replayed - acc.unexplained - acc.inFlight} + in flight ${acc.inFlight} (UNBALANCED: a counting bug, please report it)`,
  );
  if (r.capture.dropped > 0)
    // the accounting starts at what was read: requests in frames the kernel dropped are in no count
    lines.push(
      `  not seen   ${r.capture.dropped} captured frames dropped by the kernel before tcpcopy read them: their requests are in none of the counts above (the online server served more than "captured" says; raise -B or lower the load)`,
    );
  if (e.module !== null) lines.push(...moduleLines(e.module));
  lines.push(
    `  packets    ${e.packetsSent} sent (${e.synsSent} SYN, ${e.acksSent} ACK, ${e.resetsSent} RST), ${e.retransTimeout + e.retransFast} retransmitted, ${r.sender.failed} send failures${r.sender.lastError !== '' ? ` (${r.sender.lastError})` : ''}${e.resetsIgnored > 0 ? `, ${e.resetsIgnored} target RSTs ignored (outside the window: an older connection's)` : ''}`,
  );
  lines.push(
    `  replies    ${e.replies} reported by intercept, ${e.replyBytes} reply bytes, ${e.repliesNoSession} without a session`,
  );
  lines.push(
    `  lag        p50 <= ${r.lag.p50} ms, p90 <= ${r.lag.p90} ms, p99 <= ${r.lag.p99} ms (${r.lag.samples} samples)`,
  );
  lines.push(
    `  channel    ${Object.entries(r.channel)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
  );
  lines.push(
    `  process    cpu ${r.process.cpuUserS.toFixed(2)} s user + ${r.process.cpuSystemS.toFixed(2)} s system, peak RSS ${r.process.maxRssMB.toFixed(0)} MiB`,
  );
  const mb = r.memoryBudget;
  if (mb !== undefined)
    lines.push(
      `  memory     budget ${mb.budgetMB} MiB: over it ${mb.overBudget} time(s), new connections refused for ${(mb.closedMs / 1000).toFixed(1)} s, ${mb.sessionsShed} session(s) given up, ${mb.sessionsIdleEnded} idle session(s) with nothing waiting ended early, ${mb.collections} full collection(s)`,
    );
  return lines.join('\n');
}

/** `k=v k=v`, or `-` when empty. */
function pairs(r: Record<string, number>): string {
  const p = Object.entries(r).filter(([, v]) => v !== 0);
  return p.length === 0 ? '-' : p.map(([k, v]) => `${k}=${v}`).join(' ');
}

/** The report's module lines: verdicts, endings by reason, the module's counters, the reply bytes it got. */
export function moduleLines(m: ModuleStats): string[] {
  const lines = [
    `  module     ${m.name}: ${m.messages} messages (${m.replaced} replaced, ${m.dropped} dropped, ${m.held} held (${m.holdExpired} past their limit), ${m.inserted} inserted, ${m.sent} sent by the module), ${m.requestsUnneeded} requests not needed; sessions ended: ${pairs(m.ended)}; counters: ${pairs(m.counters)}`,
    `             reply bytes to the module: target ${m.target.bytes} (+${m.target.missing} missing), online ${m.online.bytes} (+${m.online.missing} missing)`,
  ];
  if (m.errors > 0) lines.push(`             ${m.errors} module errors (last: ${m.lastError})`);
  return lines;
}

/** Lag percentiles of the engine's histogram. */
export function lagSummary(e: EngineStats): ReplayReport['lag'] {
  return { p50: lagPercentile(e, 50), p90: lagPercentile(e, 90), p99: lagPercentile(e, 99), samples: e.lagCount };
}
