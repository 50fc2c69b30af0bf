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

/**
 * Where a client message sits in the session's two streams: what tcpcopy captured and what it
 * sent to the target (a protocol module may replace, drop or insert bytes, so the two differ).
 * Offsets count bytes from the session's first client byte.
 */
export interface ClientPos {
  /** Offset of the message's first byte in the captured stream. */
  readonly captured: number;
  /** Offset in the stream sent to the target where the message's bytes (as sent) begin. */
  readonly sent: number;
  /** Bytes of it sent to the target (its length passed, the replacement's when replaced, 0 dropped). */
  readonly sentLen: number;
}

/** What the engine's delivery calls on a compared session (`at`: see CaptureTimes; NaN unknown). */
export interface ExchangeObserver {
  /**
   * Captured client bytes, in order. `pos` (bytes mode with a protocol module): where they sit
   * in the captured and the sent stream; absent, both are the bytes seen so far (all passed).
   */
  clientBytes(data: Buffer, now: number, at?: number, pos?: ClientPos): void;
  /**
   * Production's reply bytes, in order; `missing` bytes that followed were not delivered.
   * `acked`: captured client bytes production had acknowledged (ProtocolModule.onOnlineBytes).
   */
  onlineBytes(data: Buffer, missing: number, now: number, at?: number, acked?: number): void;
  /**
   * The target's reply bytes, in order; `missing` bytes that followed were not delivered
   * (payload cap). `acked`: bytes of the sent stream the target had acknowledged (TargetActions.acked).
   */
  targetBytes(data: Buffer, missing: number, now: number, at?: number, acked?: number): void;
  /**
   * Optional: `len` bytes at offset `sent` of the sent stream are a protocol module's own
   * (ClientActions.insert): the target's replies sent when it had received them and nothing
   * after them answer the module, not the client, and are left out of the comparison.
   */
  inserted?(sent: number, len: number): void;
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

/** One bytes-mode exchange being filled. */
interface BytesExchange {
  reqStart: number;
  /** Capture time of the first client bytes (NaN unknown). */
  reqAt: number;
  /** Offset of its first client byte in the captured stream. */
  cap: number;
  /** Offset of its first client byte in the stream sent to the target. */
  sent: number;
  on: Buffer[];
  tg: Buffer[];
  /** Bytes kept in on / tg. */
  onLen: number;
  tgLen: number;
  /** Production's bytes were attributed to it (the next client bytes begin a new exchange). */
  answered: boolean;
  onEnd: number;
  /** Capture time of production's last bytes (NaN unknown). */
  onEndAt: number;
  tgEnd: number;
  /** intercept's capture of the target's last bytes on tcpcopy's clock (else when read). */
  tgEndAt: number;
  trunc: boolean;
  mem: boolean;
}

/** Production's bytes waiting for the client bytes they answer to be observed. */
interface QueuedOnline {
  data: Buffer;
  missing: number;
  now: number;
  at: number;
  acked: number;
}

/**
 * Exchanges kept waiting for their other side's answer beyond which the oldest is handed on as
 * it is (a target that never answers must not make a long session hold every exchange).
 */
const MAX_OPEN_EXCHANGES = 256;

/**
 * Bytes-mode observer of one session (any protocol). An exchange is the client bytes until
 * production answers, then production's bytes until the next client bytes. Each side's reply
 * bytes go to the exchange of the client bytes that side had received when it sent them (the
 * acknowledgment number of its reply segment: `acked`), not to whatever the client sent last:
 * a protocol module holds messages (a login until the target's greeting) while production's
 * answers to them are captured, and the engine sends a request only after the target answered
 * the one before, while the client's next one is already observed. Without `acked` the bytes go
 * to the latest exchange. An exchange is handed on once both sides moved past it (or the
 * session ended).
 */
export class BytesSessionObserver implements ExchangeObserver {
  private readonly ex: BytesExchange[] = [];
  /** Absolute index of ex[0] (handed-on exchanges are dropped from the front). */
  private base = 0;
  /** Absolute index of the exchange production's / the target's bytes go to (-1: none yet). */
  private onIdx = -1;
  private tgIdx = -1;
  /** Next exchange to hand on (absolute). */
  private next = 0;
  /** Captured and sent stream offsets after the client bytes observed so far. */
  private capEnd = 0;
  private sentEnd = 0;
  /** Highest acknowledgment seen from each side. */
  private onAcked = 0;
  private tgAcked = 0;
  private readonly queue: QueuedOnline[] = [];
  /** Bytes in `queue`. */
  private queued = 0;
  /** The module's inserted byte ranges of the sent stream, [from, to), not yet passed by the target's acks. */
  private readonly inserts: { from: number; to: number }[] = [];
  private held = 0;
  private ended = false;

  constructor(
    private readonly limits: SessionLimits,
    private readonly budget: MemoryBudget,
    private readonly emit: (e: Exchange) => void,
  ) {}

  /** Bytes held for exchanges not yet handed on. */
  get heldBytes(): number {
    return this.held;
  }

  /** Exchanges this observer still keeps (handed on ones included until the next compaction). */
  get keptExchanges(): number {
    return this.ex.length;
  }

  private at(i: number): BytesExchange | undefined {
    return this.ex[i - this.base];
  }

  clientBytes(data: Buffer, now: number, at = NaN, pos?: ClientPos): void {
    if (data.length === 0) return;
    const cap = pos?.captured ?? this.capEnd;
    const sent = pos?.sent ?? this.sentEnd;
    this.capEnd = cap + data.length;
    this.sentEnd = sent + (pos?.sentLen ?? data.length);
    const last = this.ex[this.ex.length - 1];
    if (last === undefined || last.answered) {
      // client bytes after production's answer (or the first): a new exchange
      this.ex.push({
        reqStart: now,
        reqAt: at,
        cap,
        sent,
        on: [],
        tg: [],
        onLen: 0,
        tgLen: 0,
        answered: false,
        onEnd: 0,
        onEndAt: NaN,
        tgEnd: 0,
        tgEndAt: NaN,
        trunc: false,
        mem: false,
      });
    }
    // production's answers to these bytes, captured while the module held them
    while (this.queue.length > 0 && (this.queue[0] as QueuedOnline).acked <= this.capEnd) {
      const q = this.queue.shift() as QueuedOnline;
      this.queued -= q.data.length;
      this.onlineTo(q.data, q.missing, q.now, q.at, q.acked);
    }
    this.handOn(false);
  }

  inserted(sent: number, len: number): void {
    if (len > 0) this.inserts.push({ from: sent, to: sent + len });
    if (sent + len > this.sentEnd) this.sentEnd = sent + len;
  }

  private add(e: BytesExchange, list: 'on' | 'tg', data: Buffer, missing: number, now: number, at: number): void {
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

  onlineBytes(data: Buffer, missing: number, now: number, at = NaN, acked?: number): void {
    if (data.length === 0 && missing === 0) return;
    const a = acked === undefined ? this.capEnd : Math.max(this.onAcked, acked);
    this.onAcked = a;
    if (this.queue.length > 0 || a > this.capEnd) {
      // answers client bytes not observed yet (held by the module): wait for them, within the
      // session's cap (beyond, only their length is kept: that exchange is skipped as truncated)
      const keep = this.held + this.queued + data.length <= this.limits.sessionMax;
      this.queue.push({
        data: keep ? Buffer.from(data) : Buffer.alloc(0),
        missing: keep ? missing : missing + data.length,
        now,
        at,
        acked: a,
      });
      if (keep) this.queued += data.length;
      return;
    }
    this.onlineTo(data, missing, now, at, a);
    this.handOn(false);
  }

  /** Production's bytes sent after it had received `acked` captured bytes: to the exchange holding the last of them. */
  private onlineTo(data: Buffer, missing: number, now: number, at: number, acked: number): void {
    let i = Math.max(this.onIdx, this.next - 1);
    while (i + 1 < this.base + this.ex.length && (this.at(i + 1) as BytesExchange).cap < acked) i++;
    this.onIdx = i;
    const e = i >= this.next ? this.at(i) : undefined;
    if (e === undefined) return; // before the first exchange (a greeting), or one already handed on
    e.answered = true;
    this.add(e, 'on', data, missing, now, at);
  }

  targetBytes(data: Buffer, missing: number, now: number, at = NaN, acked?: number): void {
    if (data.length === 0 && missing === 0) return;
    const a = acked === undefined ? this.sentEnd : Math.max(this.tgAcked, acked);
    this.tgAcked = a;
    while (this.inserts.length > 0 && (this.inserts[0] as { to: number }).to < a) this.inserts.shift();
    const ins = this.inserts[0];
    // the target had received the module's own bytes and nothing after them: its answer to them
    if (ins !== undefined && ins.from < a && a <= ins.to) return;
    let i = Math.max(this.tgIdx, this.next - 1);
    while (i + 1 < this.base + this.ex.length && (this.at(i + 1) as BytesExchange).sent < a) i++;
    this.tgIdx = i;
    const e = i >= this.next ? this.at(i) : undefined;
    if (e !== undefined) this.add(e, 'tg', data, missing, now, at);
    this.handOn(false);
  }

  /** Hands on every exchange both sides moved past (all of them at the end). */
  private handOn(final: boolean): void {
    const last = this.base + this.ex.length - 1;
    while (this.next <= last) {
      const k = this.next;
      const open = last - k;
      if (!final && !(this.onIdx > k && this.tgIdx > k) && open < MAX_OPEN_EXCHANGES) break;
      this.next++;
      const e = this.at(k) as BytesExchange;
      const a = Buffer.concat(e.on);
      const b = Buffer.concat(e.tg);
      const noOn = e.on.length === 0 && e.onEnd === 0;
      const noTg = e.tg.length === 0 && e.tgEnd === 0;
      this.held -= a.length + b.length;
      this.budget.held -= a.length + b.length;
      e.on = [];
      e.tg = [];
      this.emit({
        index: k,
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
    // drop handed-on exchanges from the front (each side's next bytes go to `next` or later)
    if (this.next - this.base >= COMPACT_AT || (final && this.next > this.base)) {
      this.ex.splice(0, this.next - this.base);
      this.base = this.next;
    }
  }

  end(_now: number): void {
    if (this.ended) return;
    this.ended = true;
    // production's bytes still queued answer client bytes never observed (the session ended first)
    this.queue.length = 0;
    this.queued = 0;
    this.handOn(true);
  }
}
