/**
 * The MySQL/MariaDB connection phase, pure codecs: the server greeting (HandshakeV10), the
 * client's HandshakeResponse41 (parsed, and rebuilt with a mysql_native_password answer to
 * another scramble), SSLRequest and compression detection, AuthSwitchRequest, and
 * COM_CHANGE_USER (parsed and rebuilt the same way). Layouts: the MySQL client/server
 * protocol documentation ("Connection Phase", "COM_CHANGE_USER"); MariaDB's extended
 * capabilities sit in the greeting's and the response's reserved bytes.
 */
import { createHash } from 'node:crypto';
import { encodeLenEnc, encodePacket, nulEnd, readLenEnc } from './packet';

/** Capability flags (the subset the replay needs). */
export const CLIENT_LONG_PASSWORD = 0x1;
export const CLIENT_CONNECT_WITH_DB = 0x8;
export const CLIENT_COMPRESS = 0x20;
export const CLIENT_PROTOCOL_41 = 0x200;
export const CLIENT_SSL = 0x800;
export const CLIENT_SECURE_CONNECTION = 0x8000;
export const CLIENT_PLUGIN_AUTH = 0x80000;
export const CLIENT_CONNECT_ATTRS = 0x100000;
export const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 0x200000;
export const CLIENT_DEPRECATE_EOF = 0x1000000;
/** MySQL 8: zstd compression (its level byte follows the response's attributes). */
export const CLIENT_ZSTD_COMPRESSION_ALGORITHM = 0x4000000;

/** The plugin whose answer the replay can recompute. */
export const NATIVE_PASSWORD = 'mysql_native_password';
/** Size of a mysql_native_password scramble and answer. */
export const SCRAMBLE_BYTES = 20;
/** Size of an SSLRequest payload (a HandshakeResponse41 cut after its reserved bytes). */
export const SSL_REQUEST_BYTES = 32;

/** The server greeting (Protocol::HandshakeV10). */
export interface Greeting {
  protocolVersion: number;
  serverVersion: string;
  connectionId: number;
  /** The auth plugin data (scramble): part 1 (8 bytes) + part 2 without its NUL (12 for native). */
  scramble: Buffer;
  /** The 32 standard capability bits. */
  capabilities: number;
  /** MariaDB's extended capabilities (reserved bytes 6..9 when CLIENT_LONG_PASSWORD/CLIENT_MYSQL is clear), else 0. */
  mariadbCapabilities: number;
  charset: number;
  status: number;
  /** Auth plugin name ('' without CLIENT_PLUGIN_AUTH). */
  authPlugin: string;
}

/** Why a packet did not parse. */
export type ParseError = { error: string };

function isErr<T>(v: T | ParseError): v is ParseError {
  return typeof v === 'object' && v !== null && 'error' in v;
}
export { isErr as isParseError };

/** Parses a greeting payload (the first packet from the server, seq 0). */
export function parseGreeting(p: Buffer): Greeting | ParseError {
  if (p.length < 1) return { error: 'empty greeting' };
  if (p[0] === 0xff) return { error: 'the server sent an error instead of a greeting' };
  if (p[0] !== 10) return { error: `protocol version ${p[0]}, expected 10` };
  const ve = nulEnd(p, 1);
  if (ve < 0) return { error: 'server version not terminated' };
  let o = ve + 1;
  if (o + 4 + 8 + 1 + 2 > p.length) return { error: 'greeting cut before its capabilities' };
  const connectionId = p.readUInt32LE(o);
  o += 4;
  const part1 = p.subarray(o, o + 8);
  o += 9; // + filler
  let capabilities = p.readUInt16LE(o);
  o += 2;
  let charset = 0;
  let status = 0;
  let dataLen = 0;
  let mariadbCapabilities = 0;
  let part2: Buffer = Buffer.alloc(0);
  let authPlugin = '';
  if (o < p.length) {
    if (o + 1 + 2 + 2 + 1 + 10 > p.length) return { error: 'greeting cut in its extended part' };
    charset = p[o] as number;
    status = p.readUInt16LE(o + 1);
    capabilities = (capabilities | (p.readUInt16LE(o + 3) << 16)) >>> 0;
    dataLen = p[o + 5] as number;
    if ((capabilities & CLIENT_LONG_PASSWORD) === 0) mariadbCapabilities = p.readUInt32LE(o + 6 + 6);
    o += 16;
    if ((capabilities & CLIENT_SECURE_CONNECTION) !== 0) {
      const n = Math.max(13, dataLen - 8);
      if (o + n > p.length) return { error: 'greeting cut in its scramble' };
      part2 = p.subarray(o, o + n);
      if (part2[part2.length - 1] === 0) part2 = part2.subarray(0, part2.length - 1);
      o += n;
    }
    if ((capabilities & CLIENT_PLUGIN_AUTH) !== 0 && o < p.length) {
      const e = nulEnd(p, o);
      authPlugin = p.toString('latin1', o, e < 0 ? p.length : e);
    }
  }
  return {
    protocolVersion: 10,
    serverVersion: p.toString('latin1', 1, ve),
    connectionId,
    scramble: Buffer.concat([part1, part2]),
    capabilities,
    mariadbCapabilities,
    charset,
    status,
    authPlugin,
  };
}

/** The client's HandshakeResponse41, with the offsets needed to rebuild it. */
export interface HandshakeResponse {
  capabilities: number;
  maxPacketSize: number;
  charset: number;
  /** MariaDB's extended client capabilities (reserved bytes 19..22), 0 from MySQL clients. */
  mariadbCapabilities: number;
  user: string;
  /** The auth response as sent (20 bytes for mysql_native_password, empty for no password). */
  authResponse: Buffer;
  /** null without CLIENT_CONNECT_WITH_DB. */
  database: string | null;
  /** '' without CLIENT_PLUGIN_AUTH. */
  authPlugin: string;
  /** Offset of the auth response's length field and the offset after the auth response. */
  authStart: number;
  authEnd: number;
}

/** True when a client's first packet (seq 1, before any response) is an SSLRequest: TLS follows. */
export function isSslRequest(p: Buffer): boolean {
  return p.length >= 4 && (p.readUInt32LE(0) & CLIENT_SSL) !== 0;
}

/**
 * True when the session negotiated compression: the client asked for CLIENT_COMPRESS (or
 * zstd) and the server offered it. Everything after the login is then in compressed packets.
 */
export function negotiatedCompression(greeting: Greeting, resp: HandshakeResponse): boolean {
  const both = greeting.capabilities & resp.capabilities;
  return (both & (CLIENT_COMPRESS | CLIENT_ZSTD_COMPRESSION_ALGORITHM)) !== 0;
}

/** Parses a HandshakeResponse41 payload (an SSLRequest is refused: check isSslRequest first). */
export function parseHandshakeResponse(p: Buffer): HandshakeResponse | ParseError {
  if (p.length < SSL_REQUEST_BYTES) return { error: `${p.length} bytes: too short for a HandshakeResponse41` };
  const capabilities = p.readUInt32LE(0);
  if ((capabilities & CLIENT_PROTOCOL_41) === 0)
    return { error: 'not CLIENT_PROTOCOL_41 (pre-4.1 clients are not replayed)' };
  if ((capabilities & CLIENT_SSL) !== 0 && p.length === SSL_REQUEST_BYTES) return { error: 'an SSLRequest' };
  const ue = nulEnd(p, SSL_REQUEST_BYTES);
  if (ue < 0) return { error: 'user name not terminated' };
  const user = p.toString('utf8', SSL_REQUEST_BYTES, ue);
  const authStart = ue + 1;
  let o = authStart;
  let authResponse: Buffer;
  if ((capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) !== 0) {
    const l = readLenEnc(p, o);
    if (l === null || o + l.bytes + l.value > p.length) return { error: 'auth response cut' };
    authResponse = p.subarray(o + l.bytes, o + l.bytes + l.value);
    o += l.bytes + l.value;
  } else if ((capabilities & CLIENT_SECURE_CONNECTION) !== 0) {
    const n = p[o];
    if (n === undefined || o + 1 + n > p.length) return { error: 'auth response cut' };
    authResponse = p.subarray(o + 1, o + 1 + n);
    o += 1 + n;
  } else {
    const e = nulEnd(p, o);
    if (e < 0) return { error: 'auth response not terminated' };
    authResponse = p.subarray(o, e);
    o = e + 1;
  }
  const authEnd = o;
  let database: string | null = null;
  if ((capabilities & CLIENT_CONNECT_WITH_DB) !== 0 && o < p.length) {
    const e = nulEnd(p, o);
    if (e < 0) return { error: 'database name not terminated' };
    database = p.toString('utf8', o, e);
    o = e + 1;
  }
  let authPlugin = '';
  if ((capabilities & CLIENT_PLUGIN_AUTH) !== 0 && o < p.length) {
    const e = nulEnd(p, o);
    authPlugin = p.toString('latin1', o, e < 0 ? p.length : e);
  }
  return {
    capabilities,
    maxPacketSize: p.readUInt32LE(4),
    charset: p[8] as number,
    mariadbCapabilities: p.readUInt32LE(28),
    user,
    authResponse: Buffer.from(authResponse),
    database,
    authPlugin,
    authStart,
    authEnd,
  };
}

/**
 * The mysql_native_password answer: SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password))),
 * over the first 20 bytes of the scramble. An empty password answers nothing (empty).
 */
export function nativePasswordAnswer(password: string | Buffer, scramble: Buffer): Buffer {
  const pw = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
  if (pw.length === 0) return Buffer.alloc(0);
  const h1 = createHash('sha1').update(pw).digest();
  const h2 = createHash('sha1').update(h1).digest();
  const h3 = createHash('sha1').update(scramble.subarray(0, SCRAMBLE_BYTES)).update(h2).digest();
  for (let i = 0; i < h1.length; i++) h1[i] = (h1[i] as number) ^ (h3[i] as number);
  return h1;
}

/** Encodes an auth response the way `capabilities` says (lenenc, 1-byte length, or NUL-terminated). */
function encodeAuth(capabilities: number, answer: Buffer): Buffer {
  if ((capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA) !== 0)
    return Buffer.concat([encodeLenEnc(answer.length), answer]);
  if ((capabilities & CLIENT_SECURE_CONNECTION) !== 0) return Buffer.concat([Buffer.from([answer.length]), answer]);
  return Buffer.concat([answer, Buffer.from([0])]);
}

/**
 * Rebuilds a captured HandshakeResponse41 payload for another server: the auth response
 * replaced by the mysql_native_password answer of `password` to `scramble` (the target's),
 * and, when the client had asked for another plugin, the plugin name set to
 * mysql_native_password. Everything else (capabilities, user, database, attributes) is kept.
 * Returns the new payload; frame it with `encodePacket(seq, payload)` (its length is fixed
 * by the framing, the sequence id is the captured one, normally 1).
 */
export function rebuildHandshakeResponse(
  p: Buffer,
  resp: HandshakeResponse,
  password: string,
  scramble: Buffer,
): Buffer {
  const answer = nativePasswordAnswer(password, scramble);
  const head = p.subarray(0, resp.authStart);
  let tail = p.subarray(resp.authEnd);
  if ((resp.capabilities & CLIENT_PLUGIN_AUTH) !== 0 && resp.authPlugin !== '' && resp.authPlugin !== NATIVE_PASSWORD) {
    // database (if any) is kept; the plugin name after it is replaced
    let o = 0;
    if (resp.database !== null) o = tail.indexOf(0) + 1;
    const pe = tail.indexOf(0, o);
    tail = Buffer.concat([
      tail.subarray(0, o),
      Buffer.from(NATIVE_PASSWORD, 'latin1'),
      Buffer.from([0]),
      tail.subarray(pe < 0 ? tail.length : pe + 1),
    ]);
  }
  return Buffer.concat([head, encodeAuth(resp.capabilities, answer), tail]);
}

/** An AuthSwitchRequest (0xfe + plugin name + plugin data) from the server. */
export interface AuthSwitch {
  plugin: string;
  /** Plugin data without the trailing NUL (the new scramble for mysql_native_password). */
  data: Buffer;
}

/**
 * Parses an AuthSwitchRequest payload; null for anything else (an OK 0x00, an error 0xff, or
 * a short 0xfe EOF: fewer than 9 bytes... a switch always names its plugin).
 */
export function parseAuthSwitch(p: Buffer): AuthSwitch | null {
  if (p.length < 2 || p[0] !== 0xfe) return null;
  const e = nulEnd(p, 1);
  if (e < 0) return p.length === 1 ? null : { plugin: p.toString('latin1', 1), data: Buffer.alloc(0) };
  let data = p.subarray(e + 1);
  if (data.length > 0 && data[data.length - 1] === 0) data = data.subarray(0, data.length - 1);
  return { plugin: p.toString('latin1', 1, e), data: Buffer.from(data) };
}

/** The client's answer to an AuthSwitchRequest for mysql_native_password: a packet of the answer, seq = switch's + 1. */
export function authSwitchResponse(switchSeq: number, password: string, switchData: Buffer): Buffer {
  return encodePacket((switchSeq + 1) & 0xff, nativePasswordAnswer(password, switchData));
}

/** Command byte of COM_CHANGE_USER. */
export const COM_CHANGE_USER = 0x11;

/** A parsed COM_CHANGE_USER payload. */
export interface ChangeUser {
  user: string;
  authResponse: Buffer;
  database: string;
  /** null when the packet ends before it. */
  charset: number | null;
  authPlugin: string;
  /** Offsets of the auth response field (its length byte) and after it. */
  authStart: number;
  authEnd: number;
}

/**
 * Parses COM_CHANGE_USER; `capabilities` are the session's (the client's HandshakeResponse
 * capabilities): they say whether the auth response has a length byte and a plugin follows.
 */
export function parseChangeUser(p: Buffer, capabilities: number): ChangeUser | ParseError {
  if (p[0] !== COM_CHANGE_USER) return { error: 'not COM_CHANGE_USER' };
  const ue = nulEnd(p, 1);
  if (ue < 0) return { error: 'user name not terminated' };
  const authStart = ue + 1;
  let o = authStart;
  let authResponse: Buffer;
  if ((capabilities & CLIENT_SECURE_CONNECTION) !== 0) {
    const n = p[o];
    if (n === undefined || o + 1 + n > p.length) return { error: 'auth response cut' };
    authResponse = p.subarray(o + 1, o + 1 + n);
    o += 1 + n;
  } else {
    const e = nulEnd(p, o);
    if (e < 0) return { error: 'auth response not terminated' };
    authResponse = p.subarray(o, e);
    o = e + 1;
  }
  const authEnd = o;
  const de = nulEnd(p, o);
  if (de < 0) return { error: 'database name not terminated' };
  const database = p.toString('utf8', o, de);
  o = de + 1;
  let charset: number | null = null;
  let authPlugin = '';
  if (o + 2 <= p.length) {
    charset = p.readUInt16LE(o);
    o += 2;
    if ((capabilities & CLIENT_PLUGIN_AUTH) !== 0 && o < p.length) {
      const e = nulEnd(p, o);
      authPlugin = p.toString('latin1', o, e < 0 ? p.length : e);
    }
  }
  return {
    user: p.toString('utf8', 1, ue),
    authResponse: Buffer.from(authResponse),
    database,
    charset,
    authPlugin,
    authStart,
    authEnd,
  };
}

/**
 * Rebuilds a captured COM_CHANGE_USER for another server: the auth response replaced by the
 * mysql_native_password answer of `password` to `scramble` (the target's current one: the
 * greeting's, or the last AuthSwitchRequest's). Everything else is kept.
 */
export function rebuildChangeUser(
  p: Buffer,
  cu: ChangeUser,
  capabilities: number,
  password: string,
  scramble: Buffer,
): Buffer {
  const answer = nativePasswordAnswer(password, scramble);
  const auth =
    (capabilities & CLIENT_SECURE_CONNECTION) !== 0
      ? Buffer.concat([Buffer.from([answer.length]), answer])
      : Buffer.concat([answer, Buffer.from([0])]);
  return Buffer.concat([p.subarray(0, cu.authStart), auth, p.subarray(cu.authEnd)]);
}
