/**
 * The comparison's result as data: summary.json's shape (read back by `tcpcopy compare-report`)
 * and the lines of diffs.jsonl.
 */
import type { FieldDiff, SkipReason } from './compare-http';
import type { CompareMode, NoiseSource } from './config';
import type { LatencySummary } from './latency';

/** Exchange counts; exchanges = compared + sum(skipped), compared = identical + different + noise. */
export interface CompareCounts {
  exchanges: number;
  compared: number;
  identical: number;
  /** Exchanges with at least one difference that is not noise. */
  different: number;
  /** Exchanges whose only differences are noise (noise cancellation on). */
  noise: number;
  skipped: Record<SkipReason, number>;
}

/** One field that differed on one endpoint. */
export interface FieldSummary {
  field: string;
  /** Exchanges where production and the target differ on it. */
  raw: number;
  /** Exchanges where the noise pair differs on it. */
  noise: number;
  /** Judged noise (not counted as a difference). */
  isNoise: boolean;
  kinds: Record<string, number>;
  /** A few examples: session, concrete path, both values. */
  examples: { session: string; path: string; a?: string; b?: string }[];
}

export interface EndpointSummary {
  endpoint: string;
  counts: CompareCounts;
  fields: FieldSummary[];
  latency: { online: LatencySummary; target: LatencySummary };
}

export interface CompareSummary {
  version: 1;
  mode: CompareMode;
  noise: NoiseSource;
  reference: string | null;
  thresholds: { relative: number; absolute: number };
  /** The rules as given (ignored headers with defaults, ignored paths, endpoint rules). */
  rules: { ignoreHeaders: string[]; ignorePaths: string[]; endpoints: string[] };
  totals: CompareCounts;
  /** The accounting identity holds (exchanges = compared + skipped). */
  identity: boolean;
  endpoints: EndpointSummary[];
  /** Production status x target status, counts (compared exchanges; 0 in bytes mode). */
  statusMatrix: { online: number; target: number; count: number }[];
  /** Lines written to diffs.jsonl, and lines not written (over --compare-diffs-max). */
  diffLines: number;
  diffLinesDropped: number;
  /**
   * How the compared exchanges' latencies were measured (doc/compare.md "Latency"): production's
   * from capture time stamps or engine time; the target's ending at intercept's capture time
   * stamp or when tcpcopy read the reply. Absent in files of earlier builds.
   */
  latencyClocks?: LatencyClocks;
  /** Bytes held for unpaired answers: the peak and the cap (--compare-memory-max); absent in files of earlier builds. */
  memory?: { peakHeldBytes: number; maxBytes: number };
  /**
   * Bytes mode with a protocol module: exchanges whose target reply the module rewrote for the
   * comparison (ProtocolModule.comparableReply: e.g. the target's statement id in a PREPARE_OK
   * put back to production's); absent in files of earlier builds.
   */
  rewrittenByModule?: number;
}

/** Counts of compared exchanges by how each side's latency was measured. */
export interface LatencyClocks {
  /** Production: capture time stamps of the request's and the response's last packets. */
  onlineCapture: number;
  /** Production: engine time (the input gave no capture times). */
  onlineEngine: number;
  /** The target: ends at intercept's capture time stamp, moved onto tcpcopy's clock. */
  targetStamped: number;
  /** The target: ends when tcpcopy read the reply (no stamps: a 1.x channel or an older intercept). */
  targetRead: number;
}

/** One line of diffs.jsonl: one differing exchange. */
export interface DiffLine {
  /** client ip:port > server ip:port of the captured connection. */
  session: string;
  /** The target it was replayed to (ip:port) and the replica number. */
  targetAddr: string;
  replica: number;
  index: number;
  endpoint: string;
  request: string;
  status: [number, number];
  latencyMs: [number, number];
  diffs: FieldDiff[];
  /** The start of both bodies (decoded as received, up to --compare-keep-bodies bytes; base64). */
  bodies?: { online: string; target: string };
}

export function emptyCounts(): CompareCounts {
  return {
    exchanges: 0,
    compared: 0,
    identical: 0,
    different: 0,
    noise: 0,
    skipped: { truncated: 0, memory: 0, noTargetResponse: 0, noOnlineResponse: 0, unparsable: 0 },
  };
}

/** True when exchanges = compared + skipped and compared = identical + different + noise. */
export function countsHold(c: CompareCounts): boolean {
  const s = Object.values(c.skipped).reduce((a, b) => a + b, 0);
  return c.exchanges === c.compared + s && c.compared === c.identical + c.different + c.noise;
}
