/**
 * The server side of SCRAM-SHA-256 and md5 (RFC 5802 as PostgreSQL does it), written apart
 * from the module's client side: a stand-in for "another target" with its own salt and nonce,
 * which checks the module's proof as a server would.
 */
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';

function hmac(k: Buffer, s: string): Buffer {
  return createHmac('sha256', k).update(s).digest();
}

/** A typed backend message. */
export function backend(type: string, body: Buffer): Buffer {
  const b = Buffer.alloc(5 + body.length);
  b.write(type, 0, 'latin1');
  b.writeUInt32BE(body.length + 4, 1);
  body.copy(b, 5);
  return b;
}

/** AuthenticationXxx with a code and extra bytes. */
export function authMsg(code: number, extra: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(code);
  return backend('R', Buffer.concat([b, extra]));
}

/** ParameterStatus, BackendKeyData, ReadyForQuery: the end of a successful login. */
export function loginTail(params: Record<string, string>, pid = 4242, secret = 0x1234567): Buffer {
  const k = Buffer.alloc(8);
  k.writeUInt32BE(pid);
  k.writeUInt32BE(secret, 4);
  return Buffer.concat([
    authMsg(0),
    ...Object.entries(params).map(([n, v]) => backend('S', Buffer.from(`${n}\0${v}\0`))),
    backend('K', k),
    backend('Z', Buffer.from('I')),
  ]);
}

export class ScramServer {
  readonly salt = Buffer.from('another-target-salt');
  readonly iterations = 4096;
  private clientFirstBare = '';
  private serverFirst = '';
  private nonce = '';
  constructor(
    private readonly password: string,
    private readonly serverNonce = 'TARGETnonce0123456789',
  ) {}

  /** AuthenticationSASL. */
  start(): Buffer {
    return authMsg(10, Buffer.from('SCRAM-SHA-256\0\0'));
  }

  /** Takes a SASLInitialResponse message; returns AuthenticationSASLContinue. */
  first(msg: Buffer): Buffer {
    const body = msg.subarray(5);
    const mechEnd = body.indexOf(0);
    const data = body.subarray(mechEnd + 5).toString();
    const m = /^[ny],[^,]*,(.*)$/.exec(data);
    if (!m) throw new Error(`not a client-first-message: ${data}`);
    this.clientFirstBare = m[1] as string;
    const cnonce = /r=([^,]+)/.exec(this.clientFirstBare)?.[1] ?? '';
    this.nonce = cnonce + this.serverNonce;
    this.serverFirst = `r=${this.nonce},s=${this.salt.toString('base64')},i=${this.iterations}`;
    return authMsg(11, Buffer.from(this.serverFirst));
  }

  /** Checks a SASLResponse; returns AuthenticationSASLFinal, or null when the proof is wrong. */
  final(msg: Buffer): Buffer | null {
    const cf = msg.subarray(5).toString();
    const withoutProof = cf.slice(0, cf.lastIndexOf(',p='));
    const proof = Buffer.from(cf.slice(cf.lastIndexOf(',p=') + 3), 'base64');
    const salted = pbkdf2Sync(this.password, this.salt, this.iterations, 32, 'sha256');
    const storedKey = createHash('sha256').update(hmac(salted, 'Client Key')).digest();
    const auth = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const sig = hmac(storedKey, auth);
    const clientKey = Buffer.alloc(32);
    for (let i = 0; i < 32; i++) clientKey[i] = (proof[i] ?? 0) ^ (sig[i] as number);
    if (!createHash('sha256').update(clientKey).digest().equals(storedKey)) return null;
    if (!withoutProof.includes(`r=${this.nonce}`)) return null;
    return authMsg(12, Buffer.from(`v=${hmac(hmac(salted, 'Server Key'), auth).toString('base64')}`));
  }
}

/** What a server expects as the md5 answer. */
export function md5Expected(user: string, password: string, salt: Buffer): string {
  const inner = createHash('md5')
    .update(password + user)
    .digest('hex');
  return 'md5' + createHash('md5').update(inner).update(salt).digest('hex');
}
