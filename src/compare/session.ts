/**
 * The per-session observers the comparison attaches to a replayed session: fed the captured
 * client bytes, production's reply bytes and the target's reply bytes, each in order (the
 * engine's payload delivery: onClientMessage / onOnlineBytes / onTargetBytes), they cut the
 * conversation into exchanges and hand each one to the comparison when both answers are in.
 *
 * HTTP: the request stream and both response streams are parsed; the n-th request pairs with
 * production's n-th response and the target's n-th response. Bytes mode: an exchange is the
 * client bytes until the server answers, then the server's bytes until the next client bytes.
 *
 * Latency of either side: from the request's completion (or the end of that side's previous
 * response, if later: a keep-alive request waits for it) to the response's completion, each
 * side on one clock (doc/compare.md "Latency"):
 *
 * - production: the capture's time stamps of the packet that completed the request and of the
 *   one that completed the response (`at` of clientBytes / onlineBytes; tcpcopy's capture on
 *   the online host, or the capture file's recorded times); engine time when the capture gave
 *   none (a stream input without times).
 * - the target: from when tcpcopy could send the request (its completion, or the target's
 *   previous response, in engine time) to intercept's capture of the packet that completed the
 *   response, moved to tcpcopy's clock (`at` of targetBytes: src/channel/clock-offset.ts);
 *   without stamps (a 1.x channel, an older intercept), when tcpcopy read that packet.
 */
import type { SkipReason } from './compare-http';
import { HttpStreamParser, type HttpMessage } from './http-parser';

/**
 * The capture time of the packet whose bytes the engine is delivering, ms (NaN: unknown): the
 * runner sets it before it hands a packet to the engine. Client and production packets: the
 * capture's time stamp; the target's replies: intercept's stamp on tcpcopy's clock.
 */
export interface CaptureTimes {
  at: number;
}

/** What the engine's delivery calls on a compared session (`at`: see CaptureTimes; NaN unknown). */
export interface ExchangeObserver {
  /** Captured client bytes, in order. */
  clientBytes(data: Buffer, now: number, at?: number): void;
  /** Production's reply bytes, in order; `missing` bytes that followed were not delivered. */
  onlineBytes(data: Buffer, missing: number, now: number, at?: number): void;
  /** The target's reply bytes, in order; `missing` bytes that followed were not delivered (payload cap). */
  targetBytes(data: Buffer, missing: number, now: number, at?: number): void;
  /** The session ended. */
  end(now: number): void;
}

/** One exchange of one session, as handed to the comparison. */
export interface Exchange {
  /** Index in its session (0-based). */
  index: number;
  method: string;
  target: string;
  online: HttpMessage | null;
  targetResp: HttpMessage | null;
  /** Bytes mode: the raw answers. */
  onlineBytes: Buffer | null;
  targetBytes: Buffer | null;
  /** Production's response time, ms (see the file's comment). */
  onlineMs: number;
  /** The target's response time, ms (see the file's comment). */
  targetMs: number;
  /** onlineMs came from capture time stamps (else engine time). */
  onlineCaptured: boolean;
  /** targetMs ends at intercept's capture time stamp (else when tcpcopy read the reply). */
  targetStamped: boolean;
  /** Set when it cannot be compared. */
  skipped: SkipReason | null;
}

/** Memory held by every session of a comparison, against a global cap. */
export interface MemoryBudget {
  held: number;
  /** Global cap in bytes (`--compare-memory-max`). */
  readonly max: number;
}

/** Limits of one session. */
export interface SessionLimits {
  /** Body bytes kept per message (`--compare-body-max`). */
  bodyMax: number;
  /** Bytes one session may hold for exchanges waiting for their other answer (`--compare-session-max`). */
  sessionMax: number;
}

interface Side {
  parser: HttpStreamParser;
  msgs: (HttpMessage | null)[];
  /** Capture time of each message's completion (parallel to msgs; NaN unknown). */
  ats: number[];
  /** The capture time of the feed in progress. */
  curAt: number;
  lastEnd: number;
  lastEndAt: number;
}

/** The later of two capture times, NaN when either is unknown. */
function laterAt(a: number, b: number): number {
  return a > b ? a : b;
}

/** Exchanges handed on before a session's arrays drop them (amortised; no per-exchange shift). */
const COMPACT_AT = 1024;

/** HTTP/1.1 observer of one session. */
export class HttpSessionObserver implements ExchangeObserver {
  private readonly req: HttpStreamParser;
  private readonly reqs: HttpMessage[] = [];
  /** Capture time of each request's completion (parallel to reqs). */
  private readonly reqAts: number[] = [];
  private reqCurAt = NaN;
  private readonly on: Side;
  private readonly tg: Side;
  private next = 0;
  /** Exchanges handed on and dropped from the front of the arrays (a long keep-alive session stays small). */
  private base = 0;
  private held = 0;
  private ended = false;

  constructor(
    private readonly limits: SessionLimits,
    private readonly budget: MemoryBudget,
    private readonly emit: (e: Exchange) => void,
  ) {
    this.req = new HttpStreamParser('request', (m) => this.onRequest(m), { bodyMax: 0 });
    this.on = this.side();
    this.tg = this.side();
  }

  private side(): Side {
    const s: Side = {
      parser: null as unknown as HttpStreamParser,
      msgs: [],
      ats: [],
      curAt: NaN,
      lastEnd: 0,
      lastEndAt: -Infinity,
    };
    s.parser = new HttpStreamParser('response', (m) => this.onResponse(s, m), { bodyMax: this.limits.bodyMax });
    return s;
  }

  clientBytes(data: Buffer, now: number, at = NaN): void {
    this.reqCurAt = at;
    this.req.feed(data, now);
  }

  onlineBytes(data: Buffer, missing: number, now: number, at = NaN): void {
    // a delivery without a time (a timer gave up a hole) keeps the side's last capture time
    if (at === at) this.on.curAt = at;
    this.on.parser.feed(data, now);
    this.on.parser.missing(missing, now);
  }

  targetBytes(data: Buffer, missing: number, now: number, at = NaN): void {
    this.tg.curAt = at;
    this.tg.parser.feed(data, now);
    this.tg.parser.missing(missing, now);
  }

  /** Bytes held for exchanges not yet handed on. */
  get heldBytes(): number {
    return this.held;
  }

  private onRequest(m: HttpMessage): void {
    this.reqs.push(m);
    this.reqAts.push(this.reqCurAt);
    this.on.parser.expect(m.method);
    this.tg.parser.expect(m.method);
  }

  private onResponse(s: Side, m: HttpMessage): void {
    if (m.opaque && s === this.on) this.req.setOpaque();
    const n = m.body.length;
    if (this.held + n > this.limits.sessionMax || this.budget.held + n > this.budget.max) {
      s.msgs.push(null); // no room: this exchange is skipped as 'memory'
    } else {
      this.held += n;
      this.budget.held += n;
      s.msgs.push(m);
    }
    s.ats.push(s.curAt);
    this.drain(false);
  }

  private drain(final: boolean): void {
    for (;;) {
      if (this.next >= COMPACT_AT) {
        // the first `next` entries are all handed on: drop them
        const n = this.next;
        this.reqs.splice(0, n);
        this.reqAts.splice(0, n);
        for (const sd of [this.on, this.tg]) {
          sd.msgs.splice(0, Math.min(n, sd.msgs.length));
          sd.ats.splice(0, Math.min(n, sd.ats.length));
        }
        this.base += n;
        this.next = 0;
      }
      const k = this.next;
      const rq = this.reqs[k];
      if (rq === undefined) return;
      const hasOn = k < this.on.msgs.length;
      const hasTg = k < this.tg.msgs.length;
      if (!final && !(hasOn && hasTg)) return;
      const a = hasOn ? (this.on.msgs[k] as HttpMessage | null) : null;
      const b = hasTg ? (this.tg.msgs[k] as HttpMessage | null) : null;
      let skipped: SkipReason | null = null;
      if ((hasOn && a === null) || (hasTg && b === null)) skipped = 'memory';
      else if (!hasOn) skipped = this.on.parser.broken ? 'unparsable' : 'noOnlineResponse';
      else if (!hasTg) skipped = this.tg.parser.broken ? 'unparsable' : 'noTargetResponse';
      // production: capture times when the capture gave them, else engine time (one clock either way)
      const rqAt = this.reqAts[k] as number;
      const aAt = hasOn ? (this.on.ats[k] as number) : NaN;
      const onlineMs = !a
        ? 0
        : rqAt === rqAt && aAt === aAt
          ? aAt - laterAt(rqAt, this.on.lastEndAt)
          : a.end - Math.max(rq.end, this.on.lastEnd);
      // the target: from when tcpcopy could send the request to intercept's capture of the end
      const bAt = hasTg ? (this.tg.ats[k] as number) : NaN;
      const targetMs = b ? (bAt === bAt ? bAt : b.end) - Math.max(rq.end, this.tg.lastEnd) : 0;
      if (a) {
        this.on.lastEnd = a.end;
        this.on.lastEndAt = aAt === aAt ? aAt : -Infinity;
      }
      if (b) this.tg.lastEnd = b.end;
      const release = (a?.body.length ?? 0) + (b?.body.length ?? 0);
      this.held -= release;
      this.budget.held -= release;
      this.on.msgs[k] = null;
      this.tg.msgs[k] = null;
      this.reqs[k] = undefined as unknown as HttpMessage;
      this.next++;
      this.emit({
        index: this.base + k,
        method: rq.method,
        target: rq.target,
        online: a,
        targetResp: b,
        onlineBytes: null,
        targetBytes: null,
        onlineMs: Math.max(0, onlineMs),
        targetMs: Math.max(0, targetMs),
        onlineCaptured: a !== null && rqAt === rqAt && aAt === aAt,
        targetStamped: b !== null && bAt === bAt,
        skipped,
      });
    }
  }

  end(now: number): void {
    if (this.ended) return;
    this.ended = true;
    this.req.finish(now);
    this.on.parser.finish(now);
    this.tg.parser.finish(now);
    this.drain(true);
    // bodies of responses that no request claimed
    this.budget.held -= this.held;
    this.held = 0;
  }
}

/** Bytes-mode observer of one session (any protocol). */
export class BytesSessionObserver implements ExchangeObserver {
  private readonly ex: {
    reqStart: number;
    /** Capture time of the first client bytes (NaN unknown). */
    reqAt: number;
    on: Buffer[];
    tg: Buffer[];
    /** Bytes kept in on / tg. */
    onLen: number;
    tgLen: number;
    onEnd: number;
    /** Capture time of production's last bytes (NaN unknown). */
    onEndAt: number;
    tgEnd: number;
    /** intercept's capture of the target's last bytes on tcpcopy's clock (else when read). */
    tgEndAt: number;
    trunc: boolean;
    mem: boolean;
  }[] = [];
  /** Index of the exchange production's / the target's bytes go to. */
  private onIdx = -1;
  private tgIdx = -1;
  private clientTurn = false;
  private tgTurn = false;
  private next = 0;
  /** Exchanges handed on and dropped from the front of `ex` (a long session stays small). */
  private base = 0;
  private held = 0;
  private ended = false;

  constructor(
    private readonly limits: SessionLimits,
    private readonly budget: MemoryBudget,
    private readonly emit: (e: Exchange) => void,
  ) {}

  /** Exchanges this observer still keeps (handed on ones included until the next compaction). */
  get keptExchanges(): number {
    return this.ex.length;
  }

  clientBytes(data: Buffer, now: number, at = NaN): void {
    if (data.length === 0) return;
    if (!this.clientTurn) {
      // client bytes after an answer (or first): a new exchange
      this.ex.push({
        reqStart: now,
        reqAt: at,
        on: [],
        tg: [],
        onLen: 0,
        tgLen: 0,
        onEnd: 0,
        onEndAt: NaN,
        tgEnd: 0,
        tgEndAt: NaN,
        trunc: false,
        mem: false,
      });
      this.clientTurn = true;
      this.tgTurn = true;
      this.flush(this.ex.length - 2);
      this.compact();
    }
  }

  /**
   * Drops the exchanges handed on from the front of `ex` once there are COMPACT_AT of them
   * (amortised). Called right after a new exchange began: both sides' next bytes go to it
   * (clientTurn and tgTurn), so onIdx / tgIdx pointing before it are never used again.
   */
  private compact(): void {
    const n = this.next;
    if (n < COMPACT_AT) return;
    this.ex.splice(0, n);
    this.base += n;
    this.next -= n;
    this.onIdx -= n;
    this.tgIdx -= n;
  }

  private add(list: 'on' | 'tg', data: Buffer, missing: number, now: number, at: number): void {
    const i = list === 'on' ? this.onIdx : this.tgIdx;
    const e = this.ex[i];
    if (e === undefined) return;
    const have = list === 'on' ? e.onLen : e.tgLen;
    const k = Math.max(0, Math.min(data.length, this.limits.bodyMax - have));
    if (k < data.length || missing > 0) e.trunc = true;
    if (this.held + k > this.limits.sessionMax || this.budget.held + k > this.budget.max) e.mem = true;
    else if (k > 0) {
      e[list].push(Buffer.from(data.subarray(0, k)));
      if (list === 'on') e.onLen += k;
      else e.tgLen += k;
      this.held += k;
      this.budget.held += k;
    }
    if (list === 'on') {
      e.onEnd = now;
      if (at === at) e.onEndAt = at;
    } else {
      e.tgEnd = now;
      e.tgEndAt = at;
    }
  }

  onlineBytes(data: Buffer, missing: number, now: number, at = NaN): void {
    if (data.length === 0 && missing === 0) return;
    if (this.clientTurn) {
      this.clientTurn = false;
      this.onIdx = this.ex.length - 1;
    }
    this.add('on', data, missing, now, at);
  }

  targetBytes(data: Buffer, missing: number, now: number, at = NaN): void {
    if (data.length === 0 && missing === 0) return;
    if (this.tgTurn) {
      this.tgTurn = false;
      this.tgIdx = this.ex.length - 1;
    }
    this.add('tg', data, missing, now, at);
  }

  /** Hands on every exchange up to `upto` (inclusive). */
  private flush(upto: number): void {
    while (this.next <= upto && this.next < this.ex.length) {
      const k = this.next++;
      const e = this.ex[k] as (typeof this.ex)[number];
      const a = Buffer.concat(e.on);
      const b = Buffer.concat(e.tg);
      const noOn = e.on.length === 0 && e.onEnd === 0;
      const noTg = e.tg.length === 0 && e.tgEnd === 0;
      this.held -= a.length + b.length;
      this.budget.held -= a.length + b.length;
      e.on = [];
      e.tg = [];
      this.emit({
        index: this.base + k,
        method: '',
        target: '',
        online: null,
        targetResp: null,
        onlineBytes: a,
        targetBytes: b,
        onlineMs: noOn
          ? 0
          : Math.max(0, e.reqAt === e.reqAt && e.onEndAt === e.onEndAt ? e.onEndAt - e.reqAt : e.onEnd - e.reqStart),
        targetMs: noTg ? 0 : Math.max(0, (e.tgEndAt === e.tgEndAt ? e.tgEndAt : e.tgEnd) - e.reqStart),
        onlineCaptured: !noOn && e.reqAt === e.reqAt && e.onEndAt === e.onEndAt,
        targetStamped: !noTg && e.tgEndAt === e.tgEndAt,
        skipped: e.mem
          ? 'memory'
          : e.trunc
            ? 'truncated'
            : noOn
              ? 'noOnlineResponse'
              : noTg
                ? 'noTargetResponse'
                : null,
      });
    }
  }

  end(_now: number): void {
    if (this.ended) return;
    this.ended = true;
    this.flush(this.ex.length - 1);
  }
}
