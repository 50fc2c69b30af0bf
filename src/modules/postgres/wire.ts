/**
 * PostgreSQL wire protocol (v3), pure codecs (no I/O, no clock). Layouts: the PostgreSQL
 * documentation, "Frontend/Backend Protocol" / "Message Formats".
 *
 * A connection's first client messages are untyped: an int32 length (itself included) and an
 * int32 code (StartupMessage 3.0, SSLRequest, GSSENCRequest, CancelRequest). After that every
 * message, both ways, is typed: one type byte and an int32 length (itself included, the type
 * byte not). The server's answer to SSLRequest / GSSENCRequest is a single byte ('S', 'G', 'N').
 */

/** StartupMessage protocol 3.0. */
export const PROTOCOL_3 = 196608;
export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;

/** Largest untyped (startup) message accepted (the server's own limit is 10000). */
export const MAX_STARTUP_BYTES = 10000;
/** Largest typed message a framer accepts (the server's is 1 GiB). */
export const MAX_MESSAGE_BYTES = 0x40000000;

/** Frontend message types (after the startup). */
const FRONTEND_TYPES = new Set('BCdcfDEHFPpQSX'.split('').map((c) => c.charCodeAt(0)));

/**
 * Length of the first complete untyped message at data[off, off+len): 0 when more bytes are
 * needed, -1 when the bytes cannot be one (a TLS record, a length out of range).
 */
export function untypedLength(data: Buffer, off: number, len: number): number {
  if (len < 4) return 0;
  const n = data.readUInt32BE(off);
  if (n < 8 || n > MAX_STARTUP_BYTES) return -1;
  return len >= n ? n : 0;
}

/** Length of the first complete typed frontend message, 0 when more bytes are needed, -1 when not a message. */
export function typedLength(data: Buffer, off: number, len: number): number {
  if (len < 1) return 0;
  if (!FRONTEND_TYPES.has(data[off] as number)) return -1;
  if (len < 5) return 0;
  const n = data.readUInt32BE(off + 1);
  if (n < 4 || n > MAX_MESSAGE_BYTES) return -1;
  return len >= n + 1 ? n + 1 : 0;
}

/** An untyped first message, parsed. */
export type StartupKind =
  | { kind: 'startup'; params: Map<string, string> }
  | { kind: 'ssl' }
  | { kind: 'gssenc' }
  | { kind: 'cancel'; pid: number; secret: number }
  | { kind: 'bad'; why: string };

/** Parses one complete untyped message (as framed by untypedLength). */
export function parseUntyped(m: Buffer): StartupKind {
  if (m.length < 8) return { kind: 'bad', why: 'shorter than 8 bytes' };
  const code = m.readUInt32BE(4);
  if (code === SSL_REQUEST_CODE && m.length === 8) return { kind: 'ssl' };
  if (code === GSSENC_REQUEST_CODE && m.length === 8) return { kind: 'gssenc' };
  if (code === CANCEL_REQUEST_CODE && m.length === 16)
    return { kind: 'cancel', pid: m.readUInt32BE(8), secret: m.readUInt32BE(12) };
  if (code >>> 16 !== 3) return { kind: 'bad', why: `protocol ${code >>> 16}.${code & 0xffff}` };
  const params = new Map<string, string>();
  let o = 8;
  while (o < m.length && m[o] !== 0) {
    const ke = m.indexOf(0, o);
    if (ke < 0) return { kind: 'bad', why: 'parameter name not terminated' };
    const ve = m.indexOf(0, ke + 1);
    if (ve < 0) return { kind: 'bad', why: 'parameter value not terminated' };
    params.set(m.toString('utf8', o, ke), m.toString('utf8', ke + 1, ve));
    o = ve + 1;
  }
  return { kind: 'startup', params };
}

/** A StartupMessage (protocol 3.0) with these parameters, in order. */
export function buildStartup(params: ReadonlyMap<string, string>): Buffer {
  const parts: Buffer[] = [Buffer.alloc(8)];
  for (const [k, v] of params) parts.push(Buffer.from(`${k}\0${v}\0`, 'utf8'));
  parts.push(Buffer.from([0]));
  const b = Buffer.concat(parts);
  b.writeUInt32BE(b.length, 0);
  b.writeUInt32BE(PROTOCOL_3, 4);
  return b;
}

/** A CancelRequest for this backend key. */
export function buildCancel(pid: number, secret: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(16, 0);
  b.writeUInt32BE(CANCEL_REQUEST_CODE, 4);
  b.writeUInt32BE(pid >>> 0, 8);
  b.writeUInt32BE(secret >>> 0, 12);
  return b;
}

/** A typed message: type byte, int32 length, body. */
export function buildTyped(type: string, body: Buffer): Buffer {
  const b = Buffer.allocUnsafe(5 + body.length);
  b[0] = type.charCodeAt(0);
  b.writeUInt32BE(4 + body.length, 1);
  body.copy(b, 5);
  return b;
}

/** The C string at body[off]: its text and the offset after its NUL; null when not terminated. */
export function cstring(body: Buffer, off: number): { s: string; next: number } | null {
  const e = off <= body.length ? body.indexOf(0, off) : -1;
  return e < 0 ? null : { s: body.toString('utf8', off, e), next: e + 1 };
}

/** One backend message: its type and a copy of its body, or the single-byte answer to a negotiation. */
export interface BackendMessage {
  /** The type byte as a character; for a negotiation answer the byte itself ('S', 'N', 'G'). */
  type: string;
  body: Buffer;
  /** True for a single-byte negotiation answer. */
  single: boolean;
}

/**
 * Frames the backend's byte stream, fed in arbitrary chunks, some of them with bytes missing
 * (the payload cap): a message cut by a hole is skipped whole; a hole over a message boundary
 * loses the framing for good (`lost`).
 */
export class BackendFramer {
  private pending: Buffer = Buffer.alloc(0);
  /** Bytes of a cut message still to skip. */
  private skip = 0;
  /** Single-byte answers expected next (one per SSLRequest / GSSENCRequest sent). */
  singles = 0;
  /** The framing was lost (a hole across a message boundary, or a bad length). */
  lost = false;
  /** Messages skipped because bytes of them were missing. */
  cut = 0;

  /** Feeds bytes and then `missing` undelivered bytes; calls `on` for each complete message. */
  feed(data: Buffer, missing: number, on: (m: BackendMessage) => void): void {
    if (this.lost) return;
    let o = 0;
    if (this.skip > 0) {
      const k = Math.min(this.skip, data.length);
      this.skip -= k;
      o = k;
    }
    let b = data.subarray(o);
    if (this.pending.length > 0) b = Buffer.concat([this.pending, b]);
    let p = 0;
    for (;;) {
      if (this.singles > 0 && p < b.length) {
        this.singles--;
        on({ type: String.fromCharCode(b[p] as number), body: Buffer.alloc(0), single: true });
        p++;
        continue;
      }
      if (b.length - p < 5) break;
      const n = b.readUInt32BE(p + 1);
      if (n < 4 || n > MAX_MESSAGE_BYTES) {
        this.lost = true;
        return;
      }
      if (b.length - p < n + 1) break;
      on({ type: String.fromCharCode(b[p] as number), body: Buffer.from(b.subarray(p + 5, p + 1 + n)), single: false });
      p += n + 1;
    }
    const rest = b.subarray(p);
    if (missing > 0) {
      if (this.skip > 0) {
        const k = Math.min(this.skip, missing);
        this.skip -= k;
        missing -= k;
      }
      if (missing > 0) {
        if (rest.length < 5 || this.singles > 0) {
          this.lost = true;
          return;
        }
        const need = rest.readUInt32BE(1) + 1 - rest.length;
        if (missing > need) {
          this.lost = true;
          return;
        }
        this.cut++;
        this.skip = need - missing;
        this.pending = Buffer.alloc(0);
        return;
      }
    }
    this.pending = rest.length === 0 ? Buffer.alloc(0) : Buffer.from(rest);
  }
}

/** Authentication request codes ('R' messages). */
export const AUTH_OK = 0;
export const AUTH_CLEARTEXT = 3;
export const AUTH_MD5 = 5;
export const AUTH_SASL = 10;
export const AUTH_SASL_CONTINUE = 11;
export const AUTH_SASL_FINAL = 12;

/** The fields of an ErrorResponse / NoticeResponse body by field code (S, C, M, ...). */
export function errorFields(body: Buffer): Map<string, string> {
  const f = new Map<string, string>();
  let o = 0;
  while (o < body.length && body[o] !== 0) {
    const code = String.fromCharCode(body[o] as number);
    const s = cstring(body, o + 1);
    if (s === null) break;
    f.set(code, s.s);
    o = s.next;
  }
  return f;
}

/** The mechanism names of an AuthenticationSASL body (after its int32 code). */
export function saslMechanisms(body: Buffer): string[] {
  const out: string[] = [];
  let o = 4;
  for (;;) {
    const s = cstring(body, o);
    if (s === null || s.s === '') return out;
    out.push(s.s);
    o = s.next;
  }
}

/** A captured PasswordMessage-family ('p') body, classified. */
export type PasswordKind =
  | { kind: 'saslInitial'; mechanism: string; data: Buffer }
  | { kind: 'password'; text: string }
  | { kind: 'saslResponse'; data: Buffer };

/**
 * Classifies a 'p' body: a SASLInitialResponse (mechanism C string, int32 length, data), a
 * PasswordMessage (one C string filling the body: cleartext or md5), else a SASLResponse.
 */
export function classifyPassword(body: Buffer): PasswordKind {
  const s = cstring(body, 0);
  if (s !== null && s.next === body.length) return { kind: 'password', text: s.s };
  if (s !== null && s.next + 4 <= body.length) {
    const n = body.readInt32BE(s.next);
    const rest = body.length - s.next - 4;
    if (n === rest || (n === -1 && rest === 0))
      return { kind: 'saslInitial', mechanism: s.s, data: Buffer.from(body.subarray(s.next + 4)) };
  }
  return { kind: 'saslResponse', data: Buffer.from(body) };
}

/** A SASLInitialResponse message. */
export function buildSaslInitial(mechanism: string, data: Buffer): Buffer {
  const m = Buffer.from(mechanism + '\0', 'utf8');
  const body = Buffer.alloc(m.length + 4 + data.length);
  m.copy(body, 0);
  body.writeInt32BE(data.length, m.length);
  data.copy(body, m.length + 4);
  return buildTyped('p', body);
}

/** A PasswordMessage (cleartext or md5 text). */
export function buildPassword(text: string): Buffer {
  return buildTyped('p', Buffer.from(text + '\0', 'utf8'));
}
