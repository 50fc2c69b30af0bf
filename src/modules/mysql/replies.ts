/**
 * Follows one server->client byte stream (the target's replies, or the online server's) packet
 * by packet and reply by reply, pure: it knows, from the commands the client sent (pushed with
 * `expect`), where each reply starts and ends, and reports what the module needs: the greeting,
 * the packets of a login or COM_CHANGE_USER exchange, and each COM_STMT_PREPARE's answer.
 *
 * Reply payloads may arrive truncated (`missing` bytes: intercept's --payload-max). A packet
 * whose header was delivered is skipped through its missing bytes; when a header itself is
 * missing, or a packet's first bytes the reply structure depends on, the stream is *lost*:
 * nothing is reported until it is found again at the start of a later reply segment that
 * begins with a packet of sequence id 1 (the first packet of a reply; servers write each
 * reply with a fresh write), taken for the reply to the first command sent after the loss. Replies are told apart by their structure (OK, ERR, result
 * sets with or without CLIENT_DEPRECATE_EOF, told apart by the 5-byte EOF, LOCAL INFILE
 * requests, multi-results), so no sequence-id guess is needed while in step.
 *
 * With `lazy` (the online stream), packets that arrive before the command they answer was
 * pushed (the client's message is behind a held one) are queued (at most MAX_QUEUED) and
 * read when it is.
 */
import { MAX_PACKET_PAYLOAD, readLenEnc } from './packet';
import { parsePrepareOk, type PrepareOk } from './stmt';

/** Most bytes kept of a packet's start (enough for a greeting, an AuthSwitchRequest, a PREPARE_OK). */
export const HEAD_BYTES = 160;
/** Most packets queued waiting for their command (lazy mode). */
export const MAX_QUEUED = 256;

/** What a command's reply looks like. */
export type ReplyKind =
  /** The server's first packet. */
  | 'greeting'
  /** A login or COM_CHANGE_USER exchange: packets until OK or ERR. */
  | 'auth'
  /** OK, ERR, or result set(s): COM_QUERY, COM_STMT_EXECUTE and most commands. */
  | 'result'
  /** COM_STMT_PREPARE: PREPARE_OK, parameter and column definitions; or ERR. */
  | 'prepare'
  /** COM_STMT_FETCH: rows until EOF. */
  | 'fetch'
  /** COM_FIELD_LIST: column definitions until EOF. */
  | 'fieldList'
  /** One packet (COM_STATISTICS). */
  | 'single'
  /** A reply that cannot be followed (replication streams): the stream is lost. */
  | 'opaque';

/**
 * One delivered packet: its sequence id, length and first `n` bytes (`head[0, n)`; cut: some
 * were missing). Valid only during the listener call (the tracker reuses it): copy what you keep.
 */
export interface PacketHead {
  seq: number;
  len: number;
  head: Buffer;
  n: number;
  cut: boolean;
}

/** The delivered first bytes of a packet, as a view. */
export function headOf(p: PacketHead): Buffer {
  return p.head.subarray(0, p.n);
}

/** What the tracker reports. `tag` is what was given to `expect`. */
export interface ReplyListener<T> {
  greeting(p: PacketHead): void;
  /** Every packet of an auth exchange (the last one is an OK 0x00 or ERR 0xff). */
  auth(p: PacketHead): void;
  /** The answer to a COM_STMT_PREPARE: its PREPARE_OK, or null (an error, or not readable). */
  prepared(tag: T, ok: PrepareOk | null): void;
  /** The stream was lost (see above). */
  lost(): void;
}

interface Expected<T> {
  kind: ReplyKind;
  tag: T | null;
  /** Its place among the expectations pushed. */
  n: number;
}

type Step = 'first' | 'defs' | 'afterDefs' | 'rows' | 'params' | 'afterParams' | 'pcols' | 'afterPcols';
type Outcome = 'more' | 'done' | 'notMine';

const SERVER_MORE_RESULTS_EXISTS = 0x8;
const SERVER_STATUS_CURSOR_EXISTS = 0x40;

export class ReplyTracker<T> {
  private readonly fifo: Expected<T>[] = [];
  private cur: Expected<T> | null = null;
  /** Expectations pushed so far, and how many had been when the stream was lost. */
  private pushed = 0;
  private lostAt = 0;
  private step: Step = 'first';
  private remaining = 0;
  private columns = 0;
  private answered = false;
  /** The stream is lost (see the file comment). */
  lost: boolean;
  /** Times the stream was lost. */
  losses = 0;
  private readonly queue: PacketHead[] = [];
  // framing
  private readonly hdr = Buffer.alloc(4);
  private hdrLen = 0;
  private inHeader = true;
  private left = 0;
  private seq = 0;
  private len = 0;
  private readonly head = Buffer.alloc(HEAD_BYTES);
  private headLen = 0;
  /** The packet handed to `handle`, reused (no allocation per packet). */
  private readonly pk: PacketHead = { seq: 0, len: 0, head: this.head, n: 0, cut: false };
  private headWant = 0;
  private emitted = false;
  private contNext = false;

  /**
   * @param lazy queue packets that arrive before their command (the online stream)
   * @param startLost the stream is joined in the middle (a session picked up mid-stream)
   */
  constructor(
    private readonly listener: ReplyListener<T>,
    private readonly lazy: boolean,
    startLost = false,
  ) {
    this.lost = startLost;
  }

  /** Commands pushed whose reply has not started. */
  get expected(): number {
    return this.fifo.length;
  }

  /** A command was sent whose reply will be of `kind`. */
  expect(kind: ReplyKind, tag: T | null = null): void {
    this.fifo.push({ kind, tag, n: this.pushed++ });
    while (this.queue.length > 0 && !this.lost) {
      if (!this.handle(this.queue[0] as PacketHead)) return;
      this.queue.shift();
    }
  }

  /** One reply segment: `data`, then `missing` bytes that were not delivered. */
  feed(data: Buffer, missing: number): void {
    if (this.lost && !this.resync(data)) return;
    let o = 0;
    while (o < data.length && !this.lost) {
      if (this.inHeader) {
        const n = Math.min(4 - this.hdrLen, data.length - o);
        data.copy(this.hdr, this.hdrLen, o, o + n);
        this.hdrLen += n;
        o += n;
        if (this.hdrLen < 4) break;
        this.len = this.hdr.readUIntLE(0, 3);
        this.seq = this.hdr[3] as number;
        this.left = this.len;
        this.headWant = Math.min(this.len, HEAD_BYTES);
        this.headLen = 0;
        this.emitted = false;
        this.inHeader = false;
        if (this.headWant === 0) this.emit(false);
        if (this.left === 0) this.nextHeader();
        continue;
      }
      const n = Math.min(this.left, data.length - o);
      if (!this.emitted) {
        const c = Math.min(this.headWant - this.headLen, n);
        data.copy(this.head, this.headLen, o, o + c);
        this.headLen += c;
        if (this.headLen === this.headWant) this.emit(false);
      }
      o += n;
      this.left -= n;
      if (this.left === 0) this.nextHeader();
    }
    if (missing <= 0 || this.lost) return;
    if (this.inHeader) return this.lose();
    if (!this.emitted) this.emit(true);
    if (this.lost) return;
    const n = Math.min(this.left, missing);
    this.left -= n;
    if (this.left === 0) this.nextHeader();
    if (missing > n) this.lose();
  }

  private nextHeader(): void {
    this.inHeader = true;
    this.hdrLen = 0;
  }

  private lose(): void {
    if (this.lost) return;
    this.lost = true;
    this.lostAt = this.pushed;
    this.losses++;
    this.queue.length = 0;
    this.listener.lost();
  }

  /**
   * Lost: a segment starting with a sequence id 1 packet starts the reply to the first command
   * sent after the loss. The replies to the commands sent before it may have been in the
   * bytes not delivered: they are abandoned (their PREPAREs answered null).
   */
  private resync(data: Buffer): boolean {
    if (data.length < 5 || data[3] !== 1) return false;
    const last = this.fifo[this.fifo.length - 1];
    if (last === undefined || last.n < this.lostAt) return false;
    this.abandon(this.cur, this.answered);
    this.cur = null;
    while ((this.fifo[0] as Expected<T>).n < this.lostAt) this.abandon(this.fifo.shift() as Expected<T>, false);
    this.lost = false;
    this.contNext = false;
    this.nextHeader();
    return true;
  }

  private abandon(c: Expected<T> | null, answered: boolean): void {
    if (c !== null && c.kind === 'prepare' && !answered) this.listener.prepared(c.tag as T, null);
  }

  private emit(cut: boolean): void {
    this.emitted = true;
    const cont = this.contNext;
    this.contNext = this.len === MAX_PACKET_PAYLOAD;
    if (cont) return; // the rest of a 16 MiB packet: not a packet of its own
    const p = this.pk;
    p.seq = this.seq;
    p.len = this.len;
    p.n = this.headLen;
    p.cut = cut;
    if (this.queue.length > 0 || !this.handle(p)) {
      if (!this.lazy) return; // nothing asked for it (e.g. a server's goodbye ERR)
      if (this.queue.length >= MAX_QUEUED) return this.lose();
      this.queue.push({ seq: p.seq, len: p.len, head: Buffer.from(headOf(p)), n: p.n, cut });
    }
  }

  /** Reads one packet into the reply it belongs to; false when no command is waiting for it. */
  private handle(p: PacketHead): boolean {
    for (;;) {
      if (this.cur === null) {
        const next = this.fifo.shift();
        if (next === undefined) return false;
        this.cur = next;
        this.step = next.kind === 'fetch' ? 'rows' : 'first';
        this.answered = false;
      }
      const r = this.read(this.cur, p);
      if (this.lost) return true;
      if (r === 'more') return true;
      this.cur = null;
      if (r === 'done') return true;
    }
  }

  /** True when the packet's first `n` bytes (or all of it) were delivered; else the stream is lost. */
  private need(p: PacketHead, n: number): boolean {
    if (p.n >= Math.min(n, p.len)) return true;
    this.lose();
    return false;
  }

  private read(c: Expected<T>, p: PacketHead): Outcome {
    switch (c.kind) {
      case 'greeting':
        this.listener.greeting(p);
        return 'done';
      case 'single':
        return 'done';
      case 'opaque':
        this.lose();
        return 'done';
      case 'auth': {
        if (!this.need(p, 1)) return 'done';
        this.listener.auth(p);
        const b = p.head[0];
        return b === 0x00 || b === 0xff ? 'done' : 'more';
      }
      case 'fieldList': {
        if (!this.need(p, 1)) return 'done';
        const b = p.head[0];
        return b === 0xff || (b === 0xfe && p.len < MAX_PACKET_PAYLOAD) ? 'done' : 'more';
      }
      case 'prepare':
        return this.readPrepare(c.tag as T, p);
      default:
        return this.readResult(p);
    }
  }

  private readResult(p: PacketHead): Outcome {
    if (!this.need(p, 1)) return 'done';
    const b = p.head[0] as number;
    switch (this.step) {
      case 'first': {
        if (b === 0x00) return moreResults(p) ? 'more' : 'done';
        if (b === 0xff) return 'done';
        if (b === 0xfe && p.len < 9) return 'done';
        if (b === 0xfb) return 'more'; // LOCAL INFILE: the client's data, then OK or ERR
        if (!this.need(p, 9)) return 'done';
        const n = readLenEnc(p.head, 0);
        if (n === null || n.value === 0) {
          this.lose();
          return 'done';
        }
        this.remaining = n.value;
        this.step = 'defs';
        return 'more';
      }
      case 'defs':
        if (--this.remaining === 0) this.step = 'afterDefs';
        return 'more';
      case 'afterDefs':
        this.step = 'rows';
        if (b === 0xfe && p.len === 5) {
          if (!this.need(p, 5)) return 'done';
          return (p.head.readUInt16LE(3) & SERVER_STATUS_CURSOR_EXISTS) !== 0 ? 'done' : 'more';
        }
        return this.readResult(p);
      default: // rows
        if (b === 0xff) return 'done';
        if (b === 0xfe && p.len < MAX_PACKET_PAYLOAD) {
          if (moreResults(p)) {
            this.step = 'first';
            return 'more';
          }
          return 'done';
        }
        return 'more';
    }
  }

  private readPrepare(tag: T, p: PacketHead): Outcome {
    if (this.step !== 'first' && this.step !== 'params' && this.step !== 'pcols') {
      // after the parameter or column definitions: a 5-byte EOF ends them (classic protocol)
      if (!this.need(p, 1)) return 'done';
      const eof = p.len === 5 && p.head[0] === 0xfe;
      if (this.step === 'afterParams') {
        if (this.columns > 0) {
          this.step = 'pcols';
          this.remaining = this.columns;
          if (eof) return 'more';
          return this.readPrepare(tag, p);
        }
        return eof ? 'done' : 'notMine';
      }
      return eof ? 'done' : 'notMine';
    }
    if (this.step === 'params' || this.step === 'pcols') {
      if (--this.remaining === 0) this.step = this.step === 'params' ? 'afterParams' : 'afterPcols';
      return 'more';
    }
    if (!this.need(p, 12)) {
      this.answered = true;
      this.listener.prepared(tag, null);
      return 'done';
    }
    const ok = parsePrepareOk(headOf(p));
    this.answered = true;
    this.listener.prepared(tag, ok);
    if (ok === null) return 'done';
    this.columns = ok.columns;
    if (ok.params > 0) {
      this.step = 'params';
      this.remaining = ok.params;
      return 'more';
    }
    if (ok.columns > 0) {
      this.step = 'pcols';
      this.remaining = ok.columns;
      return 'more';
    }
    return 'done';
  }
}

/** An OK (0x00 or 0xfe) or EOF packet announcing another result (SERVER_MORE_RESULTS_EXISTS). */
function moreResults(p: PacketHead): boolean {
  const h = headOf(p);
  if (h[0] === 0xfe && p.len === 5) return h.length >= 5 && (h.readUInt16LE(3) & SERVER_MORE_RESULTS_EXISTS) !== 0;
  const a = readLenEnc(h, 1);
  if (a === null) return false;
  const b = readLenEnc(h, 1 + a.bytes);
  if (b === null) return false;
  const o = 1 + a.bytes + b.bytes;
  return o + 2 <= h.length && (h.readUInt16LE(o) & SERVER_MORE_RESULTS_EXISTS) !== 0;
}
