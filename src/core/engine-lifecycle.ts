import { mapClientIp, nextVariantPort, variantPort } from './client-map';
import type { EngineTransfer } from './engine-config';
import { type EngineState, key, rearm, retireSession, takeSession } from './engine-state';
import { seqAdd } from './seq';
import type { Outcome } from './stats';
import { parkedRequests } from './session/capture';
import { type Session, SessionState } from './session/session';
import { sendAck, sendRst, sendSyn } from './session/transmit';
import type { TcpSegment } from './wire/segment';

/**
 * Creates the session of a new captured connection (from its SYN, or `synth`esized from its
 * first data when the SYN was not captured) and starts it, or queues it behind `prev`, the
 * still-closing replay of an older connection on the same client address and port. Returns
 * undefined at the session cap (the caller counts it).
 */
export function newSession(
  e: EngineState,
  seg: TcpSegment,
  now: number,
  t: EngineTransfer,
  variant: number,
  origKey: number,
  map: Map<number, Session>,
  prev: Session | undefined,
  synth: boolean,
): Session | undefined {
  const st = e.stats;
  const cfg = e.cfg;
  if (st.sessionsActive >= cfg.maxSessions) return undefined; // counted by unreplayed.countEvicted
  const s = takeSession(e);
  s.origClientIp = seg.srcIp;
  s.origClientPort = seg.srcPort;
  s.variant = variant;
  s.captureKey = origKey;
  s.targetIp = t.targetIp;
  s.targetPort = t.targetPort;
  s.synthesized = synth;
  s.isn = synth ? seqAdd(seg.seq, -1) : seg.seq;
  s.capNxt = seqAdd(s.isn, 1);
  if (synth) {
    s.synMss = cfg.mss;
    s.synWscale = cfg.synthWscale;
    s.synTs = seg.hasTs;
    s.synTsVal = seg.hasTs ? seqAdd(seg.tsVal, -1) : 0;
    st.sessionsSynthesized++;
  } else {
    s.synMss = seg.mss !== 0 ? Math.min(seg.mss, cfg.mss) : cfg.mss;
    s.synWscale = seg.wscale;
    s.synSackOk = seg.sackOk;
    s.synTs = seg.hasTs;
    s.synTsVal = seg.tsVal;
  }
  s.lastTsVal = s.synTsVal;
  s.rto = cfg.rtoInitialMs;
  s.lastActivity = now;
  st.sessionsCreated++;
  st.sessionsActive++;
  map.set(origKey, s);
  if (prev !== undefined && prev.state !== SessionState.Closed) {
    // the client reused its address and port while the previous replay is still closing:
    // the new connection waits for it instead of being lost
    st.sessionsQueued++;
    s.clientIp = prev.clientIp;
    s.clientPort = prev.clientPort;
    s.replyKey = prev.replyKey;
    let tail = prev;
    while (tail.successor !== null) tail = tail.successor;
    tail.successor = s;
    if (prev.sndUna === prev.capNxt && prev.capClosed) endSession(e, prev, 'completed', now);
    else if (prev.sndUna === prev.capNxt) endSession(e, prev, 'superseded', now);
    return s;
  }
  const src = cfg.localhostIp !== 0 && seg.srcIp >>> 24 === 127 ? cfg.localhostIp : seg.srcIp;
  s.clientIp = mapClientIp(cfg.clientIps, src);
  let port = variantPort(seg.srcPort, variant, cfg.portOffset);
  let rk = key(s.clientIp, port);
  for (let tries = 0; e.byReply.has(rk) && tries < 65536; tries++) {
    port = nextVariantPort(port);
    rk = key(s.clientIp, port);
  }
  s.clientPort = port;
  s.replyKey = rk;
  startSession(e, s, now);
  return s;
}

/** Registers the client with intercept, then sends the SYN. */
function startSession(e: EngineState, s: Session, now: number): void {
  e.byReply.set(s.replyKey, s);
  e.ctx.out.clientAdded(s.clientIp, s.clientPort, s.targetIp, s.targetPort);
  s.state = SessionState.SynSent;
  if (!e.channelUp) s.handshakeOutage = true;
  s.lastActivity = now;
  sendSyn(e.ctx, s, now);
  s.rtxAt = now + s.rto;
  rearm(e, s);
}

/** After anything changed: ends finished sessions, re-arms the timer. */
export function afterChange(e: EngineState, s: Session, now: number, r: 'ok' | 'giveup' | 'reset'): void {
  if (s.state === SessionState.Closed) return;
  if (r === 'giveup') return endSession(e, s, 'targetTimeout', now);
  if (r === 'reset') return endSession(e, s, 'clientReset', now, true);
  if (s.capClosed && s.sndUna === s.capNxt && s.ooo.length === 0) {
    if (s.targetFin) {
      if (s.ackPending || s.rcvAcked !== s.rcvNxt) sendAck(e.ctx, s); // acknowledge the target's FIN before forgetting
      return endSession(e, s, 'completed', now, true);
    }
    // our FIN is acknowledged and a newer connection waits for this client port
    if (s.successor !== null) return endSession(e, s, 'completed', now, true);
  }
  rearm(e, s);
}

/** Ends a session with exactly one outcome; frees the target side; starts a queued successor. */
export function endSession(e: EngineState, s: Session, reason: Outcome, now: number, closedOnTarget = false): void {
  if (s.state === SessionState.Closed) return;
  const st = e.stats;
  let outcome = reason;
  // the target's replies could not be seen: blame the channel, not the target
  if (reason === 'targetNoHandshake' && (s.handshakeOutage || !e.channelUp)) outcome = 'channelDown';
  else if (
    !e.channelUp &&
    (reason === 'targetTimeout' || reason === 'idleTimeout' || reason === 'unfinished') &&
    s.state !== SessionState.Queued
  )
    outcome = 'channelDown';
  if (s.state === SessionState.Established && !closedOnTarget) {
    // the target accepts a RST only at exactly its rcv_nxt: what it last acknowledged, or,
    // if that ACK was lost, the highest sequence sent
    sendRst(e.ctx, s, s.sndUna);
    if (s.sndMax !== s.sndUna) sendRst(e.ctx, s, s.sndMax);
  }
  const wasStarted = s.state !== SessionState.Queued;
  s.state = SessionState.Closed;
  e.timers.remove(s);
  st.sessionsActive--;
  st.outcomes[outcome]++;
  if (s.ooo.length > 0) {
    // requests parked behind a capture hole that was never filled: captured, and lost
    const parked = parkedRequests(s);
    s.requestsCaptured += parked;
    st.requestsCaptured += parked;
  }
  const lost = s.requestsCaptured - s.requestsReplayed;
  if (lost > 0) st.requestsLost[outcome] += lost;
  if (!s.capClosed && (s.ooo.length > 0 || s.sndUna !== s.capNxt) && reason !== 'superseded') {
    // no request captured yet: the tail's first data is one (the handshake ACK's ack does not advance)
    const lastAck = s.lastAckValid && s.requestsCaptured > 0 ? s.lastAck : -1;
    e.unreplayed.rememberEnded(s.variant, s.captureKey, lastAck, outcome, now);
  }
  s.releaseUnits(e.pool);
  const map = e.byCapture[s.variant];
  if (map !== undefined && map.get(s.captureKey) === s) map.delete(s.captureKey);
  if (wasStarted) {
    if (e.byReply.get(s.replyKey) === s) e.byReply.delete(s.replyKey);
    e.ctx.out.clientRemoved(s.clientIp, s.clientPort, s.targetIp, s.targetPort);
  }
  const next = s.successor;
  s.successor = null;
  if (next !== null && next.state === SessionState.Queued) {
    next.successor = next.successor ?? null;
    startSession(e, next, now);
    if (next.units.length > 0) rearm(e, next);
  }
  // recycled at the next flush(); a session that never started may still be its
  // predecessor's successor, so only started ones (nothing points to them any more)
  if (wasStarted) retireSession(e, s);
}

/**
 * Ends every session: those whose captured data was all acknowledged count as completed,
 * those waiting for a capture hole as captureGap, the rest as unfinished.
 */
export function endAll(e: EngineState, now: number): void {
  for (const map of e.byCapture) {
    for (const s of [...map.values()]) {
      let x: Session | null = s;
      while (x !== null) {
        const nx: Session | null = x.successor;
        const drained = x.sndUna === x.capNxt && x.state === SessionState.Established;
        x.successor = null;
        endSession(e, x, x.ooo.length > 0 ? 'captureGap' : drained ? 'completed' : 'unfinished', now);
        x = nx;
      }
    }
  }
  for (const s of [...e.byReply.values()]) endSession(e, s, 'unfinished', now);
}
