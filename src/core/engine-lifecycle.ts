import { addressKey } from './address-key';
import { mapClientIp, nextVariantPort, variantPort } from './client-map';
import type { EngineConfig, EngineTransfer } from './engine-config';
import { type EngineState, retireSession, takeSession } from './engine-state';
import { rearm } from './engine-timers';
import { seqAdd } from './seq';
import type { Outcome } from './stats';
import { parkedRequests } from './session/capture';
import { type Session, SessionState, caughtUp, clientFinished, drained } from './session/session';
import { TimerKind } from './session/timers';
import { rttSample, sendAck, sendRst, sendSyn, transmit } from './session/transmit';
import { MODULE_ERROR, attachModule, detachModule } from './engine-module';
import { IPV6_BASE, IPV6_LOOPBACK } from './wire/ipv6';
import type { TcpSegment } from './wire/segment';

/*
 * Every change of a session's state happens in this file (the table is next to SessionState in
 * session/session.ts): newSession and startSession (-> Queued, SynSent), establish
 * (SynSent -> Established), afterChange (the closing checks) and endSession (-> Closed).
 */

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
  if (st.sessionsActive >= cfg.maxSessions || !e.admitting) return undefined; // counted by unreplayed.countRefused
  const s = takeSession(e);
  s.origClientIp = seg.srcIp;
  s.origClientPort = seg.srcPort;
  s.variant = variant;
  s.captureKey = origKey;
  s.targetIp = t.targetIp;
  s.targetPort = t.targetPort;
  s.serverIp = seg.dstIp;
  s.serverPort = seg.dstPort;
  s.synthesized = synth;
  s.isn = synth ? seqAdd(seg.seq, -1) : seg.seq;
  s.capture.nxt = seqAdd(s.isn, 1);
  if (synth) {
    s.synMss = synMssCap(cfg, t);
    s.synWscale = cfg.synthWscale;
    s.synTs = seg.hasTs;
    s.synTsVal = seg.hasTs ? seqAdd(seg.tsVal, -1) : 0;
    st.sessionsSynthesized++;
  } else {
    const cap = synMssCap(cfg, t);
    s.synMss = seg.mss !== 0 ? Math.min(seg.mss, cap) : cap;
    s.synWscale = seg.wscale;
    s.synSackOk = seg.sackOk;
    s.synTs = seg.hasTs;
    s.synTsVal = seg.tsVal;
  }
  s.capture.lastTsVal = s.synTsVal;
  s.rtt.rto = cfg.rtoInitialMs;
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
    attachModule(e, s, now);
    // a caught-up predecessor ends now: completed if its client had closed, else superseded
    if (caughtUp(prev)) endSession(e, prev, prev.capture.closed ? 'completed' : 'superseded', now);
    return s;
  }
  const src = localhostMapped(cfg, seg.srcIp);
  s.clientIp = mapClientIp(cfg.clientIps, src);
  let port = variantPort(seg.srcPort, variant, cfg.portOffset);
  let rk = addressKey(s.clientIp, port);
  for (let tries = 0; e.byReply.has(rk) && tries < 65536; tries++) {
    port = nextVariantPort(port);
    rk = addressKey(s.clientIp, port);
  }
  s.clientPort = port;
  s.replyKey = rk;
  attachModule(e, s, now);
  startSession(e, s, now);
  return s;
}

/** -H: a loopback client (127.0.0.0/8, ::1) becomes the configured address of its family. */
function localhostMapped(cfg: EngineConfig, ip: number): number {
  if (ip >= IPV6_BASE) return cfg.localhostIp6 !== 0 && ip === IPV6_LOOPBACK ? cfg.localhostIp6 : ip;
  return cfg.localhostIp !== 0 && ip >>> 24 === 127 ? cfg.localhostIp : ip;
}

/** The most MSS a SYN to transfer `t`'s target announces: -D, and for IPv6 at most the MTU less 60 header bytes. */
function synMssCap(cfg: EngineConfig, t: EngineTransfer): number {
  return t.targetIp >= IPV6_BASE ? Math.min(cfg.mss, cfg.mtu - 60) : cfg.mss;
}

/** Queued or new -> SYN-SENT: registers the client with intercept, then sends the SYN. */
function startSession(e: EngineState, s: Session, now: number): void {
  e.byReply.set(s.replyKey, s);
  e.out.clientAdded(s.clientIp, s.clientPort, s.targetIp, s.targetPort, e.wantsPayload, e.payloadMax);
  s.state = SessionState.SynSent;
  if (!e.channelUp) s.handshakeOutage = true;
  s.lastActivity = now;
  sendSyn(e, s, now);
  s.timer[TimerKind.Rtx] = now + s.rtt.rto;
  rearm(e, s);
}

/** SYN-SENT -> ESTABLISHED on the target's SYN-ACK: takes its options, then starts sending captured data. */
export function establish(e: EngineState, s: Session, seg: TcpSegment, now: number): void {
  const cfg = e.cfg;
  s.targetIsn = seg.seq;
  s.reply.nxt = seqAdd(seg.seq, 1);
  s.respBase = s.reply.nxt;
  if (s.mod !== null) s.mod.target.start(s.reply.nxt);
  s.sndWscale = s.synWscale >= 0 && seg.wscale >= 0 ? seg.wscale : -1;
  if (s.sndWscale < 0) s.synWscale = -1;
  s.tsOn = s.synTs && seg.hasTs;
  if (s.tsOn) s.tsRecent = seg.tsVal;
  const mss = Math.min(seg.mss !== 0 ? seg.mss : 536, cfg.mtu - (s.targetIp >= IPV6_BASE ? 60 : 40));
  s.sendMss = Math.max(1, mss - (s.tsOn ? 12 : 0));
  s.sndWnd = seg.window;
  s.sndUna = s.sndNxt = s.sndMax = seqAdd(s.isn, 1);
  s.state = SessionState.Established;
  if (s.rtt.sentAt >= 0) rttSample(e, s, now - s.rtt.sentAt);
  s.rtt.cancel();
  s.timer[TimerKind.Rtx] = Infinity;
  s.retries = 0;
  // the third handshake segment may carry data: when a captured request is ready it completes
  // the handshake itself (one packet fewer per connection); otherwise a bare ACK does
  const before = e.stats.packetsSent;
  const r = transmit(e, s, now);
  if (e.stats.packetsSent === before || s.state !== SessionState.Established) sendAck(e, s);
  afterChange(e, s, now, r);
}

/**
 * After anything changed on a started session: the closing transitions. A transmit that gave
 * up or replayed the client's RST ends it; a session whose client finished ends completed once
 * the target closed too (or a newer connection waits for its port); otherwise its timers are
 * re-armed.
 */
export function afterChange(e: EngineState, s: Session, now: number, r: 'ok' | 'giveup' | 'reset'): void {
  if (s.state === SessionState.Closed) return;
  if (r === 'giveup') return endSession(e, s, 'targetTimeout', now);
  if (r === 'reset') return endSession(e, s, 'clientReset', now, true);
  if (clientFinished(s)) {
    if (s.reply.fin) {
      // acknowledge the target's FIN before forgetting
      if (s.ackPending || s.reply.acked !== s.reply.nxt) sendAck(e, s);
      return endSession(e, s, 'completed', now, true);
    }
    // our FIN is acknowledged and a newer connection waits for this client port
    if (s.successor !== null) return endSession(e, s, 'completed', now, true);
  }
  rearm(e, s);
}

/** Any state -> CLOSED with exactly one outcome: frees the target side, starts a queued successor. */
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
    sendRst(e, s, s.sndUna);
    if (s.sndMax !== s.sndUna) sendRst(e, s, s.sndMax);
  }
  const wasStarted = s.state !== SessionState.Queued;
  s.state = SessionState.Closed;
  e.timers.remove(s);
  st.sessionsActive--;
  st.outcomes[outcome]++;
  if (s.capture.parked.length > 0) {
    // requests parked behind a capture hole that was never filled: captured, and lost
    const parked = parkedRequests(s);
    s.requestsCaptured += parked;
    st.requestsCaptured += parked;
  }
  const lost = s.requestsCaptured - s.requestsReplayed - s.requestsSettled;
  // a module's ending names its reason: the requests are lost with it (`mysql: unknownUser`)
  const modReason = outcome === 'moduleEnded' && s.mod !== null ? (s.mod.ending ?? MODULE_ERROR) : null;
  const ms = st.module;
  if (modReason !== null && ms !== null) {
    ms.ended[modReason] = (ms.ended[modReason] ?? 0) + 1;
    if (lost > 0) ms.lost[modReason] = (ms.lost[modReason] ?? 0) + lost;
  } else if (lost > 0) st.requestsLost[outcome] += lost;
  if (!s.capture.closed && (!drained(s) || modReason !== null) && reason !== 'superseded') {
    // the client was still talking: the rest of its connection is counted, not replayed; with no
    // request captured yet, the tail's first data is one (the handshake ACK's ack does not advance)
    const lastAck = s.capture.lastAckValid && s.requestsCaptured > 0 ? s.capture.lastAck : -1;
    e.unreplayed.rememberEnded(s.variant, s.captureKey, lastAck, outcome, now, modReason);
  }
  detachModule(e, s, now);
  s.releaseUnits(e.pool);
  const map = e.byCapture[s.variant];
  if (map !== undefined && map.get(s.captureKey) === s) map.delete(s.captureKey);
  if (wasStarted) {
    if (e.byReply.get(s.replyKey) === s) e.byReply.delete(s.replyKey);
    e.out.clientRemoved(s.clientIp, s.clientPort, s.targetIp, s.targetPort);
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

/** Ends the session when its module asked to (a verdict or action named a reason, or the module failed). */
export function endIfModuleAsked(e: EngineState, s: Session, now: number): boolean {
  const m = s.mod;
  if (m === null || m.ending === null || s.state === SessionState.Closed) return false;
  endSession(e, s, 'moduleEnded', now);
  return true;
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
        const done = x.state === SessionState.Established && caughtUp(x);
        x.successor = null;
        endSession(e, x, x.capture.parked.length > 0 ? 'captureGap' : done ? 'completed' : 'unfinished', now);
        x = nx;
      }
    }
  }
  for (const s of [...e.byReply.values()]) endSession(e, s, 'unfinished', now);
}
