/**
 * An incremental HTTP/1.1 message parser for one direction of one connection (sans-I/O: bytes
 * and `now` in, complete messages out). Requests: Content-Length or chunked bodies (a request
 * without either has none). Responses: HEAD, 1xx, 204 and 304 have no body; 1xx other than 101
 * are skipped; Content-Length, chunked, or close-delimited (the body runs to the end of the
 * stream). After a 101 (Upgrade) or a 2xx answer to CONNECT the rest of the stream is opaque and
 * no longer parsed. Pipelined messages come out in order. Never throws on hostile bytes: a
 * stream that cannot be parsed is marked `broken` with a reason, and later bytes are ignored.
 */

/** The empty buffer every parser shares (no allocation per fed chunk). */
const EMPTY = Buffer.alloc(0);

/** One parsed HTTP/1.x message. Header names keep their case; bodies are de-chunked, not decoded. */

export interface HttpMessage {
  /** Request: method (upper case as sent); response: the method of the request it answers. */
  method: string;
  /** Request target (path and query); '' for a response. */
  target: string;
  /** Response status; 0 for a request. */
  status: number;
  /** 'HTTP/1.1', 'HTTP/1.0'. */
  version: string;
  headers: [string, string][];
  /** The first `bodyMax` body bytes (after de-chunking, before content decoding). */
  body: Buffer;
  /** Body bytes the message carried in all (more than body.length when truncated). */
  bodyBytes: number;
  /** The body was longer than the cap, or bytes of it were not delivered (payload cap). */
  truncated: boolean;
  /** After this message the stream became opaque (101 Upgrade, CONNECT 2xx). */
  opaque: boolean;
  /** Engine time (ms) of the message's first byte and of its completion. */
  start: number;
  end: number;
}

/** Parser limits. */
export interface HttpParserOptions {
  /** Body bytes kept per message (more are counted, not kept). Default 64 KiB (`--compare-body-max`). */
  bodyMax?: number;
  /** Largest head (start line + headers) in bytes; more breaks the stream. Default 64 KiB. */
  headMax?: number;
}

type State = 'head' | 'length' | 'chunkSize' | 'chunkData' | 'chunkCrlf' | 'trailers' | 'close' | 'opaque' | 'broken';

const CRLFCRLF = Buffer.from('\r\n\r\n');

/** Parses one direction; `onMessage` receives each complete message. */
export class HttpStreamParser {
  private st: State = 'head';
  private pending: Buffer = EMPTY;
  private cur: HttpMessage | null = null;
  private parts: Buffer[] = [];
  private kept = 0;
  private remaining = 0;
  /** Methods of the requests this response stream answers, oldest first (responses only). */
  private readonly methods: string[] = [];
  /** Why the stream could not be parsed ('' while it can). */
  brokenReason = '';
  /** 1xx responses skipped. */
  skipped1xx = 0;
  private readonly bodyMax: number;
  private readonly headMax: number;

  constructor(
    private readonly role: 'request' | 'response',
    private readonly onMessage: (m: HttpMessage) => void,
    opts: HttpParserOptions = {},
  ) {
    this.bodyMax = opts.bodyMax ?? 64 * 1024;
    this.headMax = opts.headMax ?? 64 * 1024;
  }

  /** True once the stream could not be parsed any more. */
  get broken(): boolean {
    return this.st === 'broken';
  }

  private stopped(): boolean {
    return this.st === 'broken' || this.st === 'opaque';
  }

  /** True once the stream went opaque (Upgrade / CONNECT). */
  get opaque(): boolean {
    return this.st === 'opaque';
  }

  /** Bytes held now (pending head bytes + kept body bytes): for memory caps. */
  get heldBytes(): number {
    return this.pending.length + this.kept;
  }

  /** The other direction went opaque (a 101 answered this stream's Upgrade): stop parsing. */
  setOpaque(): void {
    if (this.st !== 'broken') this.st = 'opaque';
    this.pending = EMPTY;
  }

  /** Response streams: the next request on the connection had this method (call in request order). */
  expect(method: string): void {
    this.methods.push(method);
  }

  /** Feeds stream bytes in order (a view; copied as needed). */
  feed(data: Buffer, now: number): void {
    if (data.length === 0 || this.st === 'broken' || this.st === 'opaque') return;
    const b = this.pending.length > 0 ? Buffer.concat([this.pending, data]) : data;
    this.pending = EMPTY;
    let p = 0;
    while (p < b.length && !this.stopped()) {
      const n = this.step(b, p, now);
      if (n < 0) {
        // need more bytes: keep the rest
        this.pending = Buffer.from(b.subarray(p));
        if (this.st === 'head' && this.pending.length > this.headMax) this.fail('head too large');
        return;
      }
      p += n;
    }
  }

  /**
   * `n` bytes of the stream were not delivered (a reply cut by the payload cap). Inside a body of
   * known length they are counted and the message is truncated; anywhere else the framing is lost.
   */
  missing(n: number, now: number): void {
    if (n <= 0 || this.st === 'broken' || this.st === 'opaque') return;
    if (this.pending.length === 0 && (this.st === 'length' || this.st === 'chunkData') && n <= this.remaining) {
      const m = this.cur as HttpMessage;
      m.truncated = true;
      m.bodyBytes += n;
      this.remaining -= n;
      if (this.remaining === 0) {
        if (this.st === 'length') this.complete(now);
        else this.st = 'chunkCrlf';
      }
      return;
    }
    if (this.st === 'close') {
      const m = this.cur as HttpMessage;
      m.truncated = true;
      m.bodyBytes += n;
      return;
    }
    this.fail('bytes missing outside a body');
  }

  /** The stream ended (FIN or session end): a close-delimited body completes; anything partial breaks. */
  finish(now: number): void {
    if (this.st === 'close') this.complete(now);
    else if (this.st !== 'head' || this.pending.length > 0) {
      if (this.st !== 'broken' && this.st !== 'opaque') this.fail('stream ended inside a message');
    }
  }

  private fail(reason: string): void {
    this.st = 'broken';
    this.brokenReason = reason;
    this.pending = EMPTY;
    this.parts = [];
    this.kept = 0;
    this.cur = null;
  }

  /** One step at b[p]: bytes consumed, or -1 when more are needed. */
  private step(b: Buffer, p: number, now: number): number {
    switch (this.st) {
      case 'head': {
        // tolerate blank lines between messages (RFC 9112 2.2)
        if (b[p] === 0x0d || b[p] === 0x0a) return 1;
        const e = b.indexOf(CRLFCRLF, p);
        if (e < 0) return -1;
        if (e - p > this.headMax) {
          this.fail('head too large');
          return 0;
        }
        this.head(b.toString('latin1', p, e), now);
        return e + 4 - p;
      }
      case 'length': {
        const n = Math.min(this.remaining, b.length - p);
        this.body(b, p, n);
        this.remaining -= n;
        if (this.remaining === 0) this.complete(now);
        return n;
      }
      case 'close':
        this.body(b, p, b.length - p);
        return b.length - p;
      case 'chunkSize': {
        const e = b.indexOf(0x0a, p);
        if (e < 0) {
          if (b.length - p > 1024) this.fail('chunk size line too long');
          return -1;
        }
        const line = b.toString('latin1', p, e).replace(/\r$/, '');
        const hex = (line.split(';')[0] ?? '').trim();
        if (!/^[0-9a-fA-F]{1,12}$/.test(hex)) {
          this.fail('bad chunk size');
          return 0;
        }
        this.remaining = parseInt(hex, 16);
        this.st = this.remaining === 0 ? 'trailers' : 'chunkData';
        return e + 1 - p;
      }
      case 'chunkData': {
        const n = Math.min(this.remaining, b.length - p);
        this.body(b, p, n);
        this.remaining -= n;
        if (this.remaining === 0) this.st = 'chunkCrlf';
        return n;
      }
      case 'chunkCrlf': {
        if (b.length - p < 1) return -1;
        if (b[p] === 0x0a) {
          this.st = 'chunkSize';
          return 1;
        }
        if (b.length - p < 2) return -1;
        if (b[p] !== 0x0d || b[p + 1] !== 0x0a) {
          this.fail('chunk not followed by CRLF');
          return 0;
        }
        this.st = 'chunkSize';
        return 2;
      }
      case 'trailers': {
        const e = b.indexOf(0x0a, p);
        if (e < 0) return -1;
        const empty = e === p || (e === p + 1 && b[p] === 0x0d);
        if (empty) this.complete(now);
        return e + 1 - p;
      }
      default:
        return b.length - p;
    }
  }

  private head(text: string, now: number): void {
    const lines = text.split(/\r?\n/);
    const start = lines[0] ?? '';
    const headers: [string, string][] = [];
    for (let i = 1; i < lines.length; i++) {
      const l = lines[i] as string;
      const c = l.indexOf(':');
      if (c <= 0) {
        if (/^[ \t]/.test(l) && headers.length > 0) continue; // obsolete line folding: ignored
        this.fail('bad header line');
        return;
      }
      headers.push([l.slice(0, c).trim(), l.slice(c + 1).trim()]);
    }
    const m: HttpMessage = {
      method: '',
      target: '',
      status: 0,
      version: '',
      headers,
      body: EMPTY,
      bodyBytes: 0,
      truncated: false,
      opaque: false,
      start: now,
      end: now,
    };
    if (this.role === 'request') {
      const r = /^([A-Z!#$%&'*+.^_`|~0-9-]+) (\S+) (HTTP\/\d\.\d)$/.exec(start);
      if (!r) {
        this.fail('bad request line');
        return;
      }
      m.method = r[1] as string;
      m.target = r[2] as string;
      m.version = r[3] as string;
    } else {
      const r = /^(HTTP\/\d\.\d) (\d{3})(?: .*)?$/.exec(start);
      if (!r) {
        this.fail('bad status line');
        return;
      }
      m.version = r[1] as string;
      m.status = Number(r[2]);
      if (m.status >= 100 && m.status < 200 && m.status !== 101) {
        this.skipped1xx++;
        return; // interim: the final response follows
      }
      m.method = this.methods.shift() ?? 'GET';
    }
    this.cur = m;
    this.parts = [];
    this.kept = 0;
    const te = headerValue(headers, 'transfer-encoding');
    const cl = headerValue(headers, 'content-length');
    if (this.role === 'response') {
      if (m.status === 101 || (m.method === 'CONNECT' && m.status >= 200 && m.status < 300)) {
        m.opaque = true;
        this.complete(now);
        this.st = 'opaque';
        return;
      }
      if (m.method === 'HEAD' || m.status === 204 || m.status === 304) return this.complete(now);
    }
    if (te !== null && /(^|,)\s*chunked\s*$/i.test(te)) {
      this.st = 'chunkSize';
      return;
    }
    if (cl !== null) {
      if (!/^\d{1,15}$/.test(cl)) {
        this.fail('bad Content-Length');
        return;
      }
      this.remaining = Number(cl);
      if (this.remaining === 0) return this.complete(now);
      this.st = 'length';
      return;
    }
    if (this.role === 'request') {
      this.complete(now);
      if (m.method === 'CONNECT') this.st = 'opaque'; // the rest is the tunnel
      return;
    }
    this.st = 'close';
  }

  private body(b: Buffer, p: number, n: number): void {
    const m = this.cur as HttpMessage;
    m.bodyBytes += n;
    const room = this.bodyMax - this.kept;
    if (n > room) m.truncated = true;
    const k = Math.min(n, room);
    if (k > 0) {
      this.parts.push(Buffer.from(b.subarray(p, p + k)));
      this.kept += k;
    }
  }

  private complete(now: number): void {
    const m = this.cur as HttpMessage;
    m.body = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts);
    m.end = now;
    this.parts = [];
    this.kept = 0;
    this.cur = null;
    this.st = 'head';
    this.onMessage(m);
  }
}

/** The value of a header (case-insensitive name; repeated headers joined with ', '), or null. */
export function headerValue(headers: readonly [string, string][], name: string): string | null {
  let v: string | null = null;
  for (const [k, val] of headers) if (k.toLowerCase() === name) v = v === null ? val : `${v}, ${val}`;
  return v;
}
