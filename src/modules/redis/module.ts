/**
 * `--module redis`: Redis sessions replayed against a server with other credentials.
 *
 * - Commands are framed (RESP arrays and inline lines); everything passes as captured except:
 * - `AUTH [user] password` and `HELLO protover AUTH user password ...`: rewritten to the
 *   target's password of that user (`--redis-auth`) when it differs (the command's length
 *   changes: the engine maps the byte stream); passed as captured when the user has no
 *   `--redis-auth` or the same password; a one-argument AUTH is dropped when the target's
 *   default user needs no password (it would answer an error).
 * - A session whose first command is not an AUTH (picked up mid-stream, a pooled connection; or
 *   production without a password) gets one inserted before it, for the login stored from the
 *   same client's captured AUTH, else `--redis-login`, else the default user, else the only
 *   `--redis-auth` user; a session picked up mid-stream also gets the SELECT its client's
 *   stored session made. The first command waits until the target answered them: their
 *   replies are the module's (no captured request waits for them), and a refusal ends the
 *   session (`authRefused`, `selectRefused`) instead of replaying commands that the target
 *   would refuse with NOAUTH.
 * - The target's replies are framed only during the login (until the replies to the AUTH and
 *   SELECT the module checks have come); a later AUTH is rewritten the same way, unchecked.
 */
import type { ClientActions, ProtocolModule, SessionStart, TargetActions } from '../api';
import { DEFAULT_USER, type RedisOptions } from './options';
import { ReplyFramer, argIs, buildCommand, commandArgs, commandLength } from './resp';

export const REASONS = {
  authRefused: 'the target refused the AUTH the module sent (rewritten or inserted): check --redis-auth',
  selectRefused: 'the target refused the SELECT inserted for a session picked up mid-stream (fewer databases?)',
  noLogin: 'the session sent no AUTH and no login could be chosen (several --redis-auth users, no --redis-login)',
  loginStalled:
    'the target did not answer the AUTH / SELECT the module inserted within holdLimitMs: the first command would wait forever',
  unframed: 'the first client bytes are not Redis commands (picked up inside a command) and a login had to be inserted',
} as const;
type Reason = keyof typeof REASONS;

/**
 * The longest the first command of a session waits for the target's answers to the AUTH (and
 * SELECT) the module inserted before it (ms): then the session ends as `loginStalled`.
 */
export const HOLD_LIMIT_MS = 30_000;

export const COUNTERS = {
  authRewritten: "AUTH / HELLO AUTH commands rewritten to the target's password",
  authAsCaptured: 'AUTH / HELLO AUTH commands passed as captured (no --redis-auth for the user, or the same password)',
  authDropped: "one-argument AUTH commands dropped: the target's default user needs no password",
  authInserted: 'AUTH commands inserted before the first command of a session that sent none',
  selectInserted: 'SELECT commands inserted after such an AUTH (the database of the client’s stored session)',
  authOk: 'AUTH / HELLO AUTH replies of the target checked: accepted',
  authRefusedAsCaptured: 'AUTH / HELLO AUTH passed as captured that the target refused (production may have too)',
  replyFramingLost:
    'sessions whose target replies could not be framed during the login (payload cap): AUTH replies unchecked',
} as const;
type Counter = keyof typeof COUNTERS;

const enum Check {
  InsertedAuth = 1,
  InsertedSelect = 2,
  Auth = 3,
  AuthCaptured = 4,
  Hello = 5,
  HelloCaptured = 6,
}

/** A login stored from a captured session, for later sessions of the same client. */
interface StoredLogin {
  user: string;
  db: number;
  until: number;
}

/** Most stored logins (client addresses). */
export const MAX_LOGINS = 4096;
/** A stored login is forgotten this long (ms) after it was last stored: 24 h. */
export const LOGIN_TTL_MS = 24 * 3600 * 1000;

/** Per-session state. */
export interface RedisSession {
  clientIp: string;
  origin: SessionStart['origin'];
  /** The next message is the session's first. */
  first: boolean;
  /** The first bytes were not commands: the session ends at its first message. */
  garbage: boolean;
  /** The user this session authenticated as (captured AUTH), null before. */
  user: string | null;
  db: number;
  /** Frames the target's replies while checks are outstanding; null: not framing. */
  replies: ReplyFramer | null;
  /** Commands sent that the target answers (while framing). */
  sent: number;
  /** Top-level replies framed. */
  replied: number;
  /** Outstanding checks: flat [reply ordinal, Check], oldest first. */
  checks: number[];
  /** Inserted commands whose replies the held first command waits for. */
  awaiting: number;
  /** The TargetActions of the delivery being framed (set around ReplyFramer.feed). */
  act: TargetActions | null;
}

export class RedisModule implements ProtocolModule<RedisSession> {
  readonly name = 'redis';
  readonly wantsTargetPayload: boolean;
  readonly wantsOnlineReplies = false;
  /** Requests are pipelined: the next goes without waiting for the target's answer (api.ts). */
  readonly pipelined = true;
  /** The first command waits at most this long (ms) for the target's answers to an inserted login (loginStalled). */
  readonly holdLimitMs = HOLD_LIMIT_MS;
  readonly reasons: Readonly<Record<string, string>> = REASONS;
  readonly counters: Readonly<Record<string, string>> = COUNTERS;
  private readonly logins = new Map<string, StoredLogin>();
  /** Reused argument offsets (module calls are synchronous). */
  private readonly args: number[] = [];

  constructor(private readonly opts: RedisOptions) {
    // without credentials nothing is checked: the target's replies are not needed
    this.wantsTargetPayload = opts.passwords.size > 0;
  }

  startSession(s: SessionStart): RedisSession {
    const st: RedisSession = {
      clientIp: s.clientIp,
      origin: s.origin,
      first: true,
      garbage: false,
      user: null,
      db: 0,
      replies: null,
      sent: 0,
      replied: 0,
      checks: [],
      awaiting: 0,
      act: null,
    };
    if (this.wantsTargetPayload) st.replies = new ReplyFramer((t) => this.reply(st, t));
    return st;
  }

  frameClient(st: RedisSession, data: Buffer, off: number, len: number): number {
    if (st.garbage) return len;
    const n = commandLength(data, off, len);
    if (n < 0 && st.first && this.opts.passwords.size > 0) {
      st.garbage = true;
      return len;
    }
    return n;
  }

  onClientMessage(st: RedisSession, msg: Buffer, act: ClientActions, now: number): void {
    if (st.garbage) return act.end('unframed' satisfies Reason);
    if (st.awaiting > 0) return act.expired ? act.end('loginStalled' satisfies Reason) : act.hold();
    const a = this.args;
    const n = commandArgs(msg, a, 1);
    const s0 = a[0] ?? 0;
    const e0 = a[1] ?? 0;
    const isAuth = n > 0 && argIs(msg, s0, e0, 'AUTH');
    const isHello = n > 0 && argIs(msg, s0, e0, 'HELLO');
    if (st.first) {
      st.first = false;
      if (!isAuth && !(isHello && this.helloAuthAt(msg) > 0) && this.opts.passwords.size > 0) {
        const r = this.insertLogin(st, act, now);
        if (r !== null) return act.end(r);
        if (st.awaiting > 0) return act.hold();
      }
    }
    if (n === 0) return act.pass(); // an empty command: no reply
    if (isAuth) return this.auth(st, msg, act, now);
    if (isHello) return this.hello(st, msg, act, now);
    if (argIs(msg, s0, e0, 'SELECT')) this.select(st, msg, now);
    else if (
      argIs(msg, s0, e0, 'SUBSCRIBE') ||
      argIs(msg, s0, e0, 'PSUBSCRIBE') ||
      argIs(msg, s0, e0, 'SSUBSCRIBE') ||
      argIs(msg, s0, e0, 'MONITOR') ||
      (argIs(msg, s0, e0, 'CLIENT') && this.clientReplyOff(msg))
    )
      this.stopFraming(st); // replies are no longer one per command
    st.sent++;
    this.settled(st);
    return act.pass();
  }

  onTargetBytes(st: RedisSession, data: Buffer, missing: number, act: TargetActions): void {
    const f = st.replies;
    if (f === null) return;
    st.act = act;
    f.feed(data, missing);
    st.act = null;
    if (f.lost && st.replies === f) {
      act.count('replyFramingLost' satisfies Counter);
      this.stopFraming(st);
    }
  }

  /** Inserts AUTH (and SELECT) for the session; returns a reason to end it, or null. */
  private insertLogin(st: RedisSession, act: ClientActions, now: number): Reason | null {
    const pw = this.opts.passwords;
    let user: string | null = null;
    let db = 0;
    const stored = this.logins.get(st.clientIp);
    if (stored !== undefined && stored.until >= now && pw.has(stored.user)) {
      user = stored.user;
      db = stored.db;
    } else if (this.opts.login !== null) user = this.opts.login;
    else if (pw.has(DEFAULT_USER)) user = DEFAULT_USER;
    else if (pw.size === 1) user = pw.keys().next().value as string;
    if (user === null) return 'noLogin';
    const p = pw.get(user) as string;
    if (p !== '') {
      act.insert(buildCommand(user === DEFAULT_USER ? ['AUTH', p] : ['AUTH', user, p]));
      act.count('authInserted' satisfies Counter);
      this.expect(st, Check.InsertedAuth);
      st.awaiting++;
    }
    st.user = user;
    if (st.origin !== 'syn' && db !== 0) {
      act.insert(buildCommand(['SELECT', String(db)]));
      act.count('selectInserted' satisfies Counter);
      this.expect(st, Check.InsertedSelect);
      st.awaiting++;
      st.db = db;
    }
    this.settled(st);
    return null;
  }

  /** `AUTH password` or `AUTH user password`. */
  private auth(st: RedisSession, msg: Buffer, act: ClientActions, now: number): void {
    const a = this.args;
    const n = commandArgs(msg, a, 4);
    if (n !== 2 && n !== 3) return this.passCommand(st, act); // the target answers the syntax error
    const user = n === 3 ? str(msg, a, 1) : DEFAULT_USER;
    const captured = msg.subarray(a[2 * (n - 1)], a[2 * (n - 1) + 1]);
    this.storeUser(st, user, now);
    const target = this.opts.passwords.get(user);
    if (target === undefined || captured.equals(Buffer.from(target, 'utf8'))) {
      act.count('authAsCaptured' satisfies Counter);
      this.expect(st, Check.AuthCaptured);
      return this.passCommand(st, act);
    }
    if (target === '' && n === 2) {
      act.count('authDropped' satisfies Counter);
      this.settled(st);
      return act.drop();
    }
    act.count('authRewritten' satisfies Counter);
    this.expect(st, Check.Auth);
    st.sent++;
    this.settled(st);
    return act.replace(buildCommand(n === 3 ? ['AUTH', user, target] : ['AUTH', target]));
  }

  /** `HELLO protover [AUTH user password] [SETNAME name]`. */
  private hello(st: RedisSession, msg: Buffer, act: ClientActions, now: number): void {
    const at = this.helloAuthAt(msg);
    if (at < 0) return this.passCommand(st, act);
    const a = this.args;
    const n = commandArgs(msg, a, 16);
    const user = str(msg, a, at + 1);
    this.storeUser(st, user, now);
    const target = this.opts.passwords.get(user);
    const captured = msg.subarray(a[2 * (at + 2)], a[2 * (at + 2) + 1]);
    if (target === undefined || captured.equals(Buffer.from(target, 'utf8'))) {
      act.count('authAsCaptured' satisfies Counter);
      this.expect(st, Check.HelloCaptured);
      return this.passCommand(st, act);
    }
    const args: (string | Buffer)[] = [];
    for (let i = 0; i < n; i++) args.push(i === at + 2 ? target : msg.subarray(a[2 * i], a[2 * i + 1]));
    act.count('authRewritten' satisfies Counter);
    this.expect(st, Check.Hello);
    st.sent++;
    this.settled(st);
    return act.replace(buildCommand(args));
  }

  /** Index of HELLO's AUTH argument (followed by user and password), or -1. */
  private helloAuthAt(msg: Buffer): number {
    const a = this.args;
    const n = commandArgs(msg, a, 16);
    for (let i = 2; i + 2 < n; i++) if (argIs(msg, a[2 * i] as number, a[2 * i + 1] as number, 'AUTH')) return i;
    return -1;
  }

  private select(st: RedisSession, msg: Buffer, now: number): void {
    const a = this.args;
    if (commandArgs(msg, a, 2) !== 2) return;
    const db = Number(str(msg, a, 1));
    if (!Number.isInteger(db) || db < 0) return;
    st.db = db;
    if (st.user !== null && st.origin === 'syn') this.store(st.clientIp, st.user, db, now);
  }

  /** `CLIENT REPLY OFF|SKIP`: the target stops answering. */
  private clientReplyOff(msg: Buffer): boolean {
    const a = this.args;
    if (commandArgs(msg, a, 3) !== 3 || !argIs(msg, a[2] as number, a[3] as number, 'REPLY')) return false;
    return !argIs(msg, a[4] as number, a[5] as number, 'ON');
  }

  private passCommand(st: RedisSession, act: ClientActions): void {
    st.sent++;
    this.settled(st);
    act.pass();
  }

  private storeUser(st: RedisSession, user: string, now: number): void {
    st.user = user;
    if (st.origin === 'syn') this.store(st.clientIp, user, st.db, now);
  }

  private store(ip: string, user: string, db: number, now: number): void {
    const m = this.logins;
    m.delete(ip);
    m.set(ip, { user, db, until: now + LOGIN_TTL_MS });
    for (const [k, e] of m) {
      if (m.size <= MAX_LOGINS && e.until >= now) break;
      m.delete(k);
    }
  }

  /** The command being sent (st.sent + 1) is checked when its reply comes. */
  private expect(st: RedisSession, kind: Check): void {
    if (st.replies === null) return;
    st.checks.push(st.sent + 1, kind);
    if (kind === Check.InsertedAuth || kind === Check.InsertedSelect) st.sent++;
  }

  /** Stops framing when nothing is left to check. */
  private settled(st: RedisSession): void {
    if (st.checks.length === 0 && st.awaiting === 0) st.replies = null;
  }

  private stopFraming(st: RedisSession): void {
    st.replies = null;
    st.checks.length = 0;
    st.awaiting = 0;
  }

  /** One complete top-level reply of the target. */
  private reply(st: RedisSession, type: number): void {
    st.replied++;
    const c = st.checks;
    while (c.length > 0 && (c[0] as number) <= st.replied) {
      const at = c.shift() as number;
      const kind = c.shift() as Check;
      if (at !== st.replied) continue;
      const act = st.act as TargetActions;
      const error = type === 0x2d || type === 0x21;
      switch (kind) {
        case Check.InsertedAuth:
        case Check.InsertedSelect:
          st.awaiting--;
          if (error) return act.end(kind === Check.InsertedAuth ? 'authRefused' : 'selectRefused');
          if (kind === Check.InsertedAuth) act.count('authOk' satisfies Counter);
          break;
        case Check.Auth:
        case Check.Hello:
          if (error) return act.end('authRefused' satisfies Reason);
          act.count('authOk' satisfies Counter);
          break;
        default:
          act.count((error ? 'authRefusedAsCaptured' : 'authOk') satisfies Counter);
      }
    }
    this.settled(st);
  }
}

/** Argument `i` (located in `a`) as text. */
function str(msg: Buffer, a: readonly number[], i: number): string {
  return msg.toString('utf8', a[2 * i], a[2 * i + 1]);
}

export function createRedisModule(opts: RedisOptions): RedisModule {
  return new RedisModule(opts);
}
