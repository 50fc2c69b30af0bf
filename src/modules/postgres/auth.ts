/**
 * PostgreSQL password answers, pure (node:crypto hashes only): md5 (`md5` + md5(md5(password +
 * user) + salt)) and SCRAM-SHA-256 (RFC 5802 / RFC 7677 as PostgreSQL uses it: the user name
 * in the SCRAM messages is ignored, the role is the StartupMessage's).
 */
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';

/** The md5 PasswordMessage text for `user` and the server's 4-byte salt. */
export function md5Answer(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5')
    .update(password + user, 'utf8')
    .digest('hex');
  return 'md5' + createHash('md5').update(inner, 'latin1').update(salt).digest('hex');
}

/** A parsed client-first-message: its GS2 header ("n,," or "y,,") and bare part ("n=...,r=nonce"). */
export interface ClientFirst {
  gs2: string;
  bare: string;
  nonce: string;
}

/**
 * Parses a client-first-message. Returns 'channelBinding' when the client asked for channel
 * binding (`p=`: only over TLS), null when it is not a SCRAM client-first-message.
 */
export function parseClientFirst(data: Buffer): ClientFirst | 'channelBinding' | null {
  const s = data.toString('utf8');
  if (s.startsWith('p=')) return 'channelBinding';
  const m = /^([ny]),([^,]*),(.*)$/.exec(s);
  if (m === null) return null;
  const bare = m[3] as string;
  const r = /(?:^|,)r=([^,]+)/.exec(bare);
  if (r === null) return null;
  return { gs2: `${m[1]},${m[2]},`, bare, nonce: r[1] as string };
}

/** A client-first-message for a nonce (the form libpq sends: no user name, no channel binding). */
export function clientFirstFor(nonce: string): ClientFirst {
  return { gs2: 'n,,', bare: `n=,r=${nonce}`, nonce };
}

/** The bytes of a client-first-message. */
export function clientFirstBytes(cf: ClientFirst): Buffer {
  return Buffer.from(cf.gs2 + cf.bare, 'utf8');
}

/** A parsed server-first-message. */
export interface ServerFirst {
  text: string;
  nonce: string;
  salt: Buffer;
  iterations: number;
}

/** Parses a server-first-message ("r=...,s=...,i=..."); null when malformed. */
export function parseServerFirst(data: Buffer): ServerFirst | null {
  const text = data.toString('utf8');
  const f = new Map<string, string>();
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    if (eq === 1) f.set(part[0] as string, part.slice(2));
  }
  const nonce = f.get('r');
  const salt = f.get('s');
  const it = Number(f.get('i'));
  if (nonce === undefined || salt === undefined || !Number.isInteger(it) || it < 1) return null;
  return { text, nonce, salt: Buffer.from(salt, 'base64'), iterations: it };
}

/** The client-final-message and the server signature the server must send back. */
export interface ClientFinal {
  message: Buffer;
  serverSignature: Buffer;
}

const saltedCache = new Map<string, Buffer>();
/** Most salted passwords cached (one per user and target salt; PBKDF2 is the cost of a login). */
const SALTED_CACHE_MAX = 1024;

/** Hi(password, salt, i) (PBKDF2-HMAC-SHA-256), cached by its inputs. */
export function saltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  const key = `${iterations}:${salt.toString('base64')}:${password}`;
  let v = saltedCache.get(key);
  if (v === undefined) {
    // SASLprep of ASCII passwords is the identity; NFKC is its main mapping otherwise.
    v = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
    if (saltedCache.size >= SALTED_CACHE_MAX) saltedCache.delete(saltedCache.keys().next().value as string);
    saltedCache.set(key, v);
  }
  return v;
}

function hmac(key: Buffer, s: string): Buffer {
  return createHmac('sha256', key).update(s, 'utf8').digest();
}

/**
 * The client-final-message answering `sf` for `cf`, and the expected server signature.
 * Null when the server's nonce does not extend the client's (not an answer to this client).
 */
export function clientFinal(password: string, cf: ClientFirst, sf: ServerFirst): ClientFinal | null {
  if (!sf.nonce.startsWith(cf.nonce) || sf.nonce.length <= cf.nonce.length) return null;
  const salted = saltedPassword(password, sf.salt, sf.iterations);
  const clientKey = hmac(salted, 'Client Key');
  const storedKey = createHash('sha256').update(clientKey).digest();
  const withoutProof = `c=${Buffer.from(cf.gs2, 'utf8').toString('base64')},r=${sf.nonce}`;
  const authMessage = `${cf.bare},${sf.text},${withoutProof}`;
  const sig = hmac(storedKey, authMessage);
  const proof = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) proof[i] = (clientKey[i] as number) ^ (sig[i] as number);
  const serverSignature = hmac(hmac(salted, 'Server Key'), authMessage);
  return { message: Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'utf8'), serverSignature };
}

/** The signature in a server-final-message ("v=..."), null when it carries an error ("e=...") or is malformed. */
export function parseServerFinal(data: Buffer): Buffer | null {
  const m = /(?:^|,)v=([A-Za-z0-9+/=]+)/.exec(data.toString('utf8'));
  return m === null ? null : Buffer.from(m[1] as string, 'base64');
}

/**
 * A client nonce derived from the session (no randomness: modules are deterministic). Used
 * only when no captured nonce exists (a mid-stream session, or production logged in otherwise).
 */
export function derivedNonce(seed: string): string {
  return createHash('sha256').update(seed, 'utf8').digest().subarray(0, 18).toString('base64');
}
