/**
 * Follows one server->client byte stream (the target's replies, or the online server's) packet
 * by packet and reply by reply, pure: it tells, for each command the client sent (pushed with
 * `expect`, in order), the first packet of its reply, and reports what the module needs: the
 * greeting, the packets of a login or COM_CHANGE_USER exchange, each COM_STMT_PREPARE's answer.
 *
 * Where replies start: MySQL is request/response, and the server numbers the packets of each
 * reply from sequence id 1 (the command was 0). So after the login, a packet of sequence id 1
 * starts a new reply, unless the previous one had id 0 and did not end a reply (a reply of 256
 * packets or more wraps its ids: the previous packet then is a row or a definition, not a final
 * EOF/OK/ERR). A greeting is one packet; a login or COM_CHANGE_USER exchange ends at its OK or
 * ERR (its ids follow the client's). No result-set parsing is needed, so column counts,
 * metadata skipping (MariaDB's cached metadata), EOF or no EOF do not matter.
 *
 * Each reply's first packet is checked against the kind of command it is taken to answer (a
 * PREPARE gets a PREPARE_OK or an ERR, a query an OK, ERR, column count or LOCAL INFILE
 * request...). A reply that fits the next command instead means a reply was missed: the
 * skipped command is answered as unreadable (`mismatch`); one that fits neither is reported
 * as unreadable for its command. Either way the replies stay aligned with the commands.
 *
 * Truncated payloads (`missing` bytes: intercept's --payload-max). Only packet headers matter
 * for the framing: a packet whose header was delivered is skipped through its missing bytes
 * (its content, if it was needed, is reported cut). When a header itself falls in missing
 * bytes (a long result set), the stream is *lost*: nothing is reported until a later delivered
 * segment begins with what is unmistakably the first packet of the reply to the oldest command
 * still waiting (a sequence id 1 header that fits its kind, whose following headers chain with
 * ids 2, 3..., a lone OK or ERR ending the segment, a column count followed by a column
 * definition, a PREPARE_OK followed by its definitions). Servers write each reply with a fresh
 * write after reading the command, so a reply starts a segment. Which command it answers is
 * told by the server's acknowledgment (`feed`'s `acked`, the target's ACK): a reply cannot
 * answer a command the server had not received, so the tail of a long reply is not taken for
 * the next one's start, and a command whose reply may have started in bytes not seen (the
 * server had it when it sent them) is skipped only when the next fits and no guess is needed
 * between PREPAREs (see `resync`). Everything given up is counted by the listener (lost,
 * resynced, mismatch).
 *
 * With `lazy` (the online stream), replies may arrive before the command they answer was
 * pushed (the client's message is behind a held one): each reply's first bytes
 * (QUEUED_HEAD_BYTES) are queued, at most MAX_QUEUED replies; beyond that, replies are only
 * counted (the framing is kept: their commands are answered as unreadable, `unkept`). Only a
 * queued reply's first packet is reported when its command comes.
 */
import { MAX_PACKET_PAYLOAD, readLenEnc } from './packet';
import { parsePrepareOk, type PrepareOk } from './stmt';

/** Most bytes kept of a packet's start (enough for a greeting, an AuthSwitchRequest, a PREPARE_OK). */
export const HEAD_BYTES = 160;
/** Bytes kept of the first packet of a queued reply (lazy mode): a PREPARE_OK is 12. */
export const QUEUED_HEAD_BYTES = 16;
/** Most replies kept waiting for their command (lazy mode); later ones are counted only. */
export const MAX_QUEUED = 4096;

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
  /** A reply that cannot be followed (replication streams): the stream is given up for good. */
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
  /**
   * The answer to a COM_STMT_PREPARE: its PREPARE_OK, or null (`refused`: the server answered
   * an ERR; else the answer could not be read: missed, cut, or not trusted).
   */
  prepared(tag: T, ok: PrepareOk | null, refused: boolean): void;
  /**
   * Optional: would an answer to the command tagged `a` do as well for the one tagged `b`
   * (two PREPAREs of the same statement text)? Then, after a loss, a PREPARE_OK that fits both
   * is trusted for the later one (see `resync`).
   */
  interchangeable?(a: T, b: T): boolean;
  /** The stream was lost (see above). */
  lost(): void;
  /** The stream was found again after a loss. */
  resynced?(): void;
  /** A reply did not fit the command it was taken to answer (a command's reply was missed, or is unreadable). */
  mismatch?(): void;
  /** A reply's first bytes were not kept: more than MAX_QUEUED replies waited for their commands (lazy mode). */
  unkept?(): void;
  /**
   * Optional: each packet of the reply to a command pushed with a tag (`first`: its first
   * packet), as long as the reply is followed; then `tagDone` once, when the reply ended, was
   * abandoned or could not be read (a queued reply: its first packet only).
   */
  tagPacket?(tag: T, p: PacketHead, first: boolean): void;
  tagDone?(tag: T): void;
}

interface Expected<T> {
  kind: ReplyKind;
  tag: T | null;
  /** Bytes sent to the server once its command was (0: not known); see `feed`'s `acked`. */
  end: number;
}

/** A queued reply's first packet (lazy mode). */
interface Queued {
  seq: number;
  len: number;
  n: number;
  head: Buffer;
}

const SERVER_MORE_RESULTS_EXISTS = 0x8;
const DEF = Buffer.from('\x03def', 'latin1');

export class ReplyTracker<T> {
  private readonly fifo: Expected<T>[] = [];
  /** The expectation of the reply in progress; null: none asked (or, lazy, queued). */
  private cur: Expected<T> | null = null;
  /** A reply is in progress (its first packet was seen). */
  private inReply = false;
  /** The next packet is the reply's first. */
  private first = true;
  /** The reply in progress ended by its structure (a greeting; an auth exchange's OK or ERR). */
  private done = false;
  /** The reply in progress ends at an OK or ERR (an auth exchange), not at the next id-1 packet. */
  private authLike = false;
  private lastSeq = 0;
  private lastFinal = false;
  private prevDef = false;
  /** The reply in progress is complete (its last packet seen; see `answered`). */
  private complete = false;
  /** Result replies: a LOCAL INFILE request was answered by the client, an OK or ERR follows; a result follows another (more results). */
  private infile = false;
  private nextResult = false;
  /** PREPARE replies: definitions left in the current run, and runs left after it (parameters, then columns). */
  private defsLeft = 0;
  private runs: number[] = [];
  /** The server ends definitions with a 5-byte EOF (no CLIENT_DEPRECATE_EOF); null until seen. */
  private classicEof: boolean | null = null;
  /** Lazy: queued replies (from qHead on), then `unkeptWaiting` counted ones; the last may be in progress. */
  private readonly queue: Queued[] = [];
  private qHead = 0;
  private unkeptWaiting = 0;
  /** Lazy: the reply in progress is the last queued (or counted) one. */
  private queuedInProgress = false;
  /** The stream is lost (see the file comment). */
  lost: boolean;
  /** Times the stream was lost, found again; replies that did not fit; replies not kept. */
  losses = 0;
  resyncs = 0;
  mismatches = 0;
  unkept = 0;
  /** An opaque reply (replication): nothing more is read. */
  private dead = false;
  /** The reply in progress has a tag whose packets go to `tagPacket` (the listener has one). */
  private tagOpen = false;
  /**
   * While lost: how many of the oldest waiting commands may have had their reply start in
   * bytes not seen (the server had received them when it sent a segment not taken as a start).
   */
  private maybe = 0;
  /** The server's acknowledgment of the segment being fed (`feed`'s `acked`). */
  private acked = Infinity;
  /** The reply being begun answers one of several commands its first packet fits: a PREPARE answer from it is not trusted. */
  private distrust = false;
  // framing
  private readonly hdr = Buffer.alloc(4);
  private hdrLen = 0;
  private inHeader = true;
  private left = 0;
  private seq = 0;
  private len = 0;
  private readonly head = Buffer.alloc(HEAD_BYTES);
  private headLen = 0;
  /** The packet handed to the listener, reused (no allocation per packet). */
  private readonly pk: PacketHead = { seq: 0, len: 0, head: this.head, n: 0, cut: false };
  private headWant = 0;
  private emitted = false;
  private contNext = false;

  /**
   * @param lazy queue replies that arrive before their command (the online stream)
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

  /** Replies waiting for their command (lazy mode). */
  get queued(): number {
    return this.queue.length - this.qHead + this.unkeptWaiting;
  }

  /**
   * A command was sent whose reply will be of `kind`; `end`: the bytes sent to the server once
   * it was (compared with `feed`'s `acked`; 0: not known).
   */
  expect(kind: ReplyKind, tag: T | null = null, end = 0): void {
    const e: Expected<T> = { kind, tag, end };
    if (this.queued === 0) {
      this.fifo.push(e);
      return;
    }
    // lazy: its reply came first
    const q = this.qHead < this.queue.length ? (this.queue[this.qHead++] as Queued) : null;
    if (q === null) this.unkeptWaiting--;
    if (this.qHead === this.queue.length) {
      this.queue.length = 0;
      this.qHead = 0;
    }
    if (this.queued === 0 && this.queuedInProgress) {
      // the reply in progress is this one's: its next packets are read for it
      this.queuedInProgress = false;
      this.cur = e;
      if (kind === 'auth') this.authLike = true;
    }
    if (q === null) return this.unreadable(e);
    const p = this.pk;
    p.seq = q.seq;
    p.len = q.len;
    p.head = q.head;
    p.n = q.n;
    p.cut = q.n < q.len;
    if (!fits(kind, p)) {
      this.mismatch();
      this.unreadable(e);
    } else if (kind === 'greeting') this.listener.greeting(p);
    else if (kind === 'auth') {
      if (p.n > 0) this.listener.auth(p);
    } else {
      this.firstPacket(e, p);
      if (tag !== null && this.listener.tagPacket !== undefined) {
        this.listener.tagPacket(tag, p, true);
        // the rest of the reply is read for it only when it is the one in progress
        if (this.cur === e && !this.complete) this.tagOpen = true;
        else this.listener.tagDone?.(tag);
      }
    }
    p.head = this.head;
  }

  /**
   * One reply segment: `data`, then `missing` bytes that were not delivered. `acked`: how many
   * bytes sent to the server it had received when it sent this segment (TargetActions.acked);
   * a reply cannot answer a command sent after that. Infinity: not known.
   */
  feed(data: Buffer, missing: number, acked = Infinity): void {
    if (this.dead) return;
    this.acked = acked;
    if (this.lost && !this.resync(data, missing)) return this.unseen();

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
    if (missing <= 0 || this.lost || this.dead) return;
    if (this.inHeader) return this.lose();
    if (!this.emitted) this.emit(true);
    if (this.lost || this.dead) return;
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
    this.closeTag();
    this.lost = true;
    this.maybe = 0;
    this.inReply = false;
    this.losses++;
    this.listener.lost();
    this.unseen();
  }

  /** Lost: bytes of this segment were not read; the waiting commands the server had received may have had their reply start in them. */
  private unseen(): void {
    let n = 0;
    while (n < this.fifo.length && (this.fifo[n] as Expected<T>).end <= this.acked) n++;
    if (n > this.maybe) this.maybe = n;
  }

  /**
   * Lost: does this segment begin with the first packet of a reply? It answers the oldest
   * waiting command, or one of the next `maybe` (whose predecessors' replies may have started
   * in bytes not seen) that the server had received and whose kind it fits; lazy, with none
   * waiting, any reply. Then the framing restarts here; the reply the stream was lost in is
   * abandoned (its PREPARE, if any, was answered at its first packet), and so are the commands
   * before the one answered. When several fit, the last is taken and PREPARE answers among
   * them are not trusted (answered unreadable): a loss, never a wrong statement id.
   */
  private resync(data: Buffer, missing: number): boolean {
    if (data.length < 5 || data[3] !== 1) return false;
    if (this.fifo.length === 0) {
      if (!this.lazy || !startsReply(null, data, missing)) return false;
    } else {
      const last = Math.min(this.maybe, this.fifo.length - 1);
      const fitting: Expected<T>[] = [];
      let found = -1;
      for (let i = 0; i <= last; i++) {
        const e = this.fifo[i] as Expected<T>;
        if (e.end > this.acked) break;
        if (!startsReply(e.kind, data, missing)) continue;
        fitting.push(e);
        found = i;
      }
      if (found < 0) return false;
      const taken = this.fifo[found] as Expected<T>;
      for (let i = 0; i < found; i++) {
        const e = this.fifo.shift() as Expected<T>;
        this.mismatch();
        this.unreadable(e);
      }
      this.distrust =
        fitting.length > 1 && fitting.some((e) => e.kind === 'prepare') && !this.sameAnswers(fitting, taken);
    }
    this.lost = false;
    this.maybe = 0;
    this.inReply = false;
    this.queuedInProgress = false;
    this.contNext = false;
    this.nextHeader();
    this.resyncs++;
    this.listener.resynced?.();
    return true;
  }

  /** A command whose reply cannot be read: a PREPARE is answered null. */
  private unreadable(e: Expected<T>): void {
    if (e.kind === 'prepare') this.listener.prepared(e.tag as T, null, false);
    else if (e.kind === 'opaque') this.die();
    if (e.tag !== null && this.listener.tagPacket !== undefined) this.listener.tagDone?.(e.tag);
  }

  /** Would the answer to `taken` (a PREPARE) do for every one of `fitting` (all PREPAREs of the same statement)? */
  private sameAnswers(fitting: readonly Expected<T>[], taken: Expected<T>): boolean {
    const l = this.listener;
    if (l.interchangeable === undefined || taken.kind !== 'prepare' || taken.tag === null) return false;
    const t = taken.tag;
    return fitting.every(
      (e) => e === taken || (e.kind === 'prepare' && e.tag !== null && l.interchangeable?.(e.tag, t) === true),
    );
  }

  /**
   * Lost: may the reply to the command tagged `tag` (still waiting) have started in bytes not
   * seen (the server had received it when it sent them)? Then it may never be read: the module
   * asks again rather than wait. False when in step, or when the command is not waiting.
   */
  mayHaveMissed(tag: T): boolean {
    if (!this.lost) return false;
    const n = Math.min(this.maybe, this.fifo.length);
    for (let i = 0; i < n; i++) if ((this.fifo[i] as Expected<T>).tag === tag) return true;
    return false;
  }

  /** The tagged reply in progress is over (ended, abandoned). */
  private closeTag(): void {
    if (!this.tagOpen) return;
    this.tagOpen = false;
    const t = this.cur?.tag;
    if (t !== null && t !== undefined) this.listener.tagDone?.(t);
  }

  private mismatch(): void {
    this.mismatches++;
    this.listener.mismatch?.();
  }

  /** Gives the stream up for good (a replication stream follows). */
  private die(): void {
    if (this.dead) return;
    this.closeTag();
    this.dead = true;
    this.losses++;
    this.listener.lost();
  }

  private emit(cut: boolean): void {
    this.emitted = true;
    const cont = this.contNext;
    this.contNext = this.len === MAX_PACKET_PAYLOAD;
    if (cont) {
      this.lastSeq = this.seq; // the rest of a 16 MiB packet: not a packet of its own
      return;
    }
    const p = this.pk;
    p.seq = this.seq;
    p.len = this.len;
    p.n = this.headLen;
    p.cut = cut;
    if (!this.inReply || this.done || this.startsNew(p)) this.begin(p);
    if (this.dead) return;
    this.packet(p);
  }

  /** Does `p` (while a reply is in progress) start the next one? */
  private startsNew(p: PacketHead): boolean {
    if (this.authLike) return false;
    return p.seq === 1 && (this.lastSeq !== 0 || this.lastFinal);
  }

  /** `p` starts a reply: the oldest waiting command's (checked), or, lazy, one to queue. */
  private begin(p: PacketHead): void {
    this.closeTag();
    this.inReply = true;
    this.first = true;
    this.done = false;
    this.lastFinal = false;
    this.prevDef = false;
    this.queuedInProgress = false;
    this.complete = false;
    this.infile = false;
    this.nextResult = false;
    let e = this.fifo[0];
    if (e !== undefined && e.end > this.acked) {
      // the server had not received its command: this reply is not its answer
      this.mismatch();
      e = undefined;
    } else this.fifo.shift();
    if (e !== undefined && !fits(e.kind, p)) {
      this.mismatch();
      const next = this.fifo[0];
      if (next !== undefined && fits(next.kind, p)) {
        // the skipped command's reply was missed: this one answers the next
        this.unreadable(e);
        e = this.fifo.shift();
      } else {
        // unreadable for its command; read on as a plain result
        this.unreadable(e);
        e = { kind: 'result', tag: null, end: 0 };
        this.first = false;
      }
    }
    if (e !== undefined) {
      this.cur = e;
      this.authLike = e.kind === 'auth';
      this.tagOpen = e.tag !== null && this.listener.tagPacket !== undefined;
      return;
    }
    this.cur = null;
    // a login exchange's packets do not start at id 1; a greeting is id 0
    this.authLike = p.seq !== 1 && p.seq !== 0;
    if (!this.lazy) return; // nothing asked for it (e.g. a server's goodbye ERR)
    this.queuedInProgress = true;
    if (this.unkeptWaiting > 0 || this.queue.length - this.qHead >= MAX_QUEUED) {
      this.unkeptWaiting++;
      this.unkept++;
      this.listener.unkept?.();
      return;
    }
    const head = Buffer.alloc(QUEUED_HEAD_BYTES);
    const n = Math.min(p.n, QUEUED_HEAD_BYTES);
    p.head.copy(head, 0, 0, n);
    this.queue.push({ seq: p.seq, len: p.len, n, head });
  }

  /** One packet of the reply in progress. */
  private packet(p: PacketHead): void {
    const e = this.cur;
    const b = p.n > 0 ? (p.head[0] as number) : -1;
    if (e !== null) {
      if (this.first) this.firstPacket(e, p);
      else if (e.kind === 'auth') this.authPacket(p);
      if (this.tagOpen) this.listener.tagPacket?.(e.tag as T, p, this.first);
      if (!this.complete) this.ends(e.kind, p, b);
      if (this.complete) this.closeTag();
    } else if (this.queuedInProgress || !this.lazy) {
      if (this.first && p.seq === 0)
        this.done = true; // a greeting
      else if (this.authLike && (b === 0x00 || b === 0xff)) this.done = true;
    }
    this.lastSeq = p.seq;
    this.lastFinal = b === 0xff || (b === 0xfe && p.len < MAX_PACKET_PAYLOAD && !this.prevDef && !moreResults(p));
    this.prevDef = p.n >= 4 && headOf(p).subarray(0, 4).equals(DEF);
    this.first = false;
    this.distrust = false;
  }

  /** Does `p` (first byte `b`) end the reply in progress, of `kind`? Sets `complete`. */
  private ends(kind: ReplyKind, p: PacketHead, b: number): void {
    const first = this.first || this.nextResult;
    this.nextResult = false;
    const term = b === 0xfe && p.len < MAX_PACKET_PAYLOAD; // an EOF, or an OK in its 0xfe form
    switch (kind) {
      case 'greeting':
      case 'single':
        this.complete = true;
        return;
      case 'auth':
        this.complete = this.done;
        return;
      case 'fetch':
      case 'fieldList':
        this.complete = b === 0xff || term;
        return;
      case 'prepare': {
        if (this.first) {
          const ok = p.n >= Math.min(12, p.len) ? parsePrepareOk(headOf(p)) : null;
          this.runs = ok === null ? [] : [ok.params, ok.columns].filter((n) => n > 0);
          this.defsLeft = this.runs.shift() ?? 0;
          this.complete = ok === null || this.defsLeft === 0;
          return;
        }
        if (this.defsLeft === 0) {
          // after a run: its EOF (classic protocol), or the next run's first definition
          if (term && p.len === 5) {
            this.classicEof = true;
            if (this.runs.length === 0) this.complete = true;
            else this.defsLeft = this.runs.shift() ?? 0;
            return;
          }
          this.classicEof = false;
          this.defsLeft = this.runs.shift() ?? 0;
        }
        // the last definition ends the reply unless an EOF is known to follow
        if (this.defsLeft > 0 && --this.defsLeft === 0 && this.runs.length === 0 && this.classicEof !== true)
          this.complete = true;
        return;
      }
      case 'opaque':
        return;
      default: {
        // results: OK, ERR, EOF, LOCAL INFILE, or a result set ending at its EOF or 0xfe OK
        let end = false;
        if (this.infile) {
          this.infile = false;
          end = b === 0x00 || b === 0xff;
        } else if (first && b === 0xfb) this.infile = true;
        else if (first && b === 0x00) end = true;
        else if (b === 0xff) end = true;
        else if (term) end = p.len !== 5 || first || !this.prevDef; // a 5-byte EOF right after the definitions ends them only
        if (this.prevDef && !first && b !== 0x03) this.classicEof = term && p.len === 5;
        if (!end) return;
        if (b !== 0xff && moreResults(p)) this.nextResult = true;
        else this.complete = true;
      }
    }
  }

  /**
   * Has the server completely answered every command that ended within the first `sent` bytes
   * sent to it (their `end`)? False while lost. For the release of the next request.
   */
  answered(sent: number): boolean {
    if (this.lost || this.dead) return false;
    const next = this.fifo[0];
    if (next !== undefined && next.end <= sent) return false;
    return !this.inReply || this.cur === null || this.cur.end > sent || this.complete;
  }

  /** The first packet of the reply to `e`. */
  private firstPacket(e: Expected<T>, p: PacketHead): void {
    switch (e.kind) {
      case 'greeting':
        this.listener.greeting(p);
        this.done = true;
        return;
      case 'auth':
        return this.authPacket(p);
      case 'prepare': {
        const ok = p.n >= Math.min(12, p.len) && !this.distrust ? parsePrepareOk(headOf(p)) : null;
        const refused = !this.distrust && p.n > 0 && p.head[0] === 0xff;
        if (this.distrust) this.mismatch();
        this.distrust = false;
        this.listener.prepared(e.tag as T, ok, refused);
        return;
      }
      case 'opaque':
        return this.die();
      default:
        return;
    }
  }

  private authPacket(p: PacketHead): void {
    if (p.n < 1) return this.lose(); // its kind unknown: the exchange cannot be followed
    this.listener.auth(p);
    const b = p.head[0];
    if (b === 0x00 || b === 0xff) this.done = true;
  }
}

/** Can a reply to a command of `kind` begin with packet `p` (its first delivered bytes)? */
function fits(kind: ReplyKind, p: PacketHead): boolean {
  if (p.n < 1) return true; // nothing to check
  const b = p.head[0] as number;
  switch (kind) {
    case 'prepare':
      return b === 0xff || (b === 0x00 && p.len >= 9 && p.len <= 12);
    case 'result':
      // OK, ERR, EOF (COM_SET_OPTION, COM_DEBUG), LOCAL INFILE, a column count
      return b === 0x00 || b === 0xff || b === 0xfe || b === 0xfb || isColumnCount(p.head, p.n, p.len);
    case 'auth':
      return b === 0x00 || b === 0xff || b === 0xfe || b === 0x01;
    case 'fieldList':
      return b === 0xff || b === 0xfe || b === 0x03;
    case 'fetch':
      return b === 0x00 || b === 0xff || b === 0xfe;
    default:
      return true;
  }
}

/** A column-count packet: a length-encoded count >= 1 (MariaDB may add one metadata-follows byte). */
function isColumnCount(h: Buffer, n: number, len: number): boolean {
  if (len > 10) return false;
  const c = readLenEnc(h.subarray(0, n), 0);
  return (
    c !== null &&
    c.value >= 1 &&
    (len === c.bytes || (len === c.bytes + 1 && n > c.bytes && (h[c.bytes] as number) <= 1))
  );
}

/**
 * Lost: does `data` (a delivered segment, `missing` bytes after it) begin with the first packet
 * of a reply of `kind` (null: of any kind)? Strict: the headers delivered must chain (ids 1, 2,
 * 3...), a one-packet reply (OK, ERR, LOCAL INFILE, statistics) must end the segment, a column
 * count or PREPARE_OK with definitions must be followed by a column definition when the next
 * packet was delivered.
 */
export function startsReply(kind: ReplyKind | null, data: Buffer, missing: number): boolean {
  if (data.length < 5 || data[3] !== 1) return false;
  const len = data.readUIntLE(0, 3);
  if (len === 0 || len >= MAX_PACKET_PAYLOAD) return false;
  // the headers that follow chain with ids 2, 3...
  let o = 0;
  let packets = 0;
  let second = -1;
  while (o + 4 <= data.length) {
    if ((data[o + 3] as number) !== ((packets + 1) & 0xff)) return false;
    if (packets === 1) second = o + 4;
    packets++;
    o += 4 + data.readUIntLE(o, 3);
  }
  const lone = packets === 1 && o === data.length && missing === 0;
  const n = Math.min(len, data.length - 4);
  const h = data.subarray(4, 4 + n);
  const b = h[0] as number;
  // the second packet (when its first bytes were delivered) is a column definition
  const followedByDef = second < 0 || data.length - second < 4 || data.subarray(second, second + 4).equals(DEF);
  const ok = (): boolean => {
    if (n < len) return false;
    const a = readLenEnc(h, 1);
    const c = a === null ? null : readLenEnc(h, 1 + a.bytes);
    if (a === null || c === null || 1 + a.bytes + c.bytes + 4 > len) return false;
    const more = (h.readUInt16LE(1 + a.bytes + c.bytes) & SERVER_MORE_RESULTS_EXISTS) !== 0;
    return more || lone;
  };
  const err = (): boolean => lone && len >= 3 && (len < 9 || n < 4 || h[3] === 0x23);
  const prepareOk = (): boolean => {
    if (len < 9 || len > 12 || n < 9) return false;
    if (len === 12 && h[9] !== 0) return false;
    const defs = h.readUInt16LE(5) + h.readUInt16LE(7);
    return defs === 0 ? lone : followedByDef;
  };
  const columnCount = (): boolean =>
    isColumnCount(h, n, len) && (followedByDef || len > (readLenEnc(h, 0)?.bytes ?? 0));
  switch (kind) {
    case null:
      return b === 0xff ? err() : b === 0x00 ? prepareOk() || ok() : b === 0xfb ? lone : columnCount();
    case 'prepare':
      return b === 0xff ? err() : b === 0x00 && prepareOk();
    case 'result':
      if (b === 0xff) return err();
      if (b === 0x00) return ok();
      if (b === 0xfb || b === 0xfe) return lone;
      return columnCount();
    case 'auth':
      if (b === 0xff) return err();
      if (b === 0x00) return ok();
      return (b === 0xfe || b === 0x01) && lone;
    case 'fieldList':
      return b === 0xff ? err() : b === 0xfe ? lone : b === 0x03 && n >= 4 && h.subarray(0, 4).equals(DEF);
    case 'single':
      return lone;
    case 'fetch':
      return b === 0xff ? err() : b === 0x00 || b === 0xfe;
    default:
      return false;
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
