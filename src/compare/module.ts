/**
 * The comparison as a protocol module (src/modules/api.ts): it asks for the target's reply
 * payloads and production's replies, passes every client message unchanged, and feeds the
 * three byte streams of each session to that session's observer. This is how the comparison
 * consumes the engine's per-session delivery without code of its own in the engine. The engine
 * runs one module, so `--compare` with `--module` is refused (compare-options.ts); composing the
 * two (the user's module deciding every verdict, this one observing the same calls) is possible
 * but not built. Latency times: see session.ts and doc/compare.md "Latency" (the capture times
 * come from Comparison.times, which the runner sets per packet).
 */
import type { ProtocolModule } from '../modules/api';
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
