/**
 * The comparison as a protocol module (src/modules/api.ts): it asks for the target's reply
 * payloads and production's replies, passes every client message unchanged, and feeds the
 * three byte streams of each session to that session's observer. This is how the comparison
 * consumes the engine's per-session delivery without code of its own in the engine. The engine
 * runs one module: with `--module`, `withCompare` composes the two (the protocol module frames
 * and decides every verdict; the comparison observes the same calls). Latency times: see
 * session.ts and doc/compare.md "Latency" (the capture times come from Comparison.times, which
 * the runner sets per packet).
 */
import type { ClientActions, ProtocolModule, TargetActions } from '../modules/api';
import type { Comparison } from './comparison';
import type { ExchangeObserver } from './session';

/** The module of a comparison: its name is `compare`; it names no loss reasons and keeps no counters of its own. */
export function compareModule(cmp: Comparison): ProtocolModule<ExchangeObserver> {
  return {
    name: 'compare',
    wantsTargetPayload: true,
    // whole reply segments: a response is compared only when every byte of it arrived
    targetPayloadMax: 65535,
    wantsOnlineReplies: true,
    reasons: {},
    counters: {},
    startSession: (s) => cmp.openSession(s),
    // every chunk of captured bytes is one "message": the observer frames HTTP itself
    frameClient: (_st, _data, _off, len) => len,
    onClientMessage: (st, msg, act, now) => {
      st.clientBytes(msg, now);
      act.pass();
    },
    onTargetBytes: (st, data, missing, act, now) => st.targetBytes(data, missing, now, undefined, act.acked),
    onOnlineBytes: (st, data, missing, now, acked) => st.onlineBytes(data, missing, now, undefined, acked),
    endSession: (st, now) => st.end(now),
  };
}

/** A composed session: the protocol module's state and the comparison's observer. */
export interface Composed<S> {
  readonly inner: S;
  readonly obs: ExchangeObserver;
  /** The protocol module stopped framing (frameClient -1): every chunk is passed as it is. */
  unframed: boolean;
  /** Capture time of the message the protocol module holds (NaN: none held). */
  heldAt: number;
  /** Captured client bytes framed so far (the message being offered is the last framed: framing waits while one is held). */
  framed: number;
  /** Bytes of the stream sent to the target so far (passed, replaced, inserted and sent by the module). */
  sent: number;
}

type Verdict = 'none' | 'pass' | 'replace' | 'drop' | 'hold' | 'end';

/**
 * `--compare` beside a protocol module (`--module mysql`, a user's file): the protocol module
 * frames the client stream and decides every message's fate (its login redone, ids mapped); the
 * comparison observes what the client sent production (each captured message once, when the
 * protocol module lets it go: passed, replaced or dropped, not while held), production's replies
 * and the target's, as with compareModule. Sessions ask for whole reply payloads (the
 * comparison's 65535, whatever the protocol module asked) and for production's replies; the
 * protocol module gets production's replies only if it asked for them. Its name, reasons and
 * counters stay its own (the report's `mysql: reason` rows).
 *
 * What is compared is the captured conversation, not the rewritten one. withCompare tells the
 * observer where each message sits in the captured and the sent stream and which sent bytes are
 * the module's inserts, so bytes mode pairs each side's replies by their acknowledgment numbers
 * (session.ts BytesSessionObserver) and leaves out the target's answers to inserts; the
 * module's comparableReply rewrites what differs by nature (doc/compare.md "With a protocol module").
 */
export function withCompare<S>(inner: ProtocolModule<S>, cmp: Comparison): ProtocolModule<Composed<S>> {
  const times = cmp.times;
  let verdict: Verdict = 'none';
  let cur: ClientActions | null = null;
  let curSt: Composed<S> | null = null;
  /** Length of the replace() bytes of the current offer. */
  let replacedLen = 0;
  const act = (): ClientActions => cur as ClientActions;
  const decided = (): Verdict => verdict; // (set by the wrapper's calls, out of the compiler's sight)
  // one wrapper for every call (onClientMessage is not re-entered): it notes the verdict
  const wrap: ClientActions = {
    pass: () => {
      verdict = 'pass';
      act().pass();
    },
    replace: (b) => {
      verdict = 'replace';
      replacedLen = b.length;
      act().replace(b);
    },
    drop: (r) => {
      verdict = 'drop';
      if (r === undefined) act().drop();
      else act().drop(r);
    },
    hold: (maxWaitMs) => {
      verdict = 'hold';
      if (maxWaitMs === undefined) act().hold();
      else act().hold(maxWaitMs);
    },
    get expired() {
      return act().expired;
    },
    end: (r) => {
      verdict = 'end';
      act().end(r);
    },
    insert: (b) => {
      act().insert(b);
      // the engine appends inserted bytes to the sent stream at once (also before a hold)
      const st = curSt as Composed<S>;
      st.obs.inserted?.(st.sent, b.length);
      st.sent += b.length;
    },
    count: (c, n) => act().count(c, n),
  };
  // the target's replies, with module sends (an AuthSwitchResponse) counted in the sent stream
  let tcur: TargetActions | null = null;
  let tSt: Composed<S> | null = null;
  const tact = (): TargetActions => tcur as TargetActions;
  const twrap: TargetActions = {
    get acked() {
      // unknown: everything sent was received (TargetActions.acked)
      return tact().acked ?? (tSt as Composed<S>).sent;
    },
    send: (b) => {
      tact().send(b);
      (tSt as Composed<S>).sent += b.length;
    },
    end: (r) => tact().end(r),
    count: (c, n) => tact().count(c, n),
  };
  const m: ProtocolModule<Composed<S>> = {
    name: inner.name,
    wantsTargetPayload: true,
    targetPayloadMax: 65535,
    wantsOnlineReplies: true,
    reasons: inner.reasons,
    counters: inner.counters,
    ...(inner.holdLimitMs !== undefined ? { holdLimitMs: inner.holdLimitMs } : {}),
    startSession: (s) => {
      const innerSt = inner.startSession(s);
      const obs = cmp.openSession(
        s,
        inner.comparableReply === undefined
          ? undefined
          : (a, b) => {
              const r: unknown = inner.comparableReply?.(innerSt, a, b);
              return Buffer.isBuffer(r) ? r : b; // a user's module returning something else: as received
            },
      );
      return { inner: innerSt, obs, unframed: false, heldAt: NaN, framed: 0, sent: 0 };
    },
    frameClient: (st, data, off, len) => {
      if (st.unframed) {
        st.framed += len;
        return len;
      }
      let n = inner.frameClient(st.inner, data, off, len);
      if (n < 0) {
        st.unframed = true; // as the engine would: the rest passes unframed, observed chunk by chunk
        n = len;
      }
      if (n > 0 && n <= len) st.framed += n;
      return n;
    },
    onClientMessage: (st, msg, a, now) => {
      const captured = st.framed - msg.length;
      if (st.unframed) {
        st.obs.clientBytes(msg, now, undefined, { captured, sent: st.sent, sentLen: msg.length });
        st.sent += msg.length;
        a.pass();
        return;
      }
      verdict = 'none';
      replacedLen = 0;
      cur = a;
      curSt = st;
      try {
        inner.onClientMessage(st.inner, msg, wrap, now);
      } finally {
        cur = null;
        curSt = null;
      }
      const v = decided();
      if (v === 'hold') {
        if (st.heldAt !== st.heldAt) st.heldAt = times.at;
        return;
      }
      if (v === 'end' || v === 'none') return;
      const at = st.heldAt === st.heldAt ? st.heldAt : times.at;
      st.heldAt = NaN;
      const sentLen = v === 'pass' ? msg.length : v === 'replace' ? replacedLen : 0;
      st.obs.clientBytes(msg, now, at, { captured, sent: st.sent, sentLen });
      st.sent += sentLen;
    },
    onTargetBytes: (st, data, missing, a, now) => {
      st.obs.targetBytes(data, missing, now, undefined, a.acked);
      tcur = a;
      tSt = st;
      try {
        inner.onTargetBytes(st.inner, data, missing, twrap, now);
      } finally {
        tcur = null;
        tSt = null;
      }
    },
    onOnlineBytes: (st, data, missing, now, acked) => {
      st.obs.onlineBytes(data, missing, now, undefined, acked);
      if (inner.wantsOnlineReplies) inner.onOnlineBytes?.(st.inner, data, missing, now, acked);
    },
    endSession: (st, now) => {
      st.obs.end(now);
      inner.endSession?.(st.inner, now);
    },
  };
  const out: ProtocolModule<Composed<S>> =
    inner.answered !== undefined ? { ...m, answered: (st, sent) => inner.answered?.(st.inner, sent) === true } : m;
  return inner.pipelined === true ? { ...out, pipelined: true } : out;
}
