import { afterChange, endSession } from './engine-lifecycle';
import { type EngineState, flushAcks, idleDeadline } from './engine-state';
import { type Session, SessionState } from './session/session';
import { onRtxTimeout, sendAck, transmit } from './session/transmit';

/** Runs every timer due at `now` (retransmissions, release waits, gaps, idle ends), flushing owed ACKs before and after. */
export function pollTimers(e: EngineState, now: number): void {
  flushAcks(e);
  const timers = e.timers;
  for (let guard = 0; timers.peekDeadline() <= now && guard < 1_000_000; guard++) {
    const s = timers.peek() as Session;
    timers.remove(s);
    onTimer(e, s, now);
  }
  flushAcks(e);
}

/** One session's timer fired: capture gap, retransmission, delayed ACK, release wait, idle end. */
function onTimer(e: EngineState, s: Session, now: number): void {
  const cfg = e.cfg;
  if (s.state === SessionState.Closed) return;
  if (s.gapSince >= 0 && now >= s.gapSince + cfg.gapTimeoutMs && s.sndNxt === s.capNxt) {
    return endSession(e, s, 'captureGap', now);
  }
  if (now >= s.rtxAt) {
    if (!onRtxTimeout(e.ctx, s, now)) {
      return endSession(e, s, s.state === SessionState.SynSent ? 'targetNoHandshake' : 'targetTimeout', now);
    }
  }
  if (now >= s.delackAt) {
    s.delackAt = Infinity;
    if (s.state === SessionState.Established && s.rcvAcked !== s.rcvNxt) sendAck(e.ctx, s);
  }
  if (now >= s.waitAt) {
    const r = transmit(e.ctx, s, now);
    if (r !== 'ok') return afterChange(e, s, now, r);
  }
  if (now >= idleDeadline(e, s)) {
    const drained = s.sndUna === s.capNxt && s.state === SessionState.Established;
    return endSession(e, s, drained ? 'completed' : 'idleTimeout', now);
  }
  afterChange(e, s, now, 'ok');
}
