/**
 * `--module postgres`: PostgreSQL sessions replayed against another server.
 *
 * - Startup: the StartupMessage passes as captured; an SSLRequest / GSSENCRequest passes and
 *   the message after it is held until the target's single-byte answer: 'N' as production's
 *   must have been (a target offering TLS ends the session as `targetTls`: a setup error). A
 *   session that used TLS in production (a TLS record after the SSLRequest) ends as `tls`.
 * - Login: the module answers every authentication request of the target itself (cleartext,
 *   md5 with the target's salt, SCRAM-SHA-256 with the captured client nonce and the target's
 *   server-first message, the target's server signature verified) from the `--pg-user`
 *   passwords; the captured password messages are dropped (not needed), also those that
 *   arrive after the target finished the login (a target faster than production), the
 *   client's first message after the login is held until the target is ready for queries.
 * - A CancelRequest carries the target's backend key instead of production's (module-global
 *   table; production's key comes from its own replies: wantsOnlineReplies).
 * - ParameterStatus values that differ between production and the target are counted.
 * - Sessions picked up mid-stream (or rebuilt) get a StartupMessage and a login for a stored
 *   or configured user before their first message; their Bind / Describe / Execute / Close of
 *   statements and portals whose Parse / Bind was not seen are dropped as lost.
 */
import type { ClientActions, ProtocolModule, SessionStart, TargetActions } from '../api';
import {
  clientFinal,
  clientFirstBytes,
  clientFirstFor,
  derivedNonce,
  md5Answer,
  parseClientFirst,
  parseServerFinal,
  parseServerFirst,
  type ClientFirst,
} from './auth';
import type { PostgresOptions } from './options';
import { KeyTable, LoginTable, type BackendKey, type ConnKey } from './tables';
import {
  AUTH_CLEARTEXT,
  AUTH_MD5,
  AUTH_OK,
  AUTH_SASL,
  AUTH_SASL_CONTINUE,
  AUTH_SASL_FINAL,
  BackendFramer,
  buildCancel,
  buildPassword,
  buildSaslInitial,
  buildStartup,
  classifyPassword,
  cstring,
  parseUntyped,
  saslMechanisms,
  typedLength,
  untypedLength,
  type BackendMessage,
} from './wire';

const SCRAM = 'SCRAM-SHA-256';

export const REASONS = {
  tls: 'the session used TLS (or GSS encryption, or SCRAM channel binding) in production: its bytes cannot be replayed',
  targetTls:
    'the target answered an SSLRequest/GSSENCRequest with S/G where production said N (setup: turn ssl off on the target)',
  unknownUser: 'the target asked for a password of a user with no --pg-user/--pg-users entry',
  noLogin: 'picked up mid-stream with no stored login of its client and no --pg-login',
  loginRefused: 'the target refused the login (ErrorResponse during authentication: wrong password?)',
  unsupportedAuth: 'the target asked for an authentication method the module cannot redo (GSS, SSPI, unknown SASL)',
  serverSignature: "the target's SCRAM messages did not verify (its nonce, or its server signature)",
  badStartup: 'the first message is not a protocol 3.0 startup message',
  unframed: 'the client bytes are not PostgreSQL messages (picked up inside a message?)',
  unknownStatement: 'a named/unnamed prepared statement whose Parse was not captured (mid-stream session)',
  unknownPortal: 'a portal whose Bind was not captured (mid-stream session)',
  cancelUnknownKey: "a CancelRequest for a backend key with no target key known (production's key not seen)",
} as const;
type Reason = keyof typeof REASONS;

export const COUNTERS = {
  loginsRedone: 'logins the target accepted after the module answered its authentication requests',
  cleartext: 'cleartext passwords sent',
  md5: 'md5 answers computed with the target salt',
  scram: 'SCRAM-SHA-256 exchanges redone (proof recomputed, server signature verified)',
  midstreamLogins: 'StartupMessage + login inserted for sessions picked up mid-stream',
  cancelsMapped: "CancelRequests rewritten with the target's backend key",
  statementsLost: 'Bind/Describe/Execute/Close messages dropped: their statement or portal was not captured',
  paramServerVersion: 'sessions whose target server_version differs from production',
  paramTimeZone: 'sessions whose target TimeZone differs from production',
  paramEncoding: 'sessions whose target server_encoding/client_encoding differs from production',
  paramOther: 'other ParameterStatus values that differ from production (per session and parameter)',
  targetFramingLost: 'sessions whose target replies could not be framed during login (payload cap)',
  latePasswords:
    'captured password messages seen after the target finished the redone login (production was slower): dropped, not needed',
} as const;
type Counter = keyof typeof COUNTERS;

type Phase =
  /** Untyped messages expected (startup, SSL/GSS negotiation, cancel). */
  | 'startup'
  /** Startup sent: the login runs. */
  | 'auth'
  /** The target is ready for queries: messages pass (with statement checks for mid-stream sessions). */
  | 'ready';

/** Per-session state. */
export interface PgSession {
  conn: ConnKey;
  origin: SessionStart['origin'];
  phase: Phase;
  /** Negotiation answers from the target still awaited (the next untyped message waits). */
  negotiating: number;
  /** The client sent an SSLRequest/GSSENCRequest: a TLS record after it means TLS in production. */
  afterNegotiation: boolean;
  user: string;
  password: string | null;
  target: BackendFramer | null;
  online: BackendFramer | null;
  /** The captured SCRAM client-first-message, or the one the module made. */
  clientFirst: ClientFirst | null;
  /** The target asked for SASL and no client-first-message is there yet. */
  saslWaiting: boolean;
  /** Production's first authentication code (from its replies), -1 before. */
  onlineAuth: number;
  expectSignature: Buffer | null;
  /** The module answered at least one request (so an AuthOk is a redone login). */
  answered: boolean;
  targetKey: BackendKey | null;
  onlineKey: BackendKey | null;
  keyStored: boolean;
  targetParams: Map<string, string> | null;
  onlineParams: Map<string, string> | null;
  targetReady: boolean;
  onlineReady: boolean;
  paramsCompared: boolean;
  /** Statement checks (sessions not seen from their start). */
  track: boolean;
  statements: Set<string>;
  portals: Set<string>;
  /** frameClient found bytes that are not messages: the next message ends the session. */
  garbage: Reason | null;
}

export class PostgresModule implements ProtocolModule<PgSession> {
  readonly name = 'postgres';
  readonly wantsTargetPayload = true;
  readonly wantsOnlineReplies = true;
  /** Requests are pipelined: the next goes without waiting for the target's answer (api.ts). */
  readonly pipelined = true;
  readonly reasons: Readonly<Record<string, string>> = REASONS;
  readonly counters: Readonly<Record<string, string>> = COUNTERS;
  readonly logins: LoginTable;
  readonly keys = new KeyTable();
  private serial = 0;

  constructor(private readonly opts: PostgresOptions) {
    this.logins = new LoginTable(opts.logins);
  }

  startSession(s: SessionStart): PgSession {
    const fresh = s.origin === 'syn';
    return {
      conn: { clientIp: s.clientIp, clientPort: s.clientPort, serverIp: s.serverIp, serverPort: s.serverPort },
      origin: s.origin,
      phase: fresh ? 'startup' : 'auth',
      negotiating: 0,
      afterNegotiation: false,
      user: '',
      password: null,
      target: new BackendFramer(),
      online: fresh ? new BackendFramer() : null,
      clientFirst: null,
      saslWaiting: false,
      onlineAuth: -1,
      expectSignature: null,
      answered: false,
      targetKey: null,
      onlineKey: null,
      keyStored: false,
      targetParams: fresh ? new Map() : null,
      onlineParams: fresh ? new Map() : null,
      targetReady: false,
      onlineReady: !fresh,
      paramsCompared: !fresh,
      track: !fresh,
      statements: new Set(),
      portals: new Set(),
      garbage: null,
    };
  }

  frameClient(st: PgSession, data: Buffer, off: number, len: number): number {
    if (st.garbage !== null) return len;
    if (st.phase === 'auth' && st.user === '' && len > 0 && data[off] === 0) {
      // a rebuilt session whose stream starts with its own startup message
      st.phase = 'startup';
      st.track = false;
    }
    if (st.phase === 'startup') {
      if (len > 0 && st.afterNegotiation && data[off] === 0x16) return this.garbageAll(st, 'tls', len);
      const n = untypedLength(data, off, len);
      return n < 0 ? this.garbageAll(st, st.afterNegotiation ? 'tls' : 'badStartup', len) : n;
    }
    const n = typedLength(data, off, len);
    return n < 0 ? this.garbageAll(st, 'unframed', len) : n;
  }

  private garbageAll(st: PgSession, r: Reason, len: number): number {
    st.garbage = r;
    return len;
  }

  onClientMessage(st: PgSession, msg: Buffer, act: ClientActions, now: number): void {
    if (st.garbage !== null) return act.end(st.garbage);
    if (st.phase === 'ready') {
      if (!st.paramsCompared) this.compareParams(st, act);
      if (msg[0] === 0x70 /* p */) return this.latePassword(act);
      return st.track ? this.tracked(st, msg, act) : act.pass();
    }
    if (st.phase === 'startup') return this.untyped(st, msg, act, now);
    // the login runs
    if (st.user === '') {
      // mid-stream or rebuilt: log in first
      const p = this.logins.find(st.conn, now);
      if (p === null) return act.end('noLogin');
      st.user = p.get('user') ?? '';
      st.password = this.opts.passwords.get(st.user) ?? null;
      act.insert(buildStartup(p));
      act.count('midstreamLogins');
      return act.hold();
    }
    if (msg[0] === 0x70 /* p */) return this.capturedPassword(st, msg, act, now);
    if (st.saslWaiting && st.onlineAuth !== AUTH_SASL) {
      // production did not run SASL: no captured nonce will come
      this.startScram(st, clientFirstFor(this.nonce(st, now)), (b) => act.insert(b));
    }
    return act.hold();
  }

  private untyped(st: PgSession, msg: Buffer, act: ClientActions, now: number): void {
    if (st.negotiating > 0) return act.hold();
    const m = parseUntyped(msg);
    switch (m.kind) {
      case 'ssl':
      case 'gssenc':
        st.negotiating++;
        st.afterNegotiation = true;
        if (st.target) st.target.singles++;
        if (st.online) st.online.singles++;
        return act.pass();
      case 'cancel': {
        const to = this.keys.get({ pid: m.pid, secret: m.secret }, now);
        if (to === null) return act.drop('cancelUnknownKey');
        act.count('cancelsMapped');
        return act.replace(buildCancel(to.pid, to.secret));
      }
      case 'startup':
        st.user = m.params.get('user') ?? '';
        st.password = this.opts.passwords.get(st.user) ?? null;
        st.phase = 'auth';
        this.logins.store(st.conn, m.params, now);
        return act.pass();
      default:
        return act.end('badStartup');
    }
  }

  /** A captured 'p' during the login: keeps a SCRAM nonce; the module's own answers replace it. */
  private capturedPassword(st: PgSession, msg: Buffer, act: ClientActions, now: number): void {
    const k = classifyPassword(msg.subarray(5));
    if (k.kind === 'saslInitial') {
      if (k.mechanism !== SCRAM) return act.end('tls');
      const cf = parseClientFirst(k.data);
      if (cf === 'channelBinding') return act.end('tls');
      if (cf !== null && st.clientFirst === null && !st.saslWaiting) st.clientFirst = cf;
      if (cf !== null && st.saslWaiting) return this.startScram(st, cf, (b) => act.replace(b));
    } else if (st.saslWaiting) {
      return this.startScram(st, clientFirstFor(this.nonce(st, now)), (b) => act.replace(b));
    }
    return act.drop();
  }

  /**
   * A password message ('p') once the target is ready for queries: the captured login's, seen
   * only after the target finished the login the module redid (production, slower, asked for
   * it later: a SCRAM client's last message comes two round trips after its startup, the
   * target's login took three through intercept). Not needed; passed, PostgreSQL would end
   * the session ("invalid frontend message type 112") and reset the connection.
   */
  private latePassword(act: ClientActions): void {
    act.count('latePasswords');
    act.drop();
  }

  private startScram(st: PgSession, cf: ClientFirst, send: (b: Buffer) => void): void {
    st.saslWaiting = false;
    st.clientFirst = cf;
    st.answered = true;
    send(buildSaslInitial(SCRAM, clientFirstBytes(cf)));
  }

  private nonce(st: PgSession, now: number): string {
    const c = st.conn;
    return derivedNonce(`${c.clientIp}:${c.clientPort}>${c.serverIp}:${c.serverPort}@${now}#${this.serial++}`);
  }

  /** Statement and portal checks of a session whose start was not seen. */
  private tracked(st: PgSession, msg: Buffer, act: ClientActions): void {
    const body = msg.subarray(5);
    switch (msg[0]) {
      case 0x50 /* P Parse */: {
        const n = cstring(body, 0);
        if (n !== null) st.statements.add(n.s);
        return act.pass();
      }
      case 0x42 /* B Bind */: {
        const portal = cstring(body, 0);
        const stmt = portal && cstring(body, portal.next);
        if (portal === null || stmt === null) return act.pass();
        if (!st.statements.has(stmt.s)) {
          st.portals.delete(portal.s);
          return this.lost(act, 'unknownStatement');
        }
        st.portals.add(portal.s);
        return act.pass();
      }
      case 0x45 /* E Execute */: {
        const portal = cstring(body, 0);
        return portal === null || st.portals.has(portal.s) ? act.pass() : this.lost(act, 'unknownPortal');
      }
      case 0x44 /* D Describe */:
      case 0x43 /* C Close */: {
        const n = cstring(body, 1);
        if (n === null) return act.pass();
        const isStmt = body[0] === 0x53;
        const set = isStmt ? st.statements : st.portals;
        if (!set.has(n.s)) return this.lost(act, isStmt ? 'unknownStatement' : 'unknownPortal');
        if (msg[0] === 0x43) set.delete(n.s);
        return act.pass();
      }
      default:
        return act.pass();
    }
  }

  private lost(act: ClientActions, r: Reason): void {
    act.count('statementsLost');
    act.drop(r);
  }

  onTargetBytes(st: PgSession, data: Buffer, missing: number, act: TargetActions, now: number): void {
    const f = st.target;
    if (f === null) return;
    f.feed(data, missing, (m) => this.targetMessage(st, m, act, now));
    if (f.lost && st.target !== null) {
      st.target = null;
      if (!st.targetReady) {
        act.count('targetFramingLost');
        act.end('unframed');
      }
    }
  }

  private targetMessage(st: PgSession, m: BackendMessage, act: TargetActions, now: number): void {
    if (st.target === null) return;
    if (m.single) {
      st.negotiating = Math.max(0, st.negotiating - 1);
      if (m.type !== 'N') act.end('targetTls');
      return;
    }
    switch (m.type) {
      case 'R':
        return this.targetAuth(st, m.body, act, now);
      case 'E':
        if (!st.targetReady) act.end('loginRefused');
        return;
      case 'K':
        if (m.body.length >= 8) st.targetKey = { pid: m.body.readUInt32BE(0), secret: m.body.readUInt32BE(4) };
        return this.storeKey(st, now);
      case 'S':
        return param(st.targetParams, m.body);
      case 'Z':
        st.targetReady = true;
        st.phase = 'ready';
        st.target = null; // nothing more is needed from the target
        return this.compareParams(st, act);
      default:
        return;
    }
  }

  private targetAuth(st: PgSession, body: Buffer, act: TargetActions, now: number): void {
    if (body.length < 4) return act.end('unsupportedAuth');
    const code = body.readUInt32BE(0);
    if (code === AUTH_OK) {
      if (st.answered) act.count('loginsRedone');
      return;
    }
    if (code === AUTH_SASL_FINAL) {
      const sig = parseServerFinal(body.subarray(4));
      if (st.expectSignature === null || sig === null || !sig.equals(st.expectSignature))
        return act.end('serverSignature');
      act.count('scram');
      return;
    }
    const pw = st.password;
    if (pw === null) return act.end('unknownUser');
    st.answered = true;
    switch (code) {
      case AUTH_CLEARTEXT:
        act.count('cleartext');
        return act.send(buildPassword(pw));
      case AUTH_MD5:
        if (body.length < 8) return act.end('unsupportedAuth');
        act.count('md5');
        return act.send(buildPassword(md5Answer(st.user, pw, body.subarray(4, 8))));
      case AUTH_SASL:
        if (!saslMechanisms(body).includes(SCRAM)) return act.end('unsupportedAuth');
        if (st.clientFirst !== null) return this.startScram(st, st.clientFirst, (b) => act.send(b));
        if (st.track || (st.onlineAuth !== -1 && st.onlineAuth !== AUTH_SASL))
          return this.startScram(st, clientFirstFor(this.nonce(st, now)), (b) => act.send(b));
        st.saslWaiting = true; // the captured client-first-message is on its way
        return;
      case AUTH_SASL_CONTINUE: {
        const sf = parseServerFirst(body.subarray(4));
        const fin = sf && st.clientFirst && clientFinal(pw, st.clientFirst, sf);
        if (!fin) return act.end('serverSignature');
        st.expectSignature = fin.serverSignature;
        return act.send(buildTypedSasl(fin.message));
      }
      default:
        return act.end('unsupportedAuth');
    }
  }

  onOnlineBytes(st: PgSession, data: Buffer, missing: number, now: number): void {
    const f = st.online;
    if (f === null) return;
    f.feed(data, missing, (m) => {
      if (m.single || st.online === null) return;
      if (m.type === 'R' && st.onlineAuth === -1 && m.body.length >= 4) st.onlineAuth = m.body.readUInt32BE(0);
      else if (m.type === 'K' && m.body.length >= 8) {
        st.onlineKey = { pid: m.body.readUInt32BE(0), secret: m.body.readUInt32BE(4) };
        this.storeKey(st, now);
      } else if (m.type === 'S') param(st.onlineParams, m.body);
      else if (m.type === 'Z') {
        st.onlineReady = true;
        st.online = null;
      }
    });
    if (f.lost) st.online = null;
  }

  private storeKey(st: PgSession, now: number): void {
    if (st.keyStored || st.onlineKey === null || st.targetKey === null) return;
    this.keys.put(st.onlineKey, st.targetKey, now);
    st.keyStored = true;
  }

  /** Counts ParameterStatus differences once both servers reported theirs (before their first ReadyForQuery). */
  private compareParams(st: PgSession, act: { count(c: string, n?: number): void }): void {
    if (st.paramsCompared || !st.targetReady || !st.onlineReady || !st.targetParams || !st.onlineParams) return;
    st.paramsCompared = true;
    const seen = new Set<Counter>();
    for (const [k, v] of st.onlineParams) {
      const t = st.targetParams.get(k);
      if (t === undefined || t === v) continue;
      const c: Counter =
        k === 'server_version'
          ? 'paramServerVersion'
          : k === 'TimeZone'
            ? 'paramTimeZone'
            : k === 'server_encoding' || k === 'client_encoding'
              ? 'paramEncoding'
              : 'paramOther';
      if (c !== 'paramOther' && seen.has(c)) continue;
      seen.add(c);
      act.count(c);
    }
  }

  endSession(st: PgSession, now: number): void {
    if (st.keyStored && st.onlineKey && st.targetKey) this.keys.ended(st.onlineKey, st.targetKey, now);
  }
}

function param(into: Map<string, string> | null, body: Buffer): void {
  if (into === null) return;
  const k = cstring(body, 0);
  const v = k && cstring(body, k.next);
  if (k && v) into.set(k.s, v.s);
}

function buildTypedSasl(data: Buffer): Buffer {
  const b = Buffer.allocUnsafe(5 + data.length);
  b[0] = 0x70;
  b.writeUInt32BE(4 + data.length, 1);
  data.copy(b, 5);
  return b;
}

export function createPostgresModule(opts: PostgresOptions): PostgresModule {
  return new PostgresModule(opts);
}
