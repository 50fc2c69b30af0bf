/**
 * The MySQL/MariaDB replay module (`--module mysql`), pure: logins redone for the target's
 * scramble, AuthSwitchRequests followed, COM_CHANGE_USER redone, prepared-statement ids mapped
 * from production's to the target's, and a login inserted for sessions picked up mid-stream.
 * doc/modules.md describes it; the codecs are in handshake.ts, stmt.ts, replies.ts.
 *
 * A session goes through these phases (`Phase`):
 * - `login` (captured from its SYN): the client's HandshakeResponse41 is held until the
 *   target's greeting is known, then replaced by one answering the target's scramble;
 * - `midstream` (picked up mid-stream): before the first command, a login chosen
 *   by logins.ts is inserted, the command held until the target accepts it;
 * - `auth` (a login or COM_CHANGE_USER sent, the target has not said OK): the client's own
 *   auth answers (to production's AuthSwitchRequest) are dropped, commands held; the target's
 *   AuthSwitchRequest is answered by the module;
 * - `command`: commands pass, statement ids rewritten (statements.ts); an EXECUTE of a
 *   statement prepared before the capture is prepared again on the target from the text
 *   another session was captured preparing (catalog.ts), once production's reply to it agrees.
 */
import type { ClientActions, ProtocolModule, SessionStart, TargetActions } from '../api';
import { holdLearning, waitToLearn } from '../learn-wait';
import { MAX_PACKET_PAYLOAD, PACKET_HEADER_BYTES, encodePacket } from './packet';
import {
  CLIENT_COMPRESS,
  CLIENT_ZSTD_COMPRESSION_ALGORITHM,
  COM_CHANGE_USER,
  NATIVE_PASSWORD,
  SSL_REQUEST_BYTES,
  authSwitchResponse,
  isParseError,
  isSslRequest,
  parseAuthSwitch,
  parseChangeUser,
  parseGreeting,
  parseHandshakeResponse,
  rebuildChangeUser,
  rebuildHandshakeResponse,
  type Greeting,
} from './handshake';
import {
  COM_QUIT,
  COM_STMT_CLOSE,
  COM_STMT_EXECUTE,
  COM_STMT_FETCH,
  COM_STMT_PREPARE,
  COM_STMT_RESET,
  COM_STMT_SEND_LONG_DATA,
  STMT_ID_LAST_PREPARED,
  parsePrepareOk,
} from './stmt';
import { ReplyTracker, headOf, type PacketHead, type ReplyKind } from './replies';
import { Statements, type PrepareRec } from './statements';
import { LoginTable, buildHandshakeResponse, configuredLogin, type Login } from './logins';
import {
  DefCollector,
  ExecProbe,
  MAX_TEXT_BYTES,
  PROBE_WAIT_MS,
  LEARN_WAIT_MS,
  StatementCatalog,
  boundTypes,
  executeFit,
  scopeOf,
  withTypes,
} from './catalog';
import type { MysqlConfig } from './options';

/**
 * The longest a message is held without a wait of its own (ms of engine time, the module's
 * holdLimitMs): a login or COM_CHANGE_USER whose answer never comes ends the session as
 * `loginUnanswered`; a statement command waiting for its PREPARE's answer is dropped as
 * `prepareUnanswered`. Replies take milliseconds; 10 s is far beyond a slow target.
 */
export const HOLD_LIMIT_MS = 10_000;
/** Most PREPAREs of one statement sent to the target on a session when their answers are not read. */
export const MAX_PREPARE_TRIES = 3;

/** MariaDB's COM_STMT_BULK_EXECUTE: a statement id at offset 1 too. */
const COM_STMT_BULK_EXECUTE = 0xfa;
const COM_INIT_DB = 0x02;
const COM_FIELD_LIST = 0x04;
const COM_STATISTICS = 0x09;
const COM_BINLOG_DUMP = 0x12;
const COM_REGISTER_SLAVE = 0x15;
const COM_BINLOG_DUMP_GTID = 0x1e;
const COM_RESET_CONNECTION = 0x1f;

/** The loss reasons of the module. */
export const MYSQL_REASONS = {
  tls: 'the client asked for TLS (SSLRequest): the encrypted session cannot be replayed',
  compressed: 'the session negotiated compression (CLIENT_COMPRESS): its packets cannot be rewritten',
  unknownUser: "no password for the session's user: give it with --mysql-user or --mysql-users",
  loginRefused: 'the target refused the redone login (or greeted with an error): check the user and password there',
  unsupportedAuth: 'the target asked for an auth plugin other than mysql_native_password',
  malformedLogin: 'the captured login or COM_CHANGE_USER could not be parsed',
  noLogin: 'picked up mid-stream, and no login is known for its client: give --mysql-login USER[@DB]',
  unpreparedStatement:
    'a statement command whose PREPARE was not captured (mid-stream, or forgotten), and no session was captured preparing a statement that fits it',
  statementNotMapped:
    'a statement command whose PREPARE the target refused (an ERR), or whose answer the module could not read after MAX_PREPARE_TRIES (3) PREPAREs of it',
  prepareUnanswered:
    "a statement command held for the target's answer to its PREPARE until its hold limit (HOLD_LIMIT_MS, 10 s, or what was left of a learn or probe wait): dropped, the statement mapped when the answer comes",
  loginUnanswered:
    'the target did not greet, or did not answer the login (or COM_CHANGE_USER), within HOLD_LIMIT_MS (10 s): the commands held behind it would wait forever',
  ambiguousStatement:
    "an EXECUTE whose PREPARE was not captured: several statements captured on other sessions with its id fit its parameters and production's reply",
  statementMismatch:
    "an EXECUTE whose PREPARE was not captured: the statements captured on other sessions with its id do not fit production's reply to it",
  statementUnverified:
    "an EXECUTE whose PREPARE was not captured: production's reply to it (an ERR, or not captured) cannot confirm the statement known for its id",
  unknownParamTypes:
    'an EXECUTE of a statement prepared again on the target: its parameter types were bound before the capture and no captured session bound them',
} as const;

/** The counters of the module. */
export const MYSQL_COUNTERS = {
  loginsRedone: "captured logins rebuilt for the target's scramble and accepted by it",
  midstreamLogins: 'logins inserted for sessions picked up mid-stream, accepted by the target',
  changeUsersRedone: 'COM_CHANGE_USER rebuilt for the target and accepted by it',
  authSwitches: 'AuthSwitchRequests of the target answered by the module',
  authAnswersDropped: "the client's own auth answers (to production's AuthSwitchRequest) not sent",
  statementsPrepared: 'COM_STMT_PREPAREs the target answered with a statement id',
  preparesRetried:
    "statements prepared again on the target because its answer to their PREPARE was not read (in reply bytes cut at intercept's --payload-max)",
  lateAuthAnswers:
    "the client's auth answers (to production's AuthSwitchRequest) captured after the target had accepted the login: not sent to a target waiting for commands",
  statementsRemapped: "statement commands (EXECUTE, SEND_LONG_DATA, RESET, FETCH, CLOSE) sent with the target's id",
  onlineIdsInferred: "production statement ids inferred from the client's use (production's PREPARE answer not seen)",
  unmappedCloses: 'COM_STMT_CLOSE of a statement unknown to the target, not sent',
  statementsLearned: 'statement texts learned from captured PREPAREs (the catalog for sessions picked up mid-stream)',
  statementsReprepared:
    "statements executed by a session without their PREPARE captured, prepared on the target from a text learned on another session and confirmed by production's reply",
  learnWaits:
    'sessions picked up mid-stream that held an EXECUTE until another session taught its statement (at most LEARN_WAIT_MS, 3 s, once per session)',
  paramTypesAdded:
    'EXECUTEs of statements prepared by the module sent with the parameter types the client bound before the capture',
  replySyncLost:
    "times the target's reply stream lost its packet framing: a packet header in bytes not delivered (over intercept's --payload-max)",
  replyResyncs: "times the target's reply stream was found again at the start of a later reply",
  replyMismatches:
    'target replies that did not fit the command taken to answer (a reply missed or unreadable): its PREPARE unmapped',
  onlineSyncLost: "times the online server's captured reply stream lost its packet framing (bytes not captured)",
  onlineResyncs: "times the online server's reply stream was found again at the start of a later reply",
  onlineMismatches: 'online replies that did not fit the command taken to answer (a reply missed or unreadable)',
  onlineRepliesUnkept:
    'online replies not kept while their commands waited behind a held message (over 4096): their PREPARE ids unknown',
} as const;

type Reason = keyof typeof MYSQL_REASONS;
type Counter = keyof typeof MYSQL_COUNTERS;
type Phase = 'login' | 'midstream' | 'auth' | 'command';
type Verdict = 'none' | 'pass' | 'drop' | 'hold' | 'end';
/** What the online tracker's expectations carry: a PREPARE's record, or an unknown EXECUTE's probe. */
type OnlineTag = PrepareRec | ExecProbe;

/** One session's state (owned by the engine). */
export interface MysqlSession {
  readonly start: SessionStart;
  /** Engine time of the call in progress. */
  now: number;
  phase: Phase;
  ended: boolean;
  /** What the current auth exchange is (counted when the target says OK). */
  authKind: 'login' | 'midstream' | 'changeUser';
  readonly target: ReplyTracker<PrepareRec>;
  readonly online: ReplyTracker<OnlineTag>;
  readonly stmts: Statements;
  greeting: Greeting | null;
  /** The target's current scramble (the greeting's, or the last AuthSwitchRequest's). */
  scramble: Buffer | null;
  /** The online server's capabilities (its greeting), null when not seen. */
  onlineCaps: number | null;
  /** The login in use, the one the current auth exchange sets, and its password. */
  login: Login | null;
  pendingLogin: Login | null;
  password: string;
  /** The message being offered was held before: its online expectation is pushed; its PREPARE record. */
  reoffer: boolean;
  heldRec: PrepareRec | null;
  /** The EXECUTE being offered (or held) names an id not prepared on the session: production's reply to it, as read. */
  probe: ExecProbe | null;
  /** When the session first held an EXECUTE for a statement not yet taught (ms), -1: never (see LEARN_WAIT_MS). */
  learnSince: number;
  /** The target accepted the login (or COM_CHANGE_USER) and no command has been offered since. */
  justLoggedIn: boolean;
  /** The previous packet was 16 MiB: this one continues it, with its fate. */
  cont: 'none' | 'pass' | 'drop';
  /** The action set of the onTargetBytes call in progress (the trackers' events use it). */
  act: TargetActions | null;
  /** Bytes sent to the target so far (passed, replaced, inserted, sent): a command's end, for the target's ACKs. */
  sent: number;
  /** Counts made where no action set was at hand (online events), added at the next one. */
  deferred: Partial<Record<Counter, number>>;
  hasDeferred: boolean;
}

/** Creates the module for a checked configuration (the factory in index.ts parses the options). */
export function createMysqlModule(cfg: MysqlConfig): ProtocolModule<MysqlSession> {
  const table = new LoginTable(cfg.logins);
  const catalog = new StatementCatalog();

  // one wrapper of the engine's ClientActions that notes the verdict (calls are synchronous)
  // and the bytes sent (the session and message being offered: `cur`, `curLen`)
  let inner: ClientActions | null = null;
  let verdict: Verdict = 'none';
  let cur: MysqlSession | null = null;
  let curLen = 0;
  const sent = (n: number): void => {
    if (cur !== null) cur.sent += n;
  };
  const spy: ClientActions = {
    pass: () => ((verdict = 'pass'), sent(curLen), inner?.pass()),
    replace: (b) => ((verdict = 'pass'), sent(b.length), inner?.replace(b)),
    drop: (r) => ((verdict = 'drop'), inner?.drop(r)),
    hold: (ms) => ((verdict = 'hold'), inner?.hold(ms)),
    end: (r) => ((verdict = 'end'), inner?.end(r)),
    insert: (b) => (sent(b.length), inner?.insert(b)),
    count: (c, n) => inner?.count(c, n),
    get expired() {
      return inner?.expired ?? false;
    },
  };

  function countLater(st: MysqlSession, c: Counter): void {
    st.deferred[c] = (st.deferred[c] ?? 0) + 1;
    st.hasDeferred = true;
  }
  function flush(st: MysqlSession, a: { count(c: string, n?: number): void }): void {
    for (const k of Object.keys(st.deferred) as Counter[]) a.count(k, st.deferred[k]);
    st.deferred = {};
    st.hasDeferred = false;
  }
  function end(st: MysqlSession, r: Reason): void {
    if (st.ended) return;
    st.ended = true;
    st.act?.end(r);
  }

  function targetAuth(st: MysqlSession, p: PacketHead): void {
    const a = st.act;
    if (a === null || st.ended) return;
    const b = p.head[0];
    if (b === 0x00) {
      if (st.phase !== 'auth') return;
      st.phase = 'command';
      st.justLoggedIn = true;
      st.login = st.pendingLogin;
      if (st.login !== null && st.authKind === 'changeUser') table.store(st.start, st.login, st.now);
      a.count(
        st.authKind === 'login'
          ? 'loginsRedone'
          : st.authKind === 'midstream'
            ? 'midstreamLogins'
            : 'changeUsersRedone',
      );
    } else if (b === 0xff) end(st, 'loginRefused');
    else if (b === 0xfe) {
      const sw = p.cut ? null : parseAuthSwitch(headOf(p));
      if (sw === null || sw.plugin !== NATIVE_PASSWORD) return end(st, 'unsupportedAuth');
      st.scramble = Buffer.from(sw.data);
      const b = authSwitchResponse(p.seq, st.password, sw.data);
      st.sent += b.length;
      a.send(b);
      a.count('authSwitches');
    }
    // 0x01 (AuthMoreData): nothing to answer for mysql_native_password; the OK follows
  }

  function newSession(start: SessionStart): MysqlSession {
    const fromStart = start.origin === 'syn';
    const st = {
      start,
      now: start.now,
      phase: fromStart ? 'login' : 'midstream',
      ended: false,
      authKind: 'login',
      stmts: new Statements(fromStart),
      greeting: null,
      scramble: null,
      onlineCaps: null,
      login: null,
      pendingLogin: null,
      password: '',
      reoffer: false,
      heldRec: null,
      probe: null,
      learnSince: -1,
      justLoggedIn: false,
      cont: 'none',
      act: null,
      sent: 0,
      deferred: {},
      hasDeferred: false,
    } as Omit<MysqlSession, 'target' | 'online'> as MysqlSession;
    const mut = st as { target: ReplyTracker<PrepareRec>; online: ReplyTracker<OnlineTag> };
    mut.target = new ReplyTracker<PrepareRec>(
      {
        greeting: (p) => {
          const g = parseGreeting(headOf(p));
          if (isParseError(g)) return end(st, 'loginRefused');
          st.greeting = g;
          st.scramble = Buffer.from(g.scramble);
        },
        auth: (p) => targetAuth(st, p),
        prepared: (r, ok, refused) => {
          st.stmts.target(r, ok === null ? null : ok.statementId, refused);
          if (ok !== null) st.act?.count('statementsPrepared');
        },
        interchangeable: (a, b) => {
          const x = textOf(a);
          const y = textOf(b);
          return x !== null && y !== null && x.equals(y);
        },
        lost: () => st.act?.count('replySyncLost'),
        resynced: () => st.act?.count('replyResyncs'),
        mismatch: () => st.act?.count('replyMismatches'),
      },
      false,
    );
    st.target.expect('greeting');
    mut.online = new ReplyTracker<OnlineTag>(
      {
        greeting: (p) => {
          const g = parseGreeting(headOf(p));
          if (!isParseError(g)) st.onlineCaps = g.capabilities;
        },
        auth: () => undefined,
        prepared: (r, ok) => {
          if (r instanceof ExecProbe) return;
          st.stmts.online(r, ok === null ? null : ok.statementId);
          if (ok !== null) learn(st, r, ok.statementId, ok.params, ok.columns);
          r.text = null; // the catalog keeps it
        },
        tagPacket: (t, p, first) => {
          if (t instanceof ExecProbe) t.packet(p, first);
          else if (!first) t.defs?.packet(p);
        },
        tagDone: (t) => {
          if (t instanceof ExecProbe) return t.done();
          const sig = t.defs?.result() ?? null;
          if (sig !== null && t.entry !== null) t.entry.cols = sig;
          t.defs = null;
        },
        lost: () => countLater(st, 'onlineSyncLost'),
        resynced: () => countLater(st, 'onlineResyncs'),
        mismatch: () => countLater(st, 'onlineMismatches'),
        unkept: () => countLater(st, 'onlineRepliesUnkept'),
      },
      true,
      !fromStart,
    );
    if (fromStart) st.online.expect('greeting');
    return st;
  }

  /** The scope of the session's statements (its server and current database). */
  function scope(st: MysqlSession): string {
    const l = st.login ?? st.pendingLogin;
    return scopeOf(st.start.serverIp, st.start.serverPort, l?.database ?? null);
  }

  /** Production answered a captured PREPARE with statement `id`: its text goes to the catalog. */
  function learn(st: MysqlSession, r: PrepareRec, id: number, params: number, columns: number): void {
    r.params = params;
    if (r.text === null) return;
    const l = catalog.learn(scope(st), r.text, id, params, columns, st.now);
    if (l === null) return;
    r.entry = l.entry;
    if (l.fresh) countLater(st, 'statementsLearned');
    if (r.types !== null && l.entry.types === null) l.entry.types = r.types;
    r.defs = columns > 0 ? new DefCollector(params, columns) : null;
  }

  /**
   * An EXECUTE of production's statement `id`, never prepared on this session: the one
   * statement of the catalog that fits its bytes and production's reply (waited for, held) is
   * prepared on the target and the EXECUTE held until the target's answer; else it is lost with
   * the reason why.
   */
  function adoptStatement(st: MysqlSession, msg: Buffer, id: number, act: ClientActions): void {
    const payload = msg.subarray(PACKET_HEADER_BYTES);
    const cands = catalog
      .candidates(scope(st), id, st.now)
      .filter((c) => executeFit(payload, c.params, c.types) !== 'misfit');
    if (cands.length === 0) return mayLearn(st, act) ? holdLearn(st, act) : act.drop('unpreparedStatement');
    const probe = st.probe;
    if (probe === null) return act.drop('statementUnverified');
    if (probe.reply === null) {
      // bounded: a quiet session is offered it again when the wait is over (ClientActions.expired)
      if (st.now - probe.since < PROBE_WAIT_MS && !act.expired) return act.hold(probe.since + PROBE_WAIT_MS - st.now);
      probe.done();
    }
    const fit = probe.fitting(cands);
    if (probe.reply?.kind === 'none') return act.drop('statementUnverified');
    if (fit.length === 0) return act.drop('statementMismatch');
    if (fit.length > 1) return act.drop('ambiguousStatement');
    const e = fit[0] as (typeof fit)[number];
    if (executeFit(payload, e.params, e.types) === 'noTypes')
      return mayLearn(st, act) ? holdLearn(st, act) : act.drop('unknownParamTypes');
    const r = st.stmts.adopt(id, e);
    act.count('statementsReprepared');
    act.insert(encodePacket(0, Buffer.concat([Buffer.from([COM_STMT_PREPARE]), e.text])));
    st.target.expect('prepare', r, st.sent);
    r.target = 'pending';
    r.sentAt = st.now;
    r.tries = 1;
    act.hold(); // until the target's PREPARE_OK tells its id
  }

  /**
   * The target's answer to `r`'s PREPARE was not read: its text is prepared on the target
   * again (a new record, MAX_PREPARE_TRIES in all) and the command held for the answer; else
   * the command is lost (statementNotMapped).
   */
  function prepareAgain(st: MysqlSession, r: PrepareRec, act: ClientActions): void {
    const text = textOf(r);
    if (text === null || r.refused || r.online !== 'ok' || r.tries >= MAX_PREPARE_TRIES)
      return act.drop('statementNotMapped');
    const n = st.stmts.redo(r, text);
    act.count('preparesRetried');
    act.insert(encodePacket(0, Buffer.concat([Buffer.from([COM_STMT_PREPARE]), text])));
    st.target.expect('prepare', n, st.sent);
    n.target = 'pending';
    n.sentAt = st.now;
    n.tries++;
    act.hold(); // until the target's PREPARE_OK tells its id
  }

  /**
   * May the session hold an EXECUTE until another connection teaches its statement (text or
   * parameter types)? Sessions picked up mid-stream, within LEARN_WAIT_MS of their first such
   * hold (src/modules/learn-wait.ts); counts the first hold.
   */
  function mayLearn(st: MysqlSession, act: ClientActions): boolean {
    if (st.start.origin === 'syn') return false; // its own PREPAREs were lost: nobody teaches those
    return waitToLearn(st, act, st.now, LEARN_WAIT_MS, 'learnWaits');
  }

  /** Holds the EXECUTE for what is left of the session's learning wait. */
  function holdLearn(st: MysqlSession, act: ClientActions): void {
    holdLearning(st, act, st.now, LEARN_WAIT_MS);
  }

  /** The reply kind of a command (its first byte), null when it has none. */
  function replyKind(cmd: number): ReplyKind | null {
    switch (cmd) {
      case COM_QUIT:
      case COM_STMT_CLOSE:
      case COM_STMT_SEND_LONG_DATA:
        return null;
      case COM_STMT_PREPARE:
        return 'prepare';
      case COM_STMT_FETCH:
        return 'fetch';
      case COM_FIELD_LIST:
        return 'fieldList';
      case COM_STATISTICS:
        return 'single';
      case COM_CHANGE_USER:
        return 'auth';
      case COM_BINLOG_DUMP:
      case COM_BINLOG_DUMP_GTID:
      case COM_REGISTER_SLAVE:
        return 'opaque';
      default:
        return 'result';
    }
  }

  /** Sends (passes, or replaces with `bytes`) a message and tells the target's tracker what reply follows. */
  function send(
    st: MysqlSession,
    act: ClientActions,
    kind: ReplyKind | null,
    rec: PrepareRec | null,
    bytes?: Buffer,
  ): void {
    if (bytes === undefined) act.pass();
    else act.replace(bytes);
    if (kind !== null) st.target.expect(kind, rec, st.sent);
    if (rec !== null) {
      rec.target = 'pending';
      rec.sentAt = st.now;
      rec.tries++;
    }
  }

  function onLogin(st: MysqlSession, msg: Buffer, act: ClientActions): void {
    const payload = msg.subarray(PACKET_HEADER_BYTES);
    if (isSslRequest(payload) && payload.length === SSL_REQUEST_BYTES) return act.end('tls');
    const resp = parseHandshakeResponse(payload);
    if (isParseError(resp)) return act.end('malformedLogin');
    if (st.pendingLogin === null) {
      st.pendingLogin = {
        user: resp.user,
        database: resp.database,
        capabilities: resp.capabilities,
        mariadbCapabilities: resp.mariadbCapabilities,
        maxPacketSize: resp.maxPacketSize,
        charset: resp.charset,
      };
      table.store(st.start, st.pendingLogin, st.now); // what production saw, whatever the target says
    }
    const password = cfg.users.get(resp.user);
    if (password === undefined) return act.end('unknownUser');
    if (st.greeting === null || st.scramble === null) return holdLogin(act);
    const serverCaps = st.onlineCaps ?? st.greeting.capabilities;
    if ((resp.capabilities & serverCaps & (CLIENT_COMPRESS | CLIENT_ZSTD_COMPRESSION_ALGORITHM)) !== 0)
      return act.end('compressed');
    st.password = password;
    st.phase = 'auth';
    st.authKind = 'login';
    const rebuilt = rebuildHandshakeResponse(payload, resp, password, st.scramble);
    send(st, act, 'auth', null, encodePacket(msg[3] as number, rebuilt));
  }

  function onMidstream(st: MysqlSession, msg: Buffer, act: ClientActions): void {
    const seq = msg[3] as number;
    if (seq === 1) {
      // the SYN was missed but not the login: redo it like a captured one
      const p = msg.subarray(PACKET_HEADER_BYTES);
      if ((isSslRequest(p) && p.length === SSL_REQUEST_BYTES) || !isParseError(parseHandshakeResponse(p))) {
        st.phase = 'login';
        return onLogin(st, msg, act);
      }
    }
    if (seq !== 0) return act.drop(); // the middle of an exchange begun before the capture
    if (st.greeting === null || st.scramble === null) return holdLogin(act);
    const found = table.find(st.start, st.now);
    if (found === null) return act.end('noLogin');
    const password = cfg.users.get(found.login.user);
    if (password === undefined) return act.end('unknownUser');
    st.password = password;
    st.pendingLogin = found.login;
    st.phase = 'auth';
    st.authKind = 'midstream';
    act.insert(encodePacket(1, buildHandshakeResponse(found.login, password, st.scramble, st.greeting.charset)));
    st.target.expect('auth', null, st.sent);
    act.hold();
  }

  /** Holds a message until the target greets or answers the login (HOLD_LIMIT_MS at most: then the session ends). */
  function holdLogin(act: ClientActions): void {
    if (act.expired) return act.end('loginUnanswered');
    act.hold();
  }

  function onStatementCommand(st: MysqlSession, msg: Buffer, cmd: number, act: ClientActions): void {
    const id = msg.readUInt32LE(PACKET_HEADER_BYTES + 1);
    const kind = replyKind(cmd);
    if (id === STMT_ID_LAST_PREPARED) return send(st, act, kind, null);
    const f = st.stmts.find(id);
    if (f === null) {
      if (cmd === COM_STMT_EXECUTE) return adoptStatement(st, msg, id, act);
      if (cmd !== COM_STMT_CLOSE) return act.drop('unpreparedStatement');
      act.count('unmappedCloses');
      return act.drop();
    }
    if (f.inferred) act.count('onlineIdsInferred');
    const r = f.rec;
    if (r.target === 'pending') {
      // the target's answer is on its way, unless its reply stream is lost and the answer may
      // have been in the bytes not seen (the target had the PREPARE then): then asked again
      if (!st.target.mayHaveMissed(r)) {
        if (!act.expired) return act.hold();
        if (cmd !== COM_STMT_CLOSE) return act.drop('prepareUnanswered'); // mapped when it comes
      } else r.target = 'err';
    }
    if (cmd === COM_STMT_CLOSE) st.stmts.close(r);
    if (r.target !== 'ok' || r.targetId === null) {
      if (cmd !== COM_STMT_CLOSE) return act.expired ? act.drop('prepareUnanswered') : prepareAgain(st, r, act);
      act.count('unmappedCloses');
      return act.drop();
    }
    act.count('statementsRemapped');
    if (cmd === COM_STMT_EXECUTE && r.params > 0 && (r.types === null || (r.adopted && !r.typesSent))) {
      const payload = msg.subarray(PACKET_HEADER_BYTES);
      const bound = boundTypes(payload, r.params);
      if (bound !== null) {
        r.typesSent = true;
        if (r.types === null) {
          r.types = bound;
          if (r.entry !== null && r.entry.types === null) r.entry.types = bound;
        }
      } else if (r.adopted && !r.typesSent) {
        // the target never had this statement's types: the client bound them before the capture
        if (r.types === null || executeFit(payload, r.params, r.types) !== 'fits') return act.drop('unknownParamTypes');
        r.typesSent = true;
        act.count('paramTypesAdded');
        return send(st, act, kind, null, withTypes(msg, r.params, r.types, r.targetId));
      }
    }
    if (r.targetId === id) return send(st, act, kind, null);
    const b = Buffer.from(msg);
    b.writeUInt32LE(r.targetId >>> 0, PACKET_HEADER_BYTES + 1);
    send(st, act, kind, null, b);
  }

  function onChangeUser(st: MysqlSession, msg: Buffer, act: ClientActions): void {
    const payload = msg.subarray(PACKET_HEADER_BYTES);
    const login = st.login ?? configuredLogin({ user: '', database: null, port: null });
    const cu = parseChangeUser(payload, login.capabilities);
    if (isParseError(cu) || st.scramble === null) return act.end('malformedLogin');
    const password = cfg.users.get(cu.user);
    if (password === undefined) return act.end('unknownUser');
    st.password = password;
    st.pendingLogin = { ...login, user: cu.user, database: cu.database === '' ? null : cu.database };
    st.phase = 'auth';
    st.authKind = 'changeUser';
    st.stmts.clear(); // the server closes the session's statements
    const rebuilt = rebuildChangeUser(payload, cu, login.capabilities, password, st.scramble);
    send(st, act, 'auth', null, encodePacket(msg[3] as number, rebuilt));
  }

  function onCommand(st: MysqlSession, msg: Buffer, act: ClientActions, rec: PrepareRec | null): void {
    if (msg[3] !== 0 && st.justLoggedIn) {
      // the client's answer to production's AuthSwitchRequest, captured after the target (which
      // did not switch, or was answered by the module) accepted the login: not a command
      act.count('lateAuthAnswers');
      return act.drop();
    }
    st.justLoggedIn = false;
    if (msg[3] !== 0 || msg.length <= PACKET_HEADER_BYTES) return act.pass(); // LOCAL INFILE data
    const cmd = msg[PACKET_HEADER_BYTES] as number;
    switch (cmd) {
      case COM_STMT_EXECUTE:
      case COM_STMT_SEND_LONG_DATA:
      case COM_STMT_CLOSE:
      case COM_STMT_RESET:
      case COM_STMT_FETCH:
      case COM_STMT_BULK_EXECUTE:
        if (msg.length < PACKET_HEADER_BYTES + 5) return send(st, act, replyKind(cmd), null);
        return onStatementCommand(st, msg, cmd, act);
      case COM_STMT_PREPARE:
        return send(st, act, 'prepare', rec);
      case COM_CHANGE_USER:
        return onChangeUser(st, msg, act);
      case COM_RESET_CONNECTION:
        st.stmts.clear();
        return send(st, act, 'result', null);
      case COM_INIT_DB:
        if (st.login !== null) {
          st.login = { ...st.login, database: msg.toString('utf8', PACKET_HEADER_BYTES + 1) };
          table.store(st.start, st.login, st.now);
        }
        return send(st, act, 'result', null);
      default:
        return send(st, act, replyKind(cmd), null);
    }
  }

  return {
    name: 'mysql',
    wantsTargetPayload: true,
    wantsOnlineReplies: true,
    holdLimitMs: HOLD_LIMIT_MS,
    reasons: MYSQL_REASONS,
    counters: MYSQL_COUNTERS,

    startSession: newSession,

    frameClient(_st, data, off, len) {
      if (len < PACKET_HEADER_BYTES) return 0;
      const n = PACKET_HEADER_BYTES + data.readUIntLE(off, 3);
      return n <= len ? n : 0;
    },

    onClientMessage(st, msg, act, now) {
      st.now = now;
      if (st.hasDeferred) flush(st, act);
      if (st.ended) return act.drop();
      const len = msg.readUIntLE(0, 3);
      if (st.cont !== 'none') {
        // the rest of a 16 MiB packet follows its head's fate
        const fate = st.cont;
        if (len !== MAX_PACKET_PAYLOAD) st.cont = 'none';
        if (fate === 'pass') st.sent += msg.length;
        return fate === 'pass' ? act.pass() : act.drop();
      }
      const seq = msg[3] as number;
      // the online server answers every captured command, whatever its fate here
      let rec: PrepareRec | null = st.reoffer ? st.heldRec : null;
      if (!st.reoffer) {
        st.probe = null;
        if (st.phase === 'login') st.online.expect('auth');
        else if (seq === 0 && msg.length > PACKET_HEADER_BYTES) {
          const cmd = msg[PACKET_HEADER_BYTES] as number;
          let tag: OnlineTag | null = null;
          if (cmd === COM_STMT_PREPARE) {
            const text =
              msg.length - PACKET_HEADER_BYTES - 1 <= MAX_TEXT_BYTES ? msg.subarray(PACKET_HEADER_BYTES + 1) : null;
            tag = rec = st.stmts.add(text === null ? null : Buffer.from(text));
          } else if (cmd === COM_STMT_EXECUTE && msg.length >= PACKET_HEADER_BYTES + 10) {
            // a statement id this session never prepared: production's reply tells what it ran
            const id = msg.readUInt32LE(PACKET_HEADER_BYTES + 1);
            if (id !== STMT_ID_LAST_PREPARED && !st.stmts.has(id)) tag = st.probe = new ExecProbe(now);
          }
          const kind = replyKind(cmd);
          if (kind !== null) st.online.expect(kind, tag);
        }
      }
      inner = act;
      verdict = 'none';
      cur = st;
      curLen = msg.length;
      switch (st.phase) {
        case 'login':
          onLogin(st, msg, spy);
          break;
        case 'midstream':
          onMidstream(st, msg, spy);
          break;
        case 'auth':
          if (seq === 0) holdLogin(spy);
          else {
            spy.count('authAnswersDropped');
            spy.drop();
          }
          break;
        default:
          onCommand(st, msg, spy, rec);
      }
      inner = null;
      cur = null;
      const v = verdict as Verdict;
      if (v === 'end') st.ended = true;
      st.reoffer = v === 'hold';
      st.heldRec = v === 'hold' ? rec : null;
      if (v !== 'hold') st.probe = null;
      if (rec !== null && v !== 'hold' && v !== 'pass') rec.target = 'err';
      if (len === MAX_PACKET_PAYLOAD && (v === 'pass' || v === 'drop')) st.cont = v;
    },

    onTargetBytes(st, data, missing, act, now) {
      if (st.ended) return;
      st.now = now;
      st.act = act;
      if (st.hasDeferred) flush(st, act);
      st.target.feed(data, missing, act.acked ?? Infinity);
      st.act = null;
    },

    answered(st, sent) {
      return !st.ended && st.target.answered(sent);
    },

    onOnlineBytes(st, data, missing, now) {
      st.now = now;
      st.online.feed(data, missing);
    },

    comparableReply(st, online, target) {
      // a PREPARE_OK names each server's own handle for the statement: the module mapped one to the other
      const p = prepareOkId(online);
      const t = prepareOkId(target);
      if (p === null || t === null || p === t || !st.stmts.paired(p, t)) return target;
      const out = Buffer.from(target);
      out.writeUInt32LE(p, PACKET_HEADER_BYTES + 1);
      return out;
    },
  };
}

/** The statement id of a reply that begins with a COM_STMT_PREPARE_OK packet (sequence id 1), null otherwise. */
function prepareOkId(b: Buffer): number | null {
  if (b.length < PACKET_HEADER_BYTES + 9 || b[3] !== 1 || b.readUIntLE(0, 3) < 9) return null;
  const ok = parsePrepareOk(b.subarray(PACKET_HEADER_BYTES));
  return ok === null ? null : ok.statementId;
}

/** A statement's text (kept on its record, or in the catalog once production answered), null: not known. */
function textOf(r: PrepareRec): Buffer | null {
  return r.text ?? r.entry?.text ?? null;
}
