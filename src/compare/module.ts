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
import type { ClientActions, ProtocolModule } from '../modules/api';
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
    onTargetBytes: (st, data, missing, _act, now) => st.targetBytes(data, missing, now),
    onOnlineBytes: (st, data, missing, now) => st.onlineBytes(data, missing, now),
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
 * What is compared is the captured conversation, not the rewritten one: the target's answers
 * to the bytes a module inserted (a login redone for the target's salt) land in the exchange
 * of the client message they came with, so such handshakes differ by nature (another salt,
 * another connection id) and are reported as differences; judge them with a reference target
 * or two replicas (noise), as doc/compare.md "With a protocol module" says.
 */
export function withCompare<S>(inner: ProtocolModule<S>, cmp: Comparison): ProtocolModule<Composed<S>> {
  const times = cmp.times;
  let verdict: Verdict = 'none';
  let cur: ClientActions | null = null;
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
    insert: (b) => act().insert(b),
    count: (c, n) => act().count(c, n),
  };
  const m: ProtocolModule<Composed<S>> = {
    name: inner.name,
    wantsTargetPayload: true,
    targetPayloadMax: 65535,
    wantsOnlineReplies: true,
    reasons: inner.reasons,
    counters: inner.counters,
    ...(inner.holdLimitMs !== undefined ? { holdLimitMs: inner.holdLimitMs } : {}),
    startSession: (s) => ({ inner: inner.startSession(s), obs: cmp.openSession(s), unframed: false, heldAt: NaN }),
    frameClient: (st, data, off, len) => {
      if (st.unframed) return len;
      const n = inner.frameClient(st.inner, data, off, len);
      if (n >= 0) return n;
      st.unframed = true; // as the engine would: the rest passes unframed, observed chunk by chunk
      return len;
    },
    onClientMessage: (st, msg, a, now) => {
      if (st.unframed) {
        st.obs.clientBytes(msg, now);
        a.pass();
        return;
      }
      verdict = 'none';
      cur = a;
      try {
        inner.onClientMessage(st.inner, msg, wrap, now);
      } finally {
        cur = null;
      }
      const v = decided();
      if (v === 'hold') {
        if (st.heldAt !== st.heldAt) st.heldAt = times.at;
        return;
      }
      if (v === 'end' || v === 'none') return;
      const at = st.heldAt === st.heldAt ? st.heldAt : times.at;
      st.heldAt = NaN;
      st.obs.clientBytes(msg, now, at);
    },
    onTargetBytes: (st, data, missing, a, now) => {
      st.obs.targetBytes(data, missing, now);
      inner.onTargetBytes(st.inner, data, missing, a, now);
    },
    onOnlineBytes: (st, data, missing, now) => {
      st.obs.onlineBytes(data, missing, now);
      if (inner.wantsOnlineReplies) inner.onOnlineBytes?.(st.inner, data, missing, now);
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
