/**
 * The comparison of one run: opens an observer per replayed session, pairs each finished
 * exchange with its noise partner (the reference target's, or the other replica's, when noise
 * cancellation is on), compares, counts per endpoint and field, and at the end judges noise
 * the Diffy way: a field counts as a difference only where production vs the target differs
 * more often than the noise pair does, by both thresholds.
 */
import { compareBytes, compareResponses, SKIP_REASONS, type FieldDiff, type SkipReason } from './compare-http';
import type { CompareConfig } from './config';
import { LatencyHistogram } from './latency';
import { endpointName } from './rules';
import {
  BytesSessionObserver,
  HttpSessionObserver,
  type Exchange,
  type ExchangeObserver,
  type CaptureTimes,
  type MemoryBudget,
} from './session';
import {
  countsHold,
  emptyCounts,
  type CompareCounts,
  type CompareSummary,
  type DiffLine,
  type EndpointSummary,
  type LatencyClocks,
} from './summary';

/** The session being opened, as the engine knows it (captured addresses, before -c). */
export interface CompareSessionInfo {
  readonly clientIp: string;
  readonly clientPort: number;
  readonly serverIp: string;
  readonly serverPort: number;
  readonly targetIp: string;
  readonly targetPort: number;
}

/** Where differing exchanges go (diffs.jsonl, or a test's array). */
export type DiffSink = (line: DiffLine) => void;

interface Field {
  raw: number;
  noise: number;
  kinds: Record<string, number>;
  examples: { session: string; path: string; a?: string; b?: string }[];
}

interface Endpoint {
  counts: CompareCounts;
  fields: Map<string, Field>;
  /** Exchanges with raw differences, by the sorted set of their fields (judged at the end). */
  signatures: Map<string, number>;
  online: LatencyHistogram;
  target: LatencyHistogram;
}

interface Done {
  ex: Exchange;
  session: string;
  targetAddr: string;
  replica: number;
  role: 'candidate' | 'reference';
}

/** Most distinct field sets kept per endpoint (more are merged into one). */
const MAX_SIGNATURES = 1000;
/** Most fields kept per endpoint. */
const MAX_FIELDS = 500;
const EXAMPLES = 3;
/** Most request paths whose endpoint name is remembered. */
const NAMES_MAX = 10_000;

export class Comparison {
  readonly budget: MemoryBudget;
  /** The capture time of the packet being delivered: the runner sets it (CaptureTimes). */
  readonly times: CaptureTimes = { at: NaN };
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly matrix = new Map<number, number>();
  private readonly open = new Map<string, number>();
  private readonly generation = new Map<string, number>();
  private readonly pending = new Map<string, Done>();
  private diffLines = 0;
  private readonly names = new Map<string, string>();
  private diffLinesDropped = 0;
  /** Peak of budget.held (bytes). */
  peakHeld = 0;
  /** Exchanges whose target bytes the protocol module's comparableReply changed. */
  rewrittenByModule = 0;
  private readonly clocks: LatencyClocks = { onlineCapture: 0, onlineEngine: 0, targetStamped: 0, targetRead: 0 };

  constructor(
    readonly cfg: CompareConfig,
    private readonly sink: DiffSink,
    /** Most lines written to the sink (more are counted). Default 100000. */
    private readonly diffsMax = 100000,
  ) {
    this.budget = { held: 0, max: cfg.memoryMax };
  }

  /**
   * Opens the observer of a new replayed session. `view` (bytes mode, from a protocol module's
   * comparableReply): the target's bytes of an exchange as compared, given production's.
   */
  openSession(s: CompareSessionInfo, view?: (online: Buffer, target: Buffer) => Buffer): ExchangeObserver {
    const session = `${s.clientIp}:${s.clientPort}>${s.serverIp}:${s.serverPort}`;
    const targetAddr = `${s.targetIp}:${s.targetPort}`;
    const openKey = `${session}|${targetAddr}`;
    const replica = this.open.get(openKey) ?? 0;
    this.open.set(openKey, replica + 1);
    let role: Done['role'] = 'candidate';
    if (this.cfg.noise === 'reference' && targetAddr === this.cfg.reference) role = 'reference';
    if (this.cfg.noise === 'replicas' && replica % 2 === 1) role = 'reference';
    const genKey = `${session}|${role}`;
    const gen = this.generation.get(genKey) ?? 0;
    this.generation.set(genKey, gen + 1);
    const group = `${session}#${gen}`;
    const limits = { bodyMax: this.cfg.bodyMax, sessionMax: this.cfg.sessionMax };
    const onEx = (ex: Exchange): void => {
      if (view !== undefined && ex.onlineBytes !== null && ex.targetBytes !== null) {
        const b = view(ex.onlineBytes, ex.targetBytes);
        if (b !== ex.targetBytes) {
          this.rewrittenByModule++;
          ex.targetBytes = b;
        }
      }
      this.exchange(group, { ex, session, targetAddr, replica, role });
    };
    const obs =
      this.cfg.mode === 'http'
        ? new HttpSessionObserver(limits, this.budget, onEx)
        : new BytesSessionObserver(limits, this.budget, onEx);
    let ended = false;
    return {
      clientBytes: (d, now, at, pos) => obs.clientBytes(d, now, at ?? this.times.at, pos),
      onlineBytes: (d, m, now, at, acked) => {
        obs.onlineBytes(d, m, now, at ?? this.times.at, acked);
        if (this.budget.held > this.peakHeld) this.peakHeld = this.budget.held;
      },
      targetBytes: (d, m, now, at, acked) => {
        obs.targetBytes(d, m, now, at ?? this.times.at, acked);
        if (this.budget.held > this.peakHeld) this.peakHeld = this.budget.held;
      },
      inserted: (sent, len) => (obs as ExchangeObserver).inserted?.(sent, len),
      end: (now) => {
        if (ended) return;
        ended = true;
        obs.end(now);
        const n = (this.open.get(openKey) ?? 1) - 1;
        if (n <= 0) this.open.delete(openKey);
        else this.open.set(openKey, n);
      },
    };
  }

  private exchange(group: string, d: Done): void {
    if (this.cfg.noise === 'off') return this.judge(d, null);
    const key = `${group}/${d.ex.index}`;
    const other = this.pending.get(key);
    if (other === undefined) {
      if (this.pending.size >= this.cfg.pendingMax) {
        const [k0, o0] = this.pending.entries().next().value as [string, Done];
        this.pending.delete(k0);
        this.judgeAlone(o0);
      }
      this.pending.set(key, d);
      return;
    }
    this.pending.delete(key);
    if (other.role === d.role) {
      this.judgeAlone(other);
      this.judgeAlone(d);
    } else if (d.role === 'candidate') this.judge(d, other);
    else this.judge(other, d);
  }

  /** An exchange whose noise partner never came: judged for production vs its target only. */
  private judgeAlone(d: Done): void {
    if (d.role === 'candidate') this.judge(d, null);
  }

  private endpoint(name: string): Endpoint {
    let e = this.endpoints.get(name);
    if (!e) {
      e = {
        counts: emptyCounts(),
        fields: new Map(),
        signatures: new Map(),
        online: new LatencyHistogram(),
        target: new LatencyHistogram(),
      };
      this.endpoints.set(name, e);
    }
    return e;
  }

  private diffsOf(a: Exchange, b: Exchange | null): FieldDiff[] | SkipReason {
    if (this.cfg.mode === 'bytes')
      return compareBytes(a.onlineBytes ?? Buffer.alloc(0), (b ?? a).targetBytes ?? Buffer.alloc(0));
    const v = compareResponses(
      a.online as NonNullable<Exchange['online']>,
      (b ?? a).targetResp as NonNullable<Exchange['targetResp']>,
      this.cfg.rules,
      this.cfg.bodyMax,
    );
    return 'skipped' in v ? v.skipped : v.diffs;
  }

  private judge(c: Done, ref: Done | null): void {
    const ex = c.ex;
    const name =
      this.cfg.mode === 'http'
        ? this.endpointOf(ex.method, ex.target)
        : `:${c.session.split('>')[1]?.split(':').pop() ?? ''}`;
    const e = this.endpoint(name);
    e.counts.exchanges++;
    if (ex.skipped !== null) {
      e.counts.skipped[ex.skipped]++;
      return;
    }
    const raw = this.diffsOf(ex, null);
    if (typeof raw === 'string') {
      e.counts.skipped[raw]++;
      return;
    }
    e.counts.compared++;
    e.online.add(ex.onlineMs);
    e.target.add(ex.targetMs);
    const lc = this.clocks;
    if (ex.onlineCaptured) lc.onlineCapture++;
    else lc.onlineEngine++;
    if (ex.targetStamped) lc.targetStamped++;
    else lc.targetRead++;
    if (this.cfg.mode === 'http') {
      const k = (ex.online?.status ?? 0) * 1000 + (ex.targetResp?.status ?? 0);
      this.matrix.set(k, (this.matrix.get(k) ?? 0) + 1);
    }
    // the noise pair: production vs the reference target, or the candidate replica vs the other
    if (ref !== null && ref.ex.skipped === null) {
      let noise: FieldDiff[] | SkipReason;
      if (this.cfg.noise === 'reference') noise = this.diffsOf(ex, ref.ex);
      else if (this.cfg.mode === 'bytes')
        noise = compareBytes(ex.targetBytes ?? Buffer.alloc(0), ref.ex.targetBytes ?? Buffer.alloc(0));
      else {
        const v = compareResponses(
          ex.targetResp as NonNullable<Exchange['targetResp']>,
          ref.ex.targetResp as NonNullable<Exchange['targetResp']>,
          this.cfg.rules,
          this.cfg.bodyMax,
        );
        noise = 'skipped' in v ? v.skipped : v.diffs;
      }
      if (typeof noise !== 'string') for (const f of new Set(noise.map((d) => d.field))) this.field(e, f).noise++;
    }
    if (raw.length === 0) {
      e.counts.identical++;
      return;
    }
    const fields = [...new Set(raw.map((d) => d.field))].sort();
    for (const d of raw) {
      const f = this.field(e, d.field);
      f.kinds[d.kind] = (f.kinds[d.kind] ?? 0) + 1;
      if (f.examples.length < EXAMPLES && !f.examples.some((x) => x.path === d.path && x.a === d.a && x.b === d.b))
        f.examples.push({
          session: c.session,
          path: d.path,
          ...(d.a === undefined ? {} : { a: d.a }),
          ...(d.b === undefined ? {} : { b: d.b }),
        });
    }
    for (const f of fields) this.field(e, f).raw++;
    const sig = e.signatures.size < MAX_SIGNATURES ? fields.join('\n') : '*';
    e.signatures.set(sig, (e.signatures.get(sig) ?? 0) + 1);
    e.counts.different++; // provisional: noise is judged at the end
    this.line(c, name, raw);
  }

  /** endpointName, remembered per method and path (bounded: forgotten all at once beyond NAMES_MAX). */
  private endpointOf(method: string, target: string): string {
    const q = target.search(/[?#]/);
    const key = `${method} ${q < 0 ? target : target.slice(0, q)}`;
    let n = this.names.get(key);
    if (n === undefined) {
      if (this.names.size >= NAMES_MAX) this.names.clear();
      n = endpointName(method, target, this.cfg.rules);
      this.names.set(key, n);
    }
    return n;
  }

  private field(e: Endpoint, name: string): Field {
    let f = e.fields.get(name);
    if (!f) {
      f = { raw: 0, noise: 0, kinds: {}, examples: [] };
      if (e.fields.size < MAX_FIELDS) e.fields.set(name, f);
    }
    return f;
  }

  private line(c: Done, endpoint: string, diffs: FieldDiff[]): void {
    if (this.diffLines >= this.diffsMax) {
      this.diffLinesDropped++;
      return;
    }
    this.diffLines++;
    const ex = c.ex;
    const line: DiffLine = {
      session: c.session,
      targetAddr: c.targetAddr,
      replica: c.replica,
      index: ex.index,
      endpoint,
      request: this.cfg.mode === 'http' ? `${ex.method} ${ex.target}` : '',
      status: [ex.online?.status ?? 0, ex.targetResp?.status ?? 0],
      latencyMs: [round(ex.onlineMs), round(ex.targetMs)],
      diffs,
    };
    const k = this.cfg.keepBodies;
    if (k > 0) {
      const a = this.cfg.mode === 'http' ? ex.online?.body : ex.onlineBytes;
      const b = this.cfg.mode === 'http' ? ex.targetResp?.body : ex.targetBytes;
      line.bodies = {
        online: (a ?? Buffer.alloc(0)).subarray(0, k).toString('base64'),
        target: (b ?? Buffer.alloc(0)).subarray(0, k).toString('base64'),
      };
    }
    this.sink(line);
  }

  /** Is this field noise? Diffy: raw > noise and relative and absolute differences over the thresholds. */
  private isNoise(f: Field, exchanges: number): boolean {
    if (this.cfg.noise === 'off') return false;
    const delta = Math.abs(f.raw - f.noise);
    const rel = f.raw + f.noise === 0 ? 0 : (delta / (f.raw + f.noise)) * 100;
    const abs = exchanges === 0 ? 0 : (delta / exchanges) * 100;
    return !(f.raw > f.noise && rel > this.cfg.relativeThreshold && abs > this.cfg.absoluteThreshold);
  }

  /** Live counts (status line, metrics): differences not yet judged for noise. */
  counts(): CompareCounts {
    const t = emptyCounts();
    for (const e of this.endpoints.values()) add(t, e.counts);
    return t;
  }

  /** Settles exchanges still waiting for a partner (call once every session has ended). */
  finish(): void {
    for (const d of this.pending.values()) this.judgeAlone(d);
    this.pending.clear();
  }

  /** The result (noise judged). */
  summary(): CompareSummary {
    const totals = emptyCounts();
    const endpoints: EndpointSummary[] = [];
    for (const [name, e] of [...this.endpoints].sort((x, y) => (x[0] < y[0] ? -1 : 1))) {
      const c: CompareCounts = { ...e.counts, skipped: { ...e.counts.skipped } };
      const base = c.compared;
      const noiseFields = new Set<string>();
      for (const [fname, f] of e.fields) if (this.isNoise(f, base)) noiseFields.add(fname);
      c.different = 0;
      c.noise = 0;
      for (const [sig, n] of e.signatures) {
        const real = sig === '*' || sig.split('\n').some((f) => !noiseFields.has(f));
        if (real) c.different += n;
        else c.noise += n;
      }
      c.identical = c.compared - c.different - c.noise;
      add(totals, c);
      endpoints.push({
        endpoint: name,
        counts: c,
        fields: [...e.fields]
          .map(([field, f]) => ({
            field,
            raw: f.raw,
            noise: f.noise,
            isNoise: noiseFields.has(field),
            kinds: f.kinds,
            examples: f.examples,
          }))
          .filter((f) => f.raw > 0)
          .sort((a, b) => b.raw - a.raw || (a.field < b.field ? -1 : 1)),
        latency: { online: e.online.summary(), target: e.target.summary() },
      });
    }
    const r = this.cfg.rules;
    return {
      version: 1,
      mode: this.cfg.mode,
      noise: this.cfg.noise,
      reference: this.cfg.reference,
      thresholds: { relative: this.cfg.relativeThreshold, absolute: this.cfg.absoluteThreshold },
      rules: {
        ignoreHeaders: r.ignoreHeaders.map((x) => x.text),
        ignorePaths: r.ignorePaths.map((x) => x.text),
        endpoints: r.endpoints.map((x) => `${x.pattern.source}=${x.name}`),
      },
      totals,
      identity: countsHold(totals),
      endpoints,
      statusMatrix: [...this.matrix]
        .sort((a, b) => a[0] - b[0])
        .map(([k, count]) => ({ online: Math.floor(k / 1000), target: k % 1000, count })),
      diffLines: this.diffLines,
      diffLinesDropped: this.diffLinesDropped,
      latencyClocks: { ...this.clocks },
      memory: { peakHeldBytes: this.peakHeld, maxBytes: this.cfg.memoryMax },
      rewrittenByModule: this.rewrittenByModule,
    };
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function add(t: CompareCounts, c: CompareCounts): void {
  t.exchanges += c.exchanges;
  t.compared += c.compared;
  t.identical += c.identical;
  t.different += c.different;
  t.noise += c.noise;
  for (const r of SKIP_REASONS) t.skipped[r] += c.skipped[r];
}
