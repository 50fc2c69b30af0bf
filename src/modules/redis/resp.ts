/**
 * RESP (the Redis protocol) as `--module redis` needs it: client commands framed and their
 * arguments located without copies, commands built, and the server's replies (RESP2 and RESP3)
 * counted as complete top-level replies while bytes may be missing (intercept's payload cap).
 *
 * Client commands are arrays of bulk strings (`*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n`) or inline
 * lines (`PING\r\n`, what telnet users type). Replies are typed by their first byte: lines
 * (`+ - : _ , # (`), blobs with a length (`$ ! =`), aggregates with a count (`* ~ >`: n
 * elements; `% |`: n pairs). A push (`>`) is out-of-band (not the reply to a command); an
 * attribute (`|`) precedes the value it annotates and is not itself a reply.
 */

/** Most arguments of a command (Redis: 1024 * 1024). */
export const MAX_ARGS = 1024 * 1024;
/** Longest bulk argument (Redis' proto-max-bulk-len default: 512 MB). */
export const MAX_BULK = 512 * 1024 * 1024;
/** Longest inline command (Redis: PROTO_INLINE_MAX_SIZE, 64 KiB). */
export const MAX_INLINE = 64 * 1024;

const CR = 13;
const LF = 10;

/**
 * Reads the decimal integer of a header line at data[o] (after its type byte), up to CRLF.
 * Returns the value and sets `end[0]` to the offset after the LF; -2 when the line is not
 * complete yet (before `lim`), NaN when it is not a number line.
 */
function readNumberLine(data: Buffer, o: number, lim: number, end: number[]): number {
  let neg = false;
  let v = 0;
  let digits = 0;
  if (o < lim && data[o] === 0x2d) {
    neg = true;
    o++;
  }
  for (; o < lim; o++) {
    const c = data[o] as number;
    if (c >= 0x30 && c <= 0x39) {
      v = v * 10 + (c - 0x30);
      if (++digits > 12) return NaN;
      continue;
    }
    if (c !== CR || digits === 0) return NaN;
    if (o + 1 >= lim) return -2;
    if (data[o + 1] !== LF) return NaN;
    end[0] = o + 2;
    return neg ? -v : v;
  }
  return -2;
}

const scratchEnd = [0];

/**
 * Length of the first complete client command in data[off, off + len): 0 when more bytes are
 * needed, -1 when the bytes are not a command (not an array of bulk strings, nor an inline line
 * starting with a letter).
 */
export function commandLength(data: Buffer, off: number, len: number): number {
  const lim = off + len;
  if (len === 0) return 0;
  const c0 = data[off] as number;
  if (c0 !== 0x2a /* * */) {
    // an inline command starts with a letter (or is an empty line); anything else (a '$' say)
    // is the inside of a command: a session picked up mid-command
    if (!((c0 | 0x20) >= 0x61 && (c0 | 0x20) <= 0x7a) && c0 !== CR && c0 !== LF) return -1;
    const nl = data.indexOf(LF, off);
    if (nl < 0 || nl >= lim) return len > MAX_INLINE ? -1 : 0;
    return nl + 1 - off <= MAX_INLINE ? nl + 1 - off : -1;
  }
  const n = readNumberLine(data, off + 1, lim, scratchEnd);
  if (n === -2) return 0;
  if (Number.isNaN(n) || n > MAX_ARGS) return -1;
  let o = scratchEnd[0] as number;
  for (let i = 0; i < n; i++) {
    if (o >= lim) return 0;
    if (data[o] !== 0x24 /* $ */) return -1;
    const l = readNumberLine(data, o + 1, lim, scratchEnd);
    if (l === -2) return 0;
    if (Number.isNaN(l) || l < 0 || l > MAX_BULK) return -1;
    o = (scratchEnd[0] as number) + l + 2;
    if (o > lim) return 0;
    if (data[o - 2] !== CR || data[o - 1] !== LF) return -1;
  }
  return o - off;
}

/**
 * Locates the arguments of one complete command (as framed by commandLength) into `out` as
 * flat [start, end) offset pairs; returns the number of arguments. Inline commands are split at
 * spaces and tabs (no quotes). At most `max` arguments are located.
 */
export function commandArgs(msg: Buffer, out: number[], max = 16): number {
  out.length = 0;
  if (msg.length === 0) return 0;
  if (msg[0] !== 0x2a) {
    let end = msg.length;
    while (end > 0 && (msg[end - 1] === LF || msg[end - 1] === CR)) end--;
    let i = 0;
    let n = 0;
    while (i < end && n < max) {
      while (i < end && (msg[i] === 0x20 || msg[i] === 0x09)) i++;
      if (i >= end) break;
      const s = i;
      while (i < end && msg[i] !== 0x20 && msg[i] !== 0x09) i++;
      out.push(s, i);
      n++;
    }
    return n;
  }
  const total = readNumberLine(msg, 1, msg.length, scratchEnd);
  if (!(total > 0)) return 0;
  let o = scratchEnd[0] as number;
  const n = Math.min(total, max);
  for (let i = 0; i < n; i++) {
    const l = readNumberLine(msg, o + 1, msg.length, scratchEnd);
    const s = scratchEnd[0] as number;
    out.push(s, s + l);
    o = s + l + 2;
  }
  return n;
}

/** Whether msg[s, e) equals the upper-case ASCII word `upper`, ignoring case. */
export function argIs(msg: Buffer, s: number, e: number, upper: string): boolean {
  if (e - s !== upper.length) return false;
  for (let i = 0; i < upper.length; i++) {
    const c = msg[s + i] as number;
    if ((c >= 0x61 && c <= 0x7a ? c - 32 : c) !== upper.charCodeAt(i)) return false;
  }
  return true;
}

/** A command as a RESP array of bulk strings. */
export function buildCommand(args: readonly (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a, 'utf8') : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Called for each complete top-level reply with its type byte (`+`, `-`, `*`, `%`, ...). */
export type OnReply = (type: number) => void;

const enum Mode {
  /** At the start of a value: its type byte comes next. */
  Type = 0,
  /** Inside a line value (`+ - : _ , # (`): until its LF. */
  Line = 1,
  /** Inside a length/count header line: digits until CRLF. */
  Header = 2,
  /** Inside a blob body (and its CRLF): `skip` bytes left. */
  Body = 3,
}

/**
 * Counts the complete top-level replies of one direction's byte stream, fed in order. Missing
 * bytes inside a blob body are skipped; missing bytes anywhere else make the framing `lost`
 * (nothing is reported after that).
 */
export class ReplyFramer {
  lost = false;
  private mode = Mode.Type;
  /** Type byte of the value being read (header or line). */
  private type = 0;
  /** Type byte of the current top-level value. */
  private topType = 0;
  private num = 0;
  private neg = false;
  private digits = 0;
  private sawCr = false;
  private skip = 0;
  /** Elements left per open aggregate (innermost last); attribute frames are flagged in `attr`. */
  private readonly left: number[] = [];
  private readonly attr: boolean[] = [];

  constructor(private readonly onReply: OnReply) {}

  /** Reply bytes in order; then `missing` bytes that followed but were not carried. */
  feed(data: Buffer, missing: number): void {
    if (this.lost) return;
    let i = 0;
    const n = data.length;
    while (i < n && !this.lost) {
      switch (this.mode) {
        case Mode.Type: {
          const t = data[i++] as number;
          this.type = t;
          if (this.left.length === 0) this.topType = t;
          if (t === 0x2b || t === 0x2d || t === 0x3a || t === 0x5f || t === 0x2c || t === 0x23 || t === 0x28) {
            this.mode = Mode.Line;
            this.sawCr = false;
          } else if (
            t === 0x24 ||
            t === 0x21 ||
            t === 0x3d ||
            t === 0x2a ||
            t === 0x7e ||
            t === 0x3e ||
            t === 0x25 ||
            t === 0x7c
          ) {
            this.mode = Mode.Header;
            this.num = 0;
            this.neg = false;
            this.digits = 0;
            this.sawCr = false;
          } else this.lost = true;
          break;
        }
        case Mode.Line: {
          const nl = data.indexOf(LF, i);
          if (nl < 0) {
            i = n;
            break;
          }
          i = nl + 1;
          this.mode = Mode.Type;
          this.done();
          break;
        }
        case Mode.Header: {
          const c = data[i++] as number;
          if (this.sawCr) {
            if (c !== LF || this.digits === 0) {
              this.lost = true;
              break;
            }
            this.header(this.neg ? -this.num : this.num);
          } else if (c === CR) this.sawCr = true;
          else if (c === 0x2d && this.digits === 0 && !this.neg) this.neg = true;
          else if (c >= 0x30 && c <= 0x39 && this.digits < 12) {
            this.num = this.num * 10 + (c - 0x30);
            this.digits++;
          } else this.lost = true;
          break;
        }
        case Mode.Body: {
          const k = Math.min(this.skip, n - i);
          i += k;
          this.skip -= k;
          if (this.skip === 0) {
            this.mode = Mode.Type;
            this.done();
          }
          break;
        }
      }
    }
    if (missing > 0 && !this.lost) {
      if (this.mode === Mode.Body && missing <= this.skip) {
        this.skip -= missing;
        if (this.skip === 0) {
          this.mode = Mode.Type;
          this.done();
        }
      } else this.lost = true;
    }
  }

  /** A header line ended with value `v`. */
  private header(v: number): void {
    const t = this.type;
    this.mode = Mode.Type;
    if (t === 0x24 || t === 0x21 || t === 0x3d) {
      if (v < 0) return this.done(); // null bulk
      this.skip = v + 2;
      this.mode = Mode.Body;
      if (this.skip === 0) this.done();
      return;
    }
    const count = t === 0x25 || t === 0x7c ? v * 2 : v;
    if (count <= 0) {
      if (t === 0x7c) return; // an empty attribute: the value follows
      return this.done();
    }
    this.left.push(count);
    this.attr.push(t === 0x7c);
  }

  /** A value ended: close the aggregates it completes; a top-level one is reported. */
  private done(): void {
    const left = this.left;
    while (left.length > 0) {
      const k = left.length - 1;
      const r = (left[k] as number) - 1;
      if (r > 0) {
        left[k] = r;
        return;
      }
      left.pop();
      if (this.attr.pop() === true) return; // the annotated value follows (not an element)
    }
    const t = this.topType;
    if (t === 0x3e /* > push */ || t === 0x7c /* | attribute */) return;
    this.onReply(t);
  }
}
