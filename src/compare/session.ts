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
 * response, if later: a keep-alive request waits for it) to the response's completion, in
 * engine time.
 */
import type { SkipReason } from './compare-http';
import { HttpStreamParser, type HttpMessage } from './http-parser';

/** What the engine's delivery calls on a compared session. */
export interface ExchangeObserver {
  /** Captured client bytes, in order. */
  clientBytes(data: Buffer, now: number): void;
  /** Production's reply bytes, in order; `missing` bytes that followed were not delivered. */
  onlineBytes(data: Buffer, missing: number, now: number): void;
  /** The target's reply bytes, in order; `missing` bytes that followed were not delivered (payload cap). */
  targetBytes(data: Buffer, missing: number, now: number): void;
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
  onlineMs: number;
  targetMs: number;
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
  lastEnd: number;
}

/** Exchanges handed on before a session's arrays drop them (amortised; no per-exchange shift). */
const COMPACT_AT = 1024;

/** HTTP/1.1 observer of one session. */
export class HttpSessionObserver implements ExchangeObserver {
  private readonly req: HttpStreamParser;
  private readonly reqs: HttpMessage[] = [];
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
    const s: Side = { parser: null as unknown as HttpStreamParser, msgs: [], lastEnd: 0 };
    s.parser = new HttpStreamParser('response', (m) => this.onResponse(s, m), { bodyMax: this.limits.bodyMax });
    return s;
  }

  clientBytes(data: Buffer, now: number): void {
    this.req.feed(data, now);
  }

  onlineBytes(data: Buffer, missing: number, now: number): void {
    this.on.parser.feed(data, now);
    this.on.parser.missing(missing, now);
  }

  targetBytes(data: Buffer, missing: number, now: number): void {
    this.tg.parser.feed(data, now);
    this.tg.parser.missing(missing, now);
  }

  /** Bytes held for exchanges not yet handed on. */
  get heldBytes(): number {
    return this.held;
  }

  private onRequest(m: HttpMessage): void {
    this.reqs.push(m);
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
    this.drain(false);
  }

  private drain(final: boolean): void {
    for (;;) {
      if (this.next >= COMPACT_AT) {
        // the first `next` entries are all handed on: drop them
        const n = this.next;
        this.reqs.splice(0, n);
        this.on.msgs.splice(0, Math.min(n, this.on.msgs.length));
        this.tg.msgs.splice(0, Math.min(n, this.tg.msgs.length));
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
      const onlineMs = a ? a.end - Math.max(rq.end, this.on.lastEnd) : 0;
      const targetMs = b ? b.end - Math.max(rq.end, this.tg.lastEnd) : 0;
      if (a) this.on.lastEnd = a.end;
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
    on: Buffer[];
    tg: Buffer[];
    onEnd: number;
    tgEnd: number;
    trunc: boolean;
    mem: boolean;
  }[] = [];
  /** Index of the exchange production's / the target's bytes go to. */
  private onIdx = -1;
  private tgIdx = -1;
  private clientTurn = false;
  private tgTurn = false;
  private next = 0;
  private held = 0;
  private ended = false;

  constructor(
    private readonly limits: SessionLimits,
    private readonly budget: MemoryBudget,
    private readonly emit: (e: Exchange) => void,
  ) {}

  clientBytes(data: Buffer, now: number): void {
    if (data.length === 0) return;
    if (!this.clientTurn) {
      // client bytes after an answer (or first): a new exchange
      this.ex.push({ reqStart: now, on: [], tg: [], onEnd: 0, tgEnd: 0, trunc: false, mem: false });
      this.clientTurn = true;
      this.tgTurn = true;
      this.flush(this.ex.length - 2);
    }
  }

  private add(list: 'on' | 'tg', data: Buffer, missing: number, now: number): void {
    const i = list === 'on' ? this.onIdx : this.tgIdx;
    const e = this.ex[i];
    if (e === undefined) return;
    const have = e[list].reduce((n, b) => n + b.length, 0);
    const k = Math.max(0, Math.min(data.length, this.limits.bodyMax - have));
    if (k < data.length || missing > 0) e.trunc = true;
    if (this.held + k > this.limits.sessionMax || this.budget.held + k > this.budget.max) e.mem = true;
    else if (k > 0) {
      e[list].push(Buffer.from(data.subarray(0, k)));
      this.held += k;
      this.budget.held += k;
    }
    if (list === 'on') e.onEnd = now;
    else e.tgEnd = now;
  }

  onlineBytes(data: Buffer, missing: number, now: number): void {
    if (data.length === 0 && missing === 0) return;
    if (this.clientTurn) {
      this.clientTurn = false;
      this.onIdx = this.ex.length - 1;
    }
    this.add('on', data, missing, now);
  }

  targetBytes(data: Buffer, missing: number, now: number): void {
    if (data.length === 0 && missing === 0) return;
    if (this.tgTurn) {
      this.tgTurn = false;
      this.tgIdx = this.ex.length - 1;
    }
    this.add('tg', data, missing, now);
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
        index: k,
        method: '',
        target: '',
        online: null,
        targetResp: null,
        onlineBytes: a,
        targetBytes: b,
        onlineMs: noOn ? 0 : Math.max(0, e.onEnd - e.reqStart),
        targetMs: noTg ? 0 : Math.max(0, e.tgEnd - e.reqStart),
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
