import { afterChange, endSession } from './engine-lifecycle';
import { TimerKind } from './session/timers';
import { type EngineState, key, queueAck } from './engine-state';
import { rearm } from './engine-timers';
import { seqAdd, seqAfter, seqBeforeEq, seqDiff } from './seq';
import { recordLag } from './stats';
import { absorbOutOfOrder, noteOutOfOrder } from './session/reassembly';
import { type Session, SessionState } from './session/session';
import { fastRetransmit, rttSample, sendAck, transmit } from './session/transmit';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, type TcpSegment } from './wire/segment';

/**
 * One reply reported by intercept (its IPv4 and TCP headers; the payload length comes from the
 * IP total length). Returns false when no session owns it.
 */
export function onReply(e: EngineState, seg: TcpSegment, now: number): boolean {
  const st = e.stats;
  st.replies++;
  const s = e.byReply.get(key(seg.dstIp, seg.dstPort));
  if (s === undefined || s.state === SessionState.Queued || seg.srcPort !== s.targetPort || seg.srcIp !== s.targetIp) {
    st.repliesNoSession++;
    return false;
  }
  s.lastActivity = now;
  const flags = seg.flags;
  if (s.state === SessionState.SynSent) {
    if ((flags & TCP_RST) !== 0) {
      if ((flags & TCP_ACK) !== 0 && seg.ack === seqAdd(s.isn, 1)) endSession(e, s, 'targetRefused', now);
      return true;
    }
    if ((flags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK) && seg.ack === seqAdd(s.isn, 1)) {
      established(e, s, seg, now);
    } else if ((flags & (TCP_ACK | TCP_SYN)) === TCP_ACK) {
      // an ACK without SYN: the target still holds an older connection on this port (a
      // challenge ACK, possibly even acking our ISN when a capture is replayed twice); reset
      // it with <SEQ=SEG.ACK> (RFC 9293 3.10.7.3) so the next SYN gets through
      e.ctx.emit(s, seg.ack, TCP_RST, null, 0, 0, 0);
      e.stats.resetsSent++;
      if ((s.timer[TimerKind.Rtx] as number) > now + 1) {
        s.timer[TimerKind.Rtx] = now + 1;
        rearm(e, s);
      }
    }
    return true;
  }
  if ((flags & TCP_RST) !== 0) {
    const done = s.sndUna === s.capNxt;
    endSession(e, s, done ? 'completed' : 'targetReset', now, true);
    return true;
  }
  if ((flags & TCP_SYN) !== 0) {
    // our handshake ACK was lost: the target repeats its SYN-ACK
    queueAck(e, s);
    return true;
  }
  if (seg.hasTs && s.tsOn && seqBeforeEq(seg.seq, s.rcvNxt)) s.tsRecent = seg.tsVal;
  if ((flags & TCP_ACK) !== 0) onAck(e, s, seg, now);
  if (s.state === SessionState.Closed) return true;
  const len = seg.payloadLen + ((flags & TCP_FIN) !== 0 ? 1 : 0);
  if (len > 0) {
    const end = seqAdd(seg.seq, len);
    const inOrder = seqBeforeEq(seg.seq, s.rcvNxt) && seqAfter(end, s.rcvNxt);
    if (inOrder) {
      const fresh = seqDiff(end, s.rcvNxt);
      st.replyBytes += fresh - ((flags & TCP_FIN) !== 0 ? 1 : 0);
      s.rcvNxt = end;
      s.lastReplyAt = now;
      if ((flags & TCP_FIN) !== 0) s.targetFin = true;
      if (s.rcvOoo.length > 0) st.replyBytes += absorbOutOfOrder(s);
      if (s.lagFrom >= 0 && seg.payloadLen > 0) {
        recordLag(st, now - s.lagFrom);
        s.lagFrom = -1;
      }
    } else if (seqAfter(seg.seq, s.rcvNxt)) {
      noteOutOfOrder(s, seg.seq, end, (flags & TCP_FIN) !== 0);
    }
    // duplicates and segments beyond a hole are acknowledged at once (the target is retransmitting)
    // Only the end of a reply (PSH) waits for a request to carry its ACK: the target has
    // nothing more to send until that request, so no Nagle stall can follow. Segments in the
    // middle of a reply, FINs, duplicates and segments beyond a hole are acknowledged at once.
    ackReplyData(e, s, now, (flags & (TCP_FIN | TCP_PSH)) !== TCP_PSH || !inOrder);
  }
  afterChange(e, s, now, transmit(e.ctx, s, now));
  return true;
}

/** The target's SYN-ACK: the session is established and starts sending captured data. */
function established(e: EngineState, s: Session, seg: TcpSegment, now: number): void {
  const cfg = e.cfg;
  s.targetIsn = seg.seq;
  s.rcvNxt = seqAdd(seg.seq, 1);
  s.respBase = s.rcvNxt;
  s.sndWscale = s.synWscale >= 0 && seg.wscale >= 0 ? seg.wscale : -1;
  if (s.sndWscale < 0) s.synWscale = -1;
  s.tsOn = s.synTs && seg.hasTs;
  if (s.tsOn) s.tsRecent = seg.tsVal;
  const mss = Math.min(seg.mss !== 0 ? seg.mss : 536, cfg.mtu - 40);
  s.sendMss = Math.max(1, mss - (s.tsOn ? 12 : 0));
  s.sndWnd = seg.window;
  s.sndUna = s.sndNxt = s.sndMax = seqAdd(s.isn, 1);
  s.state = SessionState.Established;
  if (s.rttSentAt >= 0) rttSample(e.ctx, s, now - s.rttSentAt);
  s.rttSentAt = -1;
  s.timer[TimerKind.Rtx] = Infinity;
  s.retries = 0;
  // the third handshake segment may carry data: when a captured request is ready it completes
  // the handshake itself (one packet fewer per connection); otherwise a bare ACK does
  const before = e.stats.packetsSent;
  const r = transmit(e.ctx, s, now);
  if (e.stats.packetsSent === before || s.state !== SessionState.Established) sendAck(e.ctx, s);
  afterChange(e, s, now, r);
}

/** The ACK field of a reply: window update, acknowledged requests, RTT sample, duplicate ACKs. */
function onAck(e: EngineState, s: Session, seg: TcpSegment, now: number): void {
  const ack = seg.ack;
  const oldWnd = s.sndWnd;
  s.sndWnd = seg.window << (s.sndWscale > 0 ? s.sndWscale : 0);
  if (seqAfter(ack, s.sndMax)) return; // acknowledges what we never sent
  if (seqAfter(ack, s.sndUna)) {
    if (s.rttSentAt >= 0 && seqAfter(ack, s.rttSeq)) {
      rttSample(e.ctx, s, now - s.rttSentAt);
      s.rttSentAt = -1;
    }
    s.sndUna = ack;
    if (seqAfter(s.sndUna, s.sndNxt)) s.sndNxt = s.sndUna;
    s.retries = 0;
    s.dupAcks = 0;
    s.timer[TimerKind.Rtx] = s.sndUna === s.sndMax ? Infinity : now + s.rto;
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
    if (++s.dupAcks === 3) fastRetransmit(e.ctx, s, now);
  }
}

/**
 * Reply data arrived: acknowledge it now (two full segments unacknowledged, a FIN, a hole,
 * delayed ACKs off) or within delayedAckMs, unless a request carries the ACK first.
 */
function ackReplyData(e: EngineState, s: Session, now: number, urgent: boolean): void {
  const d = e.cfg.delayedAckMs;
  if (d <= 0 || urgent || seqDiff(s.rcvNxt, s.rcvAcked) >= 2 * Math.max(536, s.sendMss)) {
    queueAck(e, s);
  } else if (s.timer[TimerKind.DelAck] === Infinity) {
    s.timer[TimerKind.DelAck] = now + d;
  }
}
