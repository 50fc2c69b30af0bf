/**
 * Logins for sessions picked up mid-stream. Such a session's login happened before tcpcopy
 * started, so the module must log in for it: as whom is decided here.
 *
 * The rule (first match wins):
 * 1. a login stored for the same connection (client ip:port, server ip:port): a connection
 *    whose earlier replay ended, and which the module saw log in (or change user);
 * 2. the most recent login stored for the same client ip and online server port: a
 *    connection pool opens all its connections as one user, so an earlier captured login of
 *    that client (a connection the pool opened after tcpcopy started) tells the user;
 * 3. the first `--mysql-login` for that server port, then the first without a port.
 * No match: the session ends as `noLogin`.
 *
 * The table is module-global, bounded (MAX_LOGINS, the oldest forgotten first) and expired by
 * the `now` it is given (LOGIN_TTL_MS after an entry was last stored).
 */
import {
  CLIENT_CONNECT_ATTRS,
  CLIENT_CONNECT_WITH_DB,
  CLIENT_LONG_PASSWORD,
  CLIENT_PLUGIN_AUTH,
  CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA,
  CLIENT_PROTOCOL_41,
  CLIENT_SECURE_CONNECTION,
  CLIENT_SSL,
  CLIENT_COMPRESS,
  CLIENT_ZSTD_COMPRESSION_ALGORITHM,
  NATIVE_PASSWORD,
  nativePasswordAnswer,
} from './handshake';
import type { ConfiguredLogin } from './options';

/** Most logins stored. */
export const MAX_LOGINS = 4096;
/** An entry is forgotten this long (ms) after it was last stored: 24 h. */
export const LOGIN_TTL_MS = 24 * 3600 * 1000;

/** CLIENT_FOUND_ROWS | LONG_FLAG | TRANSACTIONS | MULTI_STATEMENTS | MULTI_RESULTS | PS_MULTI_RESULTS. */
const DEFAULT_EXTRA_CAPS = 0x2 | 0x4 | 0x2000 | 0x10000 | 0x20000 | 0x40000;

/** What a login is made of (without its password, looked up by user). */
export interface Login {
  user: string;
  database: string | null;
  /** The client's capabilities (compression, TLS and attributes are left out when built). */
  capabilities: number;
  /** MariaDB's extended client capabilities. */
  mariadbCapabilities: number;
  maxPacketSize: number;
  /** Collation id; 0: the target greeting's. */
  charset: number;
}

/** A login from `--mysql-login` (capabilities of a common client: those of libmariadb). */
export function configuredLogin(l: ConfiguredLogin): Login {
  return {
    user: l.user,
    database: l.database,
    capabilities:
      CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH | DEFAULT_EXTRA_CAPS,
    mariadbCapabilities: 0,
    maxPacketSize: 0x1000000,
    charset: 0,
  };
}

/**
 * A HandshakeResponse41 payload for `login`, answering `scramble` with mysql_native_password.
 * TLS, compression and connection attributes are not asked for; the database is sent when
 * there is one; the auth response has a 1-byte length (CLIENT_SECURE_CONNECTION).
 */
export function buildHandshakeResponse(
  login: Login,
  password: string,
  scramble: Buffer,
  targetCharset: number,
): Buffer {
  let caps =
    (login.capabilities &
      ~(
        CLIENT_SSL |
        CLIENT_COMPRESS |
        CLIENT_ZSTD_COMPRESSION_ALGORITHM |
        CLIENT_CONNECT_ATTRS |
        CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
        CLIENT_CONNECT_WITH_DB
      )) |
    CLIENT_PROTOCOL_41 |
    CLIENT_SECURE_CONNECTION |
    CLIENT_PLUGIN_AUTH;
  if (login.database !== null) caps |= CLIENT_CONNECT_WITH_DB;
  const answer = nativePasswordAnswer(password, scramble);
  const head = Buffer.alloc(32);
  head.writeUInt32LE(caps >>> 0, 0);
  head.writeUInt32LE(login.maxPacketSize >>> 0, 4);
  head[8] = (login.charset || targetCharset || 45) & 0xff;
  head.writeUInt32LE(login.mariadbCapabilities >>> 0, 28);
  const parts = [head, Buffer.from(login.user + '\0', 'utf8'), Buffer.from([answer.length]), answer];
  if (login.database !== null) parts.push(Buffer.from(login.database + '\0', 'utf8'));
  parts.push(Buffer.from(NATIVE_PASSWORD + '\0', 'latin1'));
  return Buffer.concat(parts);
}

/** Where a session is: the keys its login is stored under. */
export interface ConnKey {
  clientIp: string;
  clientPort: number;
  serverIp: string;
  serverPort: number;
}

interface Entry {
  login: Login;
  at: number;
}

/** The module-global table of logins seen in captured sessions. */
export class LoginTable {
  private readonly byConn = new Map<string, Entry>();
  private readonly byClient = new Map<string, Entry>();

  constructor(
    private readonly configured: readonly ConfiguredLogin[],
    private readonly max = MAX_LOGINS,
    private readonly ttlMs = LOGIN_TTL_MS,
  ) {}

  /** Entries held (both keys). */
  get size(): number {
    return this.byConn.size + this.byClient.size;
  }

  /** Stores the login a captured session made (or changed to) at `now`. */
  store(k: ConnKey, login: Login, now: number): void {
    const e = { login, at: now };
    this.put(this.byConn, connKey(k), e, now);
    this.put(this.byClient, clientKey(k), e, now);
  }

  /** The login for a session picked up mid-stream, by the rule above; null: none. */
  find(k: ConnKey, now: number): { login: Login; source: 'connection' | 'client' | 'configured' } | null {
    const c = this.get(this.byConn, connKey(k), now);
    if (c !== null) return { login: c, source: 'connection' };
    const p = this.get(this.byClient, clientKey(k), now);
    if (p !== null) return { login: p, source: 'client' };
    const l = this.configured.find((x) => x.port === k.serverPort) ?? this.configured.find((x) => x.port === null);
    return l === undefined ? null : { login: configuredLogin(l), source: 'configured' };
  }

  private put(m: Map<string, Entry>, key: string, e: Entry, now: number): void {
    m.delete(key);
    m.set(key, e);
    // the oldest first: drop expired ones and those beyond the bound
    for (const [k, v] of m) {
      if (m.size <= this.max && now - v.at <= this.ttlMs) break;
      m.delete(k);
    }
  }

  private get(m: Map<string, Entry>, key: string, now: number): Login | null {
    const e = m.get(key);
    if (e === undefined) return null;
    if (now - e.at > this.ttlMs) {
      m.delete(key);
      return null;
    }
    return e.login;
  }
}

function connKey(k: ConnKey): string {
  return `${k.clientIp}|${k.clientPort}|${k.serverIp}|${k.serverPort}`;
}
function clientKey(k: ConnKey): string {
  return `${k.clientIp}|${k.serverPort}`;
}
