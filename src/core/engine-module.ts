/**
 * The engine's side of a protocol module (src/modules/api.ts; doc/modules.md): per session,
 * the captured client bytes are framed into messages by the module, each message's verdict
 * builds the stream sent to the target (sent space: the session's units), and the target's
 * (and the online server's) reply bytes are handed to the module in sequence order. Pure like
 * the rest of the core; a session without a module never comes here.
 *
 * Byte mapping: the units of a module session are in sent space (what the target receives),
 * so the target's ACKs, retransmissions, the release wait and the closing predicates all work
 * on it unchanged: nothing needs translating back to the captured space. Requests are
 * counted at capture (as without a module); a message's verdict settles the requests it
 * carries: passed or replaced ones are replayed once the target acknowledges them, dropped
 * ones are lost with the module's reason (or, without a reason, were not needed: counted as
 * replayed), inserted and sent messages are not requests.
 */
import type { ClientActions, ProtocolModule, SessionStart, TargetActions } from '../modules/api';
import type { EngineState } from './engine-state';
import { seqAdd, seqDiff } from './seq';
import type { ModuleStats } from './stats';
import type { DeliverBytes } from './session/byte-order';
import { type HeldMessage, ModSession } from './session/module-state';
import { type Session, SessionState } from './session/session';
import { ipToString } from './wire/segment';

/** The reason a session ends with when its module threw or broke the API (counted like the module's own). */
export const MODULE_ERROR = 'moduleError';

/** The reason a held message is dropped with when the module held it again after its hold limit passed. */
export const HOLD_EXPIRED = 'holdExpired';

const enum Verdict {
  None = 0,
  Pass = 1,
  Replace = 2,
  Drop = 3,
  Hold = 4,
  End = 5,
}

/** The one ClientActions object of an engine, refilled for every offer (module calls are synchronous). */
class Offer implements ClientActions {
  verdict = Verdict.None;
  replacement: Buffer | null = null;
  reason = '';
  /** hold()'s limit (ms; Infinity: none). */
  holdMs = Infinity;
  /** This offer comes because the message's hold limit passed. */
  expired = false;
  /** An API misuse seen during the call (two terminal calls, insert after one). */
  misuse = '';
  /** The release wait of the offered message, until a unit takes it (-1: none or taken). */
  gate = -1;
  s: Session | null = null;
  now = 0;

  constructor(private readonly rt: ModuleRuntime) {}

  private terminal(v: Verdict): boolean {
    if (this.verdict !== Verdict.None) {
      this.misuse = 'two terminal calls for one client message';
      return false;
    }
    this.verdict = v;
    return true;
  }
  /** The bytes given to replace(). */
  replaced(): Buffer {
    return this.replacement ?? Buffer.alloc(0);
  }
  pass(): void {
    this.terminal(Verdict.Pass);
  }
  replace(bytes: Buffer): void {
    if (this.terminal(Verdict.Replace)) this.replacement = bytes;
  }
  drop(reason?: string): void {
    if (this.terminal(Verdict.Drop)) this.reason = reason ?? '';
  }
  hold(maxWaitMs?: number): void {
    const ms = maxWaitMs ?? this.rt.mod.holdLimitMs ?? Infinity;
    if (typeof ms !== 'number' || Number.isNaN(ms) || ms < 0) {
      this.misuse = `hold(${String(maxWaitMs)}): the wait must be a number of ms >= 0`;
      return;
    }
    if (this.terminal(Verdict.Hold)) this.holdMs = ms;
  }
  end(reason: string): void {
    if (this.terminal(Verdict.End)) this.reason = reason;
  }
  insert(bytes: Buffer): void {
    if (this.verdict !== Verdict.None) {
      this.misuse = 'insert after the terminal call';
      return;
    }
    const s = this.s as Session;
    this.rt.stats.inserted++;
    this.gate = appendSent(this.rt.e, s, bytes, 0, bytes.length, this.gate, 0, this.now, (s.mod as ModSession).tsVal);
  }
  count(counter: string, n = 1): void {
    this.rt.count(counter, n);
  }
}

/** The one TargetActions object of an engine (the session being served is set before each call). */
class Reply implements TargetActions {
  s: Session | null = null;
  now = 0;
  acked = 0;
  constructor(private readonly rt: ModuleRuntime) {}
  send(bytes: Buffer): void {
    const s = this.s as Session;
    this.rt.stats.sent++;
    appendSent(this.rt.e, s, bytes, 0, bytes.length, -1, 0, this.now, (s.mod as ModSession).tsVal);
  }
  end(reason: string): void {
    const m = (this.s as Session).mod as ModSession;
    if (m.ending === null) m.ending = reason;
  }
  count(counter: string, n = 1): void {
    this.rt.count(counter, n);
  }
}

/** One engine's module, its counters and the reused callback objects. */
export class ModuleRuntime {
  readonly offer: Offer;
  readonly reply: Reply;
  /** The session and time the delivery callbacks serve (set before each delivery). */
  private cur: Session | null = null;
  private curNow = 0;
  private readonly gateOut = [-1];
  /** The target's bytes for the current session, in order, to onTargetBytes. */
  readonly deliverTarget: DeliverBytes = (data, missing) => {
    const s = this.cur as Session;
    const m = s.mod as ModSession;
    if (m.ending !== null || s.state === SessionState.Closed) return;
    this.reply.s = s;
    this.reply.now = this.curNow;
    this.guard(s, () => this.mod.onTargetBytes(m.st, data, missing, this.reply, this.curNow));
  };
  /** The online server's bytes for the current session, in order, to onOnlineBytes. */
  readonly deliverOnline: DeliverBytes = (data, missing) => {
    const s = this.cur as Session;
    const m = s.mod as ModSession;
    const mod = this.mod;
    if (mod.onOnlineBytes === undefined || m.ending !== null || s.state === SessionState.Closed) return;
    this.guard(s, () => mod.onOnlineBytes?.(m.st, data, missing, this.curNow, m.onlineAcked));
  };

  constructor(
    readonly e: EngineState,
    readonly mod: ProtocolModule,
    readonly stats: ModuleStats,
  ) {
    this.offer = new Offer(this);
    this.reply = new Reply(this);
  }

  count(counter: string, n: number): void {
    const c = this.stats.counters;
    c[counter] = (c[counter] ?? 0) + n;
  }

  /** Runs a module call; a throw ends the session with MODULE_ERROR (counted, message kept). */
  guard(s: Session, fn: () => void): void {
    const m = s.mod as ModSession;
    const was = m.busy;
    m.busy = true;
    try {
      fn();
    } catch (err) {
      this.fail(m, `${this.mod.name}: ${(err as Error)?.message ?? String(err)}`);
    } finally {
      m.busy = was;
    }
  }

  /** Marks the session to end with MODULE_ERROR. */
  fail(m: ModSession, msg: string): void {
    this.stats.errors++;
    this.stats.lastError = msg;
    if (m.ending === null) m.ending = MODULE_ERROR;
  }

  /** Sets the session and time the delivery callbacks serve. */
  serve(s: Session, now: number): void {
    this.cur = s;
    this.curNow = now;
  }

  /** Marks of captured bytes before `end` (see ModSession.takeMarks); the gate is in gateOut[0]. */
  takeMarks(m: ModSession, end: number): number {
    return m.takeMarks(end, this.gateOut);
  }

  get lastGate(): number {
    return this.gateOut[0] as number;
  }
}

/** A new session gets its module state (startSession) once its client address is known. */
export function attachModule(e: EngineState, s: Session, now: number): void {
  const rt = e.modules;
  if (rt === null) return;
  const m = new ModSession(rt.stats.target, rt.stats.online);
  m.sentEnd = s.capture.nxt;
  m.sentBase = s.capture.nxt;
  m.pendSeq = s.capture.nxt;
  s.mod = m;
  const start: SessionStart = {
    origin: s.synthesized ? 'midstream' : 'syn',
    clientIp: ipToString(s.origClientIp),
    clientPort: s.origClientPort,
    serverIp: ipToString(s.serverIp),
    serverPort: s.serverPort,
    targetIp: ipToString(s.targetIp),
    targetPort: s.targetPort,
    now,
  };
  rt.guard(s, () => {
    m.st = rt.mod.startSession(start);
  });
}

/**
 * Appends `len` bytes of `src` to the session's sent stream as one unit. `gate` >= 0 makes it
 * begin an exchange that waits for that many reply bytes (the release wait); `requests`
 * captured requests are counted replayed once the target acknowledges it. Returns the gate
 * left for the next unit (-1: taken).
 */
function appendSent(
  e: EngineState,
  s: Session,
  src: Buffer,
  off: number,
  len: number,
  gate: number,
  requests: number,
  capturedAt: number,
  tsVal: number,
): number {
  if (len === 0) return gate;
  const m = s.mod as ModSession;
  const u = e.pool.take(m.sentEnd, capturedAt, tsVal);
  e.pool.copyPayload(u, src, off, len);
  if (gate >= 0) {
    u.startsExchange = true;
    u.respBytes = gate;
  }
  for (let k = 0; k < requests; k++) s.requestSeqs.push(u.seq);
  s.units.push(u);
  m.sentEnd = seqAdd(m.sentEnd, len);
  return -1;
}

/** Appends the client's FIN or RST to the sent stream (after all data). */
function appendClose(e: EngineState, s: Session, m: ModSession, rst: boolean): void {
  const u = e.pool.take(m.sentEnd, m.capturedAt, m.tsVal);
  if (rst) u.rst = true;
  else u.fin = true;
  // the close waits for the answer production gave before it (not after a dropped request's)
  if (m.closeGate > 0 && !m.answerless) {
    u.startsExchange = true;
    u.respBytes = m.closeGate;
  }
  m.closeGate = -1;
  s.units.push(u);
  if (!rst) m.sentEnd = seqAdd(m.sentEnd, 1);
}

/** Sends `n` pending captured bytes as they are (unframed, or the tail of a stream the client closed mid-message). */
function passRaw(rt: ModuleRuntime, s: Session, m: ModSession, n: number): void {
  const capSeq = m.pendSeq;
  const requests = rt.takeMarks(m, seqAdd(capSeq, n));
  appendSent(rt.e, s, m.pending, m.pendOff, n, rt.lastGate, requests, m.capturedAt, m.tsVal);
  m.consume(n);
}

/**
 * Frames the pending captured bytes and offers each complete message, in order, until a
 * message is held, more bytes are needed or the session ends; then the client's FIN or RST
 * joins the stream once everything before it did. Ends the session when the module asked to.
 */
export function feedModule(e: EngineState, s: Session, now: number): void {
  const rt = e.modules;
  const m = s.mod;
  if (rt === null || m === null || m.busy) return;
  while (s.state !== SessionState.Closed && m.ending === null && m.held.length === 0) {
    if (m.pendLen > 0) {
      if (m.unframed) {
        passRaw(rt, s, m, m.pendLen);
        continue;
      }
      let n = 0;
      rt.guard(s, () => {
        n = rt.mod.frameClient(m.st, m.pending, m.pendOff, m.pendLen);
      });
      if (m.ending !== null) break;
      if (!Number.isInteger(n)) {
        rt.fail(m, `${rt.mod.name}: frameClient returned ${String(n)}`);
        break;
      }
      if (n < 0) {
        m.unframed = true;
        continue;
      }
      if (n === 0 || n > m.pendLen) {
        if (!m.finPending && !m.rstPending) break;
        passRaw(rt, s, m, m.pendLen); // the client closed mid-message: the rest as captured
        continue;
      }
      const capSeq = m.pendSeq;
      const requests = rt.takeMarks(m, seqAdd(capSeq, n));
      const msg = m.pending.subarray(m.pendOff, m.pendOff + n);
      m.consume(n);
      offer(rt, s, m, msg, capSeq, rt.lastGate, requests, m.capturedAt, m.tsVal, now, Infinity, false);
      continue;
    }
    if (m.finPending) {
      m.finPending = false;
      appendClose(e, s, m, false);
      continue;
    }
    if (m.rstPending) {
      m.rstPending = false;
      appendClose(e, s, m, true);
    }
    break;
  }
}

/** Offers one message to the module and applies its verdict. */
function offer(
  rt: ModuleRuntime,
  s: Session,
  m: ModSession,
  msg: Buffer,
  capSeq: number,
  gate: number,
  requests: number,
  capturedAt: number,
  tsVal: number,
  now: number,
  until: number,
  retry: boolean,
): void {
  const st = rt.stats;
  const o = rt.offer;
  o.verdict = Verdict.None;
  o.replacement = null;
  o.reason = '';
  o.misuse = '';
  o.holdMs = Infinity;
  o.expired = retry && now >= until;
  if (gate > 0 && m.answerless) gate = 0;
  if (gate >= 0) m.answerless = false;
  o.gate = gate;
  o.s = s;
  o.now = now;
  if (!retry) st.messages++;
  rt.guard(s, () => rt.mod.onClientMessage(m.st, msg, o, now));
  if (m.ending !== null) return;
  if (o.misuse !== '' || o.verdict === Verdict.None) {
    rt.fail(m, `${rt.mod.name}: ${o.misuse !== '' ? o.misuse : 'no terminal call for a client message'}`);
    return;
  }
  const e = rt.e;
  switch (o.verdict) {
    case Verdict.Pass:
      appendSent(e, s, msg, 0, msg.length, o.gate, requests, capturedAt, tsVal);
      break;
    case Verdict.Replace: {
      st.replaced++;
      const r = o.replaced();
      if (r.length === 0) settleUnsent(rt, s, requests, '');
      else appendSent(e, s, r, 0, r.length, o.gate, requests, capturedAt, tsVal);
      break;
    }
    case Verdict.Drop:
      st.dropped++;
      settleUnsent(rt, s, requests, o.reason);
      // the online server's answer to a dropped request has no counterpart at the target: the
      // next exchange does not wait for it
      if (requests > 0 || o.gate >= 0) m.answerless = true;
      break;
    case Verdict.Hold: {
      if (o.expired) {
        // held past its limit and still not wanted: dropped, never kept silently
        st.holdExpired++;
        st.dropped++;
        settleUnsent(rt, s, requests, HOLD_EXPIRED);
        if (requests > 0 || o.gate >= 0) m.answerless = true;
        break;
      }
      st.held++;
      // holding again on a later offer never extends a limit (a new, earlier one applies)
      const lim = retry ? Math.min(until, now + o.holdMs) : now + o.holdMs;
      const h: HeldMessage = { bytes: Buffer.from(msg), capSeq, gate: o.gate, requests, capturedAt, tsVal, until: lim };
      if (retry) m.held.unshift(h);
      else m.held.push(h);
      break;
    }
    case Verdict.End:
      m.ending = o.reason;
      break;
  }
}

/** Requests of a message that is not sent: lost with `reason`, or without one not needed (counted replayed). */
function settleUnsent(rt: ModuleRuntime, s: Session, requests: number, reason: string): void {
  if (requests === 0) return;
  const e = rt.e;
  if (reason === '') {
    rt.stats.requestsUnneeded += requests;
    s.requestsReplayed += requests;
    e.stats.requestsReplayed += requests;
    return;
  }
  s.requestsSettled += requests;
  const lost = rt.stats.lost;
  lost[reason] = (lost[reason] ?? 0) + requests;
}

/** Offers the held messages again (oldest first; those past their hold limit as expired), then resumes framing. */
export function retryHeld(e: EngineState, s: Session, now: number): void {
  const rt = e.modules;
  const m = s.mod;
  if (rt === null || m === null || m.busy) return;
  while (m.held.length > 0 && m.ending === null && s.state !== SessionState.Closed) {
    const h = m.held.shift() as HeldMessage;
    const left = m.held.length;
    offer(rt, s, m, h.bytes, h.capSeq, h.gate, h.requests, h.capturedAt, h.tsVal, now, h.until, true);
    if (m.held.length > left) break; // held again
  }
  feedModule(e, s, now);
}

/**
 * The target's reply segment (`carried` of its `total` payload bytes at `buf[off]`; none
 * when intercept sent headers only; `ack` its acknowledgment number) for a module session,
 * after the engine took its headers: delivered in order to onTargetBytes, then everything up
 * to `dataEnd` the engine already acknowledged (remembered ranges) as missing; then held
 * messages are offered again.
 */
export function targetBytes(
  e: EngineState,
  s: Session,
  ack: number,
  seq: number,
  buf: Buffer | null,
  off: number,
  carried: number,
  total: number,
  dataEnd: number,
  now: number,
): void {
  const rt = e.modules;
  const m = s.mod;
  if (rt === null || m === null) return;
  rt.serve(s, now);
  rt.reply.acked = Math.max(0, seqDiff(ack, m.sentBase));
  if (total > 0) m.target.push(seq, buf, off, carried, total, rt.deliverTarget);
  m.target.skipTo(dataEnd, rt.deliverTarget);
  if (total > 0) retryHeld(e, s, now);
}

/**
 * A captured online server -> client segment for a module session with wantsOnlineReplies
 * (`ack` its acknowledgment number, -1 when it carried none).
 */
export function onlineBytes(
  e: EngineState,
  s: Session,
  seq: number,
  ack: number,
  syn: boolean,
  buf: Buffer,
  off: number,
  carried: number,
  total: number,
  now: number,
): void {
  const rt = e.modules;
  const m = s.mod;
  if (rt === null || m === null) return;
  if (syn) {
    if (!m.online.started) m.online.start(seqAdd(seq, 1));
    return;
  }
  if (total === 0) return;
  // picked up without the SYN-ACK: the stream starts where the client's captured ACK says
  if (!m.online.started && s.capture.lastAckValid) m.online.start(s.capture.lastAck);
  rt.serve(s, now);
  // captured client bytes production had received (cumulative: bytes drained from beyond a hole keep the highest)
  if (ack >= 0) m.onlineAcked = Math.max(m.onlineAcked ?? 0, seqDiff(ack, m.sentBase));
  m.online.push(seq, buf, off, carried, total, rt.deliverOnline);
  retryHeld(e, s, now);
}

/**
 * The release wait of unit `u` (it begins an exchange): the module says the target has
 * completely answered everything sent before it (ProtocolModule.answered). False without a
 * module that can tell.
 */
export function moduleAnswered(e: EngineState, s: Session, unitSeq: number): boolean {
  const rt = e.modules;
  const m = s.mod;
  if (rt === null || m === null || rt.mod.answered === undefined) return false;
  const mod = rt.mod;
  let r = false;
  rt.guard(s, () => {
    r = mod.answered?.(m.st, seqDiff(unitSeq, m.sentBase)) === true;
  });
  return r;
}

/** The session ends (any outcome): the module's endSession, then its state is dropped. */
export function detachModule(e: EngineState, s: Session, now: number): void {
  const rt = e.modules;
  const m = s.mod;
  if (rt === null || m === null) return;
  const mod = rt.mod;
  if (mod.endSession !== undefined) rt.guard(s, () => mod.endSession?.(m.st, now));
  m.held.length = 0;
  m.target.reset();
  m.online.reset();
  s.mod = null;
}
