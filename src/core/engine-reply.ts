import { addressKey } from './address-key';
import { afterChange, endIfModuleAsked, endSession, establish } from './engine-lifecycle';
import { targetBytes } from './engine-module';
import { type EngineState, queueAck } from './engine-state';
import { rearm } from './engine-timers';
import { seqAdd, seqAfter, seqBeforeEq, seqDiff } from './seq';
import { recordLag } from './stats';
import { absorbOutOfOrder, noteOutOfOrder } from './session/reassembly';
import { type Session, SessionState, caughtUp } from './session/session';
import { TimerKind } from './session/timers';
import { fastRetransmit, rttSample, sendBare, transmit } from './session/transmit';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, type TcpSegment } from './wire/segment';

/**
 * The payload bytes intercept sent with a reply: `buf[off, off + len)`, valid during the call
 * (the channel's ReplyPayload has this shape). `len` may be less than the reply's payload
 * length (intercept's cap): the rest is delivered to the module as missing.
 */
export interface ReplyBytes {
  buf: Buffer;
  off: number;
  len: number;
}

/**
 * One reply reported by intercept (its IPv4 and TCP headers; the payload length comes from the
 * IP total length), with its payload bytes when intercept sent them. Returns false when no session owns it.
 */
export function onReply(e: EngineState, seg: TcpSegment, now: number, payload: ReplyBytes | null = null): boolean {
  const st = e.stats;
  st.replies++;
  const s = e.byReply.get(addressKey(seg.dstIp, seg.dstPort));
  if (s === undefined || s.state === SessionState.Queued || seg.srcPort !== s.targetPort || seg.srcIp !== s.targetIp) {
    st.repliesNoSession++;
    return false;
  }
  s.lastActivity = now;
  switch (s.state) {
    case SessionState.SynSent:
      replyInSynSent(e, s, seg, now);
      break;
    case SessionState.Established:
      replyInEstablished(e, s, seg, now, payload);
      break;
  }
  return true;
}

/** SYN-SENT: the SYN-ACK establishes the session; a RST for our SYN refuses it; a stale connection is reset. */
function replyInSynSent(e: EngineState, s: Session, seg: TcpSegment, now: number): void {
  const flags = seg.flags;
  const acksSyn = (flags & TCP_ACK) !== 0 && seg.ack === seqAdd(s.isn, 1);
  if ((flags & TCP_RST) !== 0) {
    if (acksSyn) endSession(e, s, 'targetRefused', now);
  } else if ((flags & TCP_SYN) !== 0 && acksSyn) {
    establish(e, s, seg, now);
  } else if ((flags & (TCP_ACK | TCP_SYN)) === TCP_ACK) {
    // an ACK without SYN: the target still holds an older connection on this port (a
    // challenge ACK, possibly even acking our ISN when a capture is replayed twice); reset
    // it with <SEQ=SEG.ACK> (RFC 9293 3.10.7.3) so the next SYN gets through
    sendBare(e, s, seg.ack, TCP_RST);
    e.stats.resetsSent++;
    if ((s.timer[TimerKind.Rtx] as number) > now + 1) {
      s.timer[TimerKind.Rtx] = now + 1;
      rearm(e, s);
    }
  }
}

/**
 * A RST is acceptable only when its sequence number is in the window we advertise, from the next
 * byte expected (RFC 9293 3.10.7.4): the target's own RST always is (it carries its SND.NXT, or
 * the ACK we sent), while one of an older connection on the same client address and port, or a
 * forged one, almost never is and must not end this session.
 */
function resetInWindow(e: EngineState, s: Session, seg: TcpSegment): boolean {
  const shift = s.synWscale >= 0 && s.sndWscale >= 0 ? s.synWscale : 0;
  const d = seqDiff(seg.seq, s.reply.nxt);
  return d >= 0 && d <= e.cfg.advertisedWindow * 2 ** shift;
}

/** ESTABLISHED (and closing): a RST ends the session; otherwise the ACK, then the data and FIN, then what may be sent now. */
function replyInEstablished(
  e: EngineState,
  s: Session,
  seg: TcpSegment,
  now: number,
  payload: ReplyBytes | null,
): void {
  const st = e.stats;
  const flags = seg.flags;
  if ((flags & TCP_RST) !== 0) {
    if (!resetInWindow(e, s, seg)) {
      st.resetsIgnored++;
      return;
    }
    endSession(e, s, caughtUp(s) ? 'completed' : 'targetReset', now, true);
    return;
  }
  if ((flags & TCP_SYN) !== 0) {
    // our handshake ACK was lost: the target repeats its SYN-ACK
    queueAck(e, s);
    return;
  }
  const reply = s.reply;
  if (seg.hasTs && s.tsOn && seqBeforeEq(seg.seq, reply.nxt)) s.tsRecent = seg.tsVal;
  if ((flags & TCP_ACK) !== 0) onAck(e, s, seg, now);
  if (s.state === SessionState.Closed) return;
  const fin = (flags & TCP_FIN) !== 0;
  const len = seg.payloadLen + (fin ? 1 : 0);
  if (len > 0) {
    const end = seqAdd(seg.seq, len);
    const inOrder = seqBeforeEq(seg.seq, reply.nxt) && seqAfter(end, reply.nxt);
    if (inOrder) {
      st.replyBytes += seqDiff(end, reply.nxt) - (fin ? 1 : 0);
      reply.nxt = end;
      s.lastReplyAt = now;
      if (fin) reply.fin = true;
      if (reply.ranges.length > 0) st.replyBytes += absorbOutOfOrder(reply);
      if (s.lagFrom >= 0 && seg.payloadLen > 0) {
        recordLag(st, now - s.lagFrom);
        s.lagFrom = -1;
      }
    } else if (seqAfter(seg.seq, reply.nxt)) {
      noteOutOfOrder(reply, seg.seq, end, fin);
    }
    // Only the end of a reply (PSH) waits for a request to carry its ACK: the target has
    // nothing more to send until that request, so no Nagle stall can follow. Segments in the
    // middle of a reply, FINs, duplicates and segments beyond a hole (the target is
    // retransmitting) are acknowledged at once.
    ackReplyData(e, s, now, (flags & (TCP_FIN | TCP_PSH)) !== TCP_PSH || !inOrder);
    if (s.mod !== null) {
      // the module's view: this reply's bytes in sequence order, up to what the engine now holds
      const dataEnd = reply.fin ? seqAdd(reply.nxt, -1) : reply.nxt;
      const carried = payload !== null ? payload.len : 0;
      targetBytes(
        e,
        s,
        seg.ack,
        seg.seq,
        payload?.buf ?? null,
        payload?.off ?? 0,
        carried,
        seg.payloadLen,
        dataEnd,
        now,
      );
      if (endIfModuleAsked(e, s, now)) return;
    }
  }
  afterChange(e, s, now, transmit(e, s, now));
}

/** The ACK field of a reply: window update, acknowledged requests, RTT sample, duplicate ACKs. */
function onAck(e: EngineState, s: Session, seg: TcpSegment, now: number): void {
  const ack = seg.ack;
  const oldWnd = s.sndWnd;
  s.sndWnd = seg.window << (s.sndWscale > 0 ? s.sndWscale : 0);
  if (seqAfter(ack, s.sndMax)) return; // acknowledges what we never sent
  if (seqAfter(ack, s.sndUna)) {
    if (s.rtt.sentAt >= 0 && seqAfter(ack, s.rtt.seq)) {
      rttSample(e, s, now - s.rtt.sentAt);
      s.rtt.cancel();
    }
    s.sndUna = ack;
    if (seqAfter(s.sndUna, s.sndNxt)) s.sndNxt = s.sndUna;
    s.retries = 0;
    s.dupAcks = 0;
    s.timer[TimerKind.Rtx] = s.sndUna === s.sndMax ? Infinity : now + s.rtt.rto;
    const rs = s.requestSeqs;
    while (rs.length > 0 && seqAfter(ack, rs[0] as number)) {
      rs.shift();
      s.requestsReplayed++;
      e.stats.requestsReplayed++;
    }
    s.dropAcked(e.pool);
  } else if (
    ack === s.sndUna &&
    seg.payloadLen === 0 &&
    (seg.flags & TCP_FIN) === 0 &&
    s.sndMax !== s.sndUna &&
    s.sndWnd === oldWnd
  ) {
    if (++s.dupAcks === 3) fastRetransmit(e, s, now);
  }
}

/**
 * Reply data arrived: acknowledge it now (two full segments unacknowledged, a FIN, a hole,
 * delayed ACKs off) or within delayedAckMs, unless a request carries the ACK first.
 */
function ackReplyData(e: EngineState, s: Session, now: number, urgent: boolean): void {
  const d = e.cfg.delayedAckMs;
  if (d <= 0 || urgent || seqDiff(s.reply.nxt, s.reply.acked) >= 2 * Math.max(536, s.sendMss)) {
    queueAck(e, s);
  } else if (s.timer[TimerKind.DelAck] === Infinity) {
    s.timer[TimerKind.DelAck] = now + d;
  }
}
