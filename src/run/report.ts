import { OUTCOMES, type EngineStats, lagPercentile } from '../core/stats';

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
  };
  engine: EngineStats;
  channel: Record<string, number>;
  sender: { sent: number; failed: number; retried: number; lastError: string };
  /** Replay lag percentiles (ms, bucket upper bounds). */
  lag: { p50: number; p90: number; p99: number; samples: number };
  /** CPU seconds used by this process (user + system) and peak RSS in MiB. */
  process: { cpuUserS: number; cpuSystemS: number; maxRssMB: number };
}

/** Requests lost per reason, including sampling, and the identity replayed + lost = captured. */
export function requestAccounting(e: EngineStats): {
  captured: number;
  replayed: number;
  lost: Record<string, number>;
  balanced: boolean;
} {
  const lost: Record<string, number> = { sampledOut: e.requestsSampledOut };
  if (e.requestsNoSyn > 0) lost['noSyn'] = e.requestsNoSyn;
  let lostTotal = e.requestsSampledOut + e.requestsNoSyn;
  for (const o of OUTCOMES) {
    const n = e.requestsLost[o];
    if (n > 0) {
      lost[o] = n;
      lostTotal += n;
    }
  }
  const captured = e.requestsCaptured + e.requestsSampledOut + e.requestsNoSyn;
  const inFlight = captured - e.requestsReplayed - lostTotal;
  if (inFlight !== 0) lost['inFlight'] = inFlight;
  return { captured, replayed: e.requestsReplayed, lost, balanced: inFlight === 0 };
}

/** Human-readable final report. */
export function formatReport(r: ReplayReport): string {
  const e = r.engine;
  const acc = requestAccounting(e);
  const lines: string[] = [];
  lines.push(`tcpcopy report (${r.mode}, ${r.durationS.toFixed(1)} s)`);
  lines.push(
    `  captured   ${r.capture.frames} frames, ${e.clientPackets} client packets of the transfers, ${r.capture.notForTransfers} others, ${r.capture.dropped} dropped by the kernel`,
  );
  const bad = Object.entries(r.capture.decode).filter(([k, v]) => k !== 'ok' && v > 0);
  if (bad.length > 0) lines.push(`  not decoded ${bad.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  if (r.capture.damaged > 0 || r.capture.fatal !== null)
    lines.push(
      `  capture file: ${r.capture.damaged} damaged records${r.capture.fatal !== null ? `; ${r.capture.fatal}` : ''}`,
    );
  lines.push(
    `  sessions   ${e.sessionsCreated} replayed (${e.sessionsSynthesized} mid-stream, ${e.sessionsQueued} behind a closing one on a reused client port), ${e.sessionsSampledOut} sampled out, ${e.sessionsNoSyn} skipped (-O), ${e.sessionsActive} still open`,
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
    `  packets    ${e.packetsSent} sent (${e.synsSent} SYN, ${e.acksSent} ACK, ${e.resetsSent} RST), ${e.retransTimeout + e.retransFast} retransmitted, ${r.sender.failed} send failures${r.sender.lastError !== '' ? ` (${r.sender.lastError})` : ''}`,
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
  return lines.join('\n');
}

/** Lag percentiles of the engine's histogram. */
export function lagSummary(e: EngineStats): ReplayReport['lag'] {
  return { p50: lagPercentile(e, 50), p90: lagPercentile(e, 90), p99: lagPercentile(e, 99), samples: e.lagCount };
}
