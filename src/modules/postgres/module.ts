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
 * - Sessions picked up mid-stream (or rebuilt) get a StartupMessage and a login before their
 *   first message: their own stored login (a rebuilt session), else the one captured login
 *   that taught the statement their first Bind names (catalog.ts), else the latest stored for
 *   their client address, else `--pg-login`.
 * - Named statements: every captured Parse teaches the module-global catalog (catalog.ts); a
 *   mid-stream session's Bind / Describe of a statement it never Parsed gets the taught Parse
 *   inserted before it (its ParseComplete is one more message in the target's reply to that
 *   batch, which the module does not frame after the login). Not taught yet: the message waits
 *   for another session to teach it (LEARN_WAIT_MS, once per session), then is lost as
 *   `unknownStatement`; taught with two texts: `ambiguousStatement`. Execute / Describe of
 *   portals whose Bind was not seen are lost as `unknownPortal`.
 * - Nothing is held forever: holdLimitMs bounds the login waits (`loginStalled`).
 */
import type { ClientActions, ProtocolModule, SessionStart, TargetActions } from '../api';
import { holdLearning, waitToLearn } from '../learn-wait';
import { LEARN_WAIT_MS, ParseCatalog } from './catalog';
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
import { KeyTable, LoginTable, type BackendKey, type ConnKey, type LoginParams } from './tables';
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
  buildTyped,
  classifyPassword,
  cstring,
  parseUntyped,
  saslMechanisms,
  typedLength,
  untypedLength,
  type BackendMessage,
} from './wire';

const SCRAM = 'SCRAM-SHA-256';
/**
 * The longest a client message waits for the login (or the answer to an SSLRequest) to finish
 * (ms): a target that stops answering mid-login ends the session as `loginStalled` instead of
 * holding its messages until the idle timeout.
 */
export const HOLD_LIMIT_MS = 30_000;

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
  unknownStatement:
    'a prepared statement whose Parse was not captured (mid-stream session) and that no other session taught within LEARN_WAIT_MS (or unnamed)',
  ambiguousStatement:
    'a prepared statement whose Parse was not captured, taught by other sessions with different texts under its name',
  loginStalled:
    'the target did not finish the login (or answer the SSLRequest) within holdLimitMs: the held message would wait forever',
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
  statementsLost: 'Bind/Describe/Execute messages dropped: their statement or portal was not captured (nor taught)',
  statementsLearned: 'statement names the catalog learned from captured Parse messages (per server and database)',
  statementsReprepared:
    'Parse messages inserted for mid-stream sessions from the catalog (their Parse was before the capture)',
  learnWaits:
    'mid-stream sessions that held a message until another session taught its statement (at most LEARN_WAIT_MS, 10 s, once per session)',
  midstreamRoleLearned:
    'mid-stream sessions logged in as the one captured login that taught the statement of their first Bind',
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
  /** The database of the login (captured or chosen): the catalog's scope with the online server. */
  database: string;
  /** The session's own captured StartupMessage parameters (null: picked up mid-stream). */
  captured: LoginParams | null;
  /** The learning wait (src/modules/learn-wait.ts): when first held, -1 never. */
  learnSince: number;
  /** When the negotiation or the login began (ms), -1 before: holdLimitMs bounds it. */
  waitSince: number;
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
  /** Parses the module inserted whose ParseComplete the comparison has not left out yet (comparableReply). */
  parsesInserted: number;
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
  readonly catalog = new ParseCatalog();
  /** Login and negotiation waits are bounded (ms): see loginStalled. */
  readonly holdLimitMs = HOLD_LIMIT_MS;
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
      database: '',
      captured: null,
      learnSince: -1,
      waitSince: -1,
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
      parsesInserted: 0,
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
      if (msg[0] === 0x50 /* P Parse */) this.learn(st, msg, act, now);
      return st.track ? this.tracked(st, msg, act, now) : act.pass();
    }
    // the login (or the negotiation) did not finish within holdLimitMs (a message first held
    // for the learning wait keeps that earlier limit: held again, the engine drops it, counted)
    if (act.expired && st.waitSince >= 0 && now - st.waitSince >= HOLD_LIMIT_MS) return act.end('loginStalled');
    if (st.phase === 'startup') return this.untyped(st, msg, act, now);
    // the login runs
    if (st.user === '') return this.midstreamLogin(st, msg, act, now);
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
        st.waitSince = now;
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
        st.database = m.params.get('database') ?? st.user;
        st.captured = m.params;
        st.waitSince = now;
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

  /**
   * The first message of a session picked up mid-stream (or rebuilt): the tail of a batch begun
   * before the capture is lost without a login; else the session logs in first, as (first that
   * applies) its own stored login, the one captured login that taught the statement the
   * message names (waiting for a teacher within the learning wait when none taught it), the
   * latest login of its client address, `--pg-login`.
   */
  private midstreamLogin(st: PgSession, msg: Buffer, act: ClientActions, now: number): void {
    const t = msg[0];
    const body = msg.subarray(5);
    if (t === 0x45 /* E */ || (t === 0x44 /* D */ && body[0] === 0x50)) return this.lost(act, 'unknownPortal');
    if (t === 0x53 /* S */ || t === 0x48 /* H */ || (t === 0x43 /* C */ && body[0] === 0x50)) return act.drop();
    const name = namedStatement(msg);
    let p = this.logins.own(st.conn, now);
    let learned = false;
    if (p === null && name !== null) {
      const tp = this.catalog.teacher(serverOf(st), name, now);
      if (tp !== null && this.opts.passwords.has(tp.get('user') ?? '')) {
        p = tp;
        learned = true;
      } else if (tp === null) {
        const f = this.logins.find(st.conn, now);
        const known = f !== null && this.catalog.find(serverOf(st), databaseOf(f), name, now).kind !== 'none';
        if (!known && waitToLearn(st, act, now, LEARN_WAIT_MS, 'learnWaits'))
          return holdLearning(st, act, now, LEARN_WAIT_MS);
        // the wait passed (this offer is its expired one: it cannot wait for a login now)
        if (act.expired && !known) return this.lost(act, 'unknownStatement');
      }
    }
    p ??= this.logins.find(st.conn, now);
    if (p === null) return act.end('noLogin');
    st.user = p.get('user') ?? '';
    st.database = databaseOf(p);
    st.password = this.opts.passwords.get(st.user) ?? null;
    act.insert(buildStartup(p));
    st.waitSince = now;
    act.count('midstreamLogins');
    if (learned) act.count('midstreamRoleLearned');
    return act.hold();
  }

  /** A captured Parse of a named statement teaches the catalog (and the session knows it). */
  private learn(st: PgSession, msg: Buffer, act: ClientActions, now: number): void {
    const body = msg.subarray(5);
    const n = cstring(body, 0);
    if (n === null) return;
    if (st.track) st.statements.add(n.s);
    if (n.s === '' || st.database === '') return;
    if (this.catalog.learn(serverOf(st), st.database, n.s, body, st.captured, now)) act.count('statementsLearned');
  }

  /**
   * A statement the session never Parsed: the catalog's Parse is inserted before the message
   * (true), or the message waits for a teacher (held: true), or the loss reason.
   */
  private reprepare(st: PgSession, name: string, act: ClientActions, now: number): true | 'held' | Reason {
    if (name === '') return 'unknownStatement';
    const l = this.catalog.find(serverOf(st), st.database, name, now);
    if (l.kind === 'ambiguous') return 'ambiguousStatement';
    if (l.kind === 'one') {
      act.insert(buildTyped('P', l.body));
      st.parsesInserted++;
      st.statements.add(name);
      act.count('statementsReprepared');
      return true;
    }
    if (st.origin === 'midstream' && waitToLearn(st, act, now, LEARN_WAIT_MS, 'learnWaits')) {
      holdLearning(st, act, now, LEARN_WAIT_MS);
      return 'held';
    }
    return 'unknownStatement';
  }

  /** Statement and portal checks of a session whose start was not seen. */
  private tracked(st: PgSession, msg: Buffer, act: ClientActions, now: number): void {
    const body = msg.subarray(5);
    switch (msg[0]) {
      case 0x42 /* B Bind */: {
        const portal = cstring(body, 0);
        const stmt = portal && cstring(body, portal.next);
        if (portal === null || stmt === null) return act.pass();
        if (!st.statements.has(stmt.s)) {
          const r = this.reprepare(st, stmt.s, act, now);
          if (r === 'held') return;
          if (r !== true) {
            st.portals.delete(portal.s);
            return this.lost(act, r);
          }
        }
        st.portals.add(portal.s);
        return act.pass();
      }
      case 0x45 /* E Execute */: {
        const portal = cstring(body, 0);
        return portal === null || st.portals.has(portal.s) ? act.pass() : this.lost(act, 'unknownPortal');
      }
      case 0x44 /* D Describe */: {
        const n = cstring(body, 1);
        if (n === null) return act.pass();
        if (body[0] !== 0x53) return st.portals.has(n.s) ? act.pass() : this.lost(act, 'unknownPortal');
        if (!st.statements.has(n.s)) {
          const r = this.reprepare(st, n.s, act, now);
          if (r === 'held') return;
          if (r !== true) return this.lost(act, r);
        }
        return act.pass();
      }
      case 0x43 /* C Close */: {
        // closing a statement or portal that does not exist is no error: it passes
        const n = cstring(body, 1);
        if (n !== null) (body[0] === 0x53 ? st.statements : st.portals).delete(n.s);
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

  /**
   * `--compare bytes`: the target's reply without the ParseCompletes of the Parses the module
   * inserted (production was never sent them). Both replies are walked message by message: a
   * ParseComplete of the target where production's reply has another message (or none) is the
   * insert's, left out while the session has inserted Parses not yet accounted for; at the
   * first other difference the rest stays as received. A reply that is not whole messages is
   * left as it is.
   */
  comparableReply(st: PgSession, online: Buffer, target: Buffer): Buffer {
    if (st.parsesInserted === 0) return target;
    const a = backendMessages(online);
    const b = backendMessages(target);
    if (a === null || b === null) return target;
    const keep: Buffer[] = [];
    let i = 0;
    let j = 0;
    let dropped = 0;
    for (; j < b.length; j++) {
      const m = b[j] as Buffer;
      if (i < a.length && (a[i] as Buffer)[0] === m[0]) i++;
      else if (m[0] === PARSE_COMPLETE && dropped < st.parsesInserted) {
        dropped++;
        continue;
      } else break;
      keep.push(m);
    }
    if (dropped === 0) return target;
    st.parsesInserted -= dropped;
    for (; j < b.length; j++) keep.push(b[j] as Buffer);
    return Buffer.concat(keep);
  }
}

/** The backend message type of ParseComplete ('1'). */
const PARSE_COMPLETE = 0x31;

/** Whole backend messages (type byte, int32 length counting itself) of a reply; null when it is not whole messages. */
function backendMessages(b: Buffer): Buffer[] | null {
  const out: Buffer[] = [];
  let o = 0;
  while (o < b.length) {
    if (o + 5 > b.length) return null;
    const n = b.readUInt32BE(o + 1);
    if (n < 4 || o + 1 + n > b.length) return null;
    out.push(b.subarray(o, o + 1 + n));
    o += 1 + n;
  }
  return out;
}

/** The online server of a session: the catalog's scope. */
function serverOf(st: PgSession): string {
  return `${st.conn.serverIp}|${st.conn.serverPort}`;
}

/** A login's database (PostgreSQL's default: the user's name). */
function databaseOf(p: LoginParams): string {
  return p.get('database') ?? p.get('user') ?? '';
}

/** The named statement a Bind or a Describe / Close of a statement refers to, null for others (or unnamed). */
function namedStatement(msg: Buffer): string | null {
  const body = msg.subarray(5);
  let n: { s: string } | null = null;
  if (msg[0] === 0x42) {
    const portal = cstring(body, 0);
    n = portal && cstring(body, portal.next);
  } else if ((msg[0] === 0x44 || msg[0] === 0x43) && body[0] === 0x53) n = cstring(body, 1);
  return n === null || n.s === '' ? null : n.s;
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
