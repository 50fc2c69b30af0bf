import { afterChange, endIfModuleAsked, endSession } from './engine-lifecycle';
import { type EngineState, flushAcks } from './engine-state';
import { type Session, SessionState, allSent, caughtUp } from './session/session';
import { TIMER_KINDS, TimerKind, earliestDeadline } from './session/timers';
import { onRtxTimeout, sendAck, transmit } from './session/transmit';
import { retryHeld } from './engine-module';

/** Runs every timer due at `now` (retransmissions, release waits, gaps, hold limits, idle ends), flushing owed ACKs before and after. */
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

/**
 * Sets the two timers that follow from the session's state rather than being armed by an
 * event: Gap (a capture hole, once everything before it was sent) and Idle (-k once every
 * captured byte was acknowledged, -t otherwise, from the last activity).
 */
function armDerived(e: EngineState, s: Session): void {
  const cfg = e.cfg;
  const t = s.timer;
  const gapSince = s.capture.gapSince;
  t[TimerKind.Gap] = gapSince >= 0 && allSent(s) ? gapSince + cfg.gapTimeoutMs : Infinity;
  t[TimerKind.Hold] = s.mod !== null ? s.mod.holdDeadline() : Infinity;
  t[TimerKind.Idle] = s.lastActivity + (caughtUp(s) ? cfg.keepaliveTimeoutMs : cfg.sessionTimeoutMs);
}

/** Places the session in the timer heap at its earliest deadline (none once closed or while queued). */
export function rearm(e: EngineState, s: Session): void {
  if (s.state === SessionState.Closed || s.state === SessionState.Queued) return;
  armDerived(e, s);
  e.timers.set(s, earliestDeadline(s.timer));
}

/** One session's place in the heap came due: fires its due timers in TimerKind order. */
function onTimer(e: EngineState, s: Session, now: number): void {
  if (s.state === SessionState.Closed) return;
  armDerived(e, s);
  const t = s.timer;
  for (let k = 0; k < TIMER_KINDS; k++) {
    if (now >= (t[k] as number) && fire(e, s, k, now)) return;
  }
  afterChange(e, s, now, 'ok');
}

/** Fires one due timer. Returns true when the session was settled here (ended, or its change already handled). */
function fire(e: EngineState, s: Session, kind: TimerKind, now: number): boolean {
  switch (kind) {
    case TimerKind.Gap:
      endSession(e, s, 'captureGap', now);
      return true;
    case TimerKind.Rtx:
      if (onRtxTimeout(e, s, now)) return false;
      endSession(e, s, s.state === SessionState.SynSent ? 'targetNoHandshake' : 'targetTimeout', now);
      return true;
    case TimerKind.DelAck:
      s.timer[TimerKind.DelAck] = Infinity;
      if (s.state === SessionState.Established && s.reply.acked !== s.reply.nxt) sendAck(e, s);
      return false;
    case TimerKind.Wait: {
      const r = transmit(e, s, now);
      if (r === 'ok') return false;
      afterChange(e, s, now, r);
      return true;
    }
    case TimerKind.Hold: {
      // a held message's limit passed on a quiet session: offered once more (expired)
      retryHeld(e, s, now);
      if (endIfModuleAsked(e, s, now)) return true;
      afterChange(e, s, now, s.state === SessionState.Established ? transmit(e, s, now) : 'ok');
      return true;
    }
    case TimerKind.Idle: {
      const done = s.state === SessionState.Established && caughtUp(s);
      endSession(e, s, done ? 'completed' : 'idleTimeout', now);
      return true;
    }
  }
}
