/**
 * The round-trip estimator of one session (RFC 6298): smoothed RTT, its variation and the
 * retransmission timeout, plus the one segment being timed (Karn: never a retransmitted one).
 */
export class RttEstimator {
  /** Smoothed RTT (ms); 0 before the first sample. */
  srtt = 0;
  /** RTT variation (ms). */
  rttvar = 0;
  /** Current retransmission timeout (ms): set to -R when the session starts, doubled on each timeout. */
  rto = 0;
  /** Sequence number being timed (valid while sentAt >= 0): an ACK after it gives a sample. */
  seq = 0;
  /** When the timed segment was sent (ms); -1 when nothing is timed. */
  sentAt = -1;

  /** Back to the initial values. */
  reset(): void {
    this.srtt = 0;
    this.rttvar = 0;
    this.rto = 0;
    this.seq = 0;
    this.sentAt = -1;
  }

  /** Starts timing `seq`, sent at `now`, unless a segment is timed already. */
  time(seq: number, now: number): void {
    if (this.sentAt < 0) {
      this.sentAt = now;
      this.seq = seq;
    }
  }

  /** Stops timing (the timed segment was retransmitted, or its sample was taken). */
  cancel(): void {
    this.sentAt = -1;
  }

  /** One RTT sample `r` (ms); the RTO stays within [minMs, maxMs]. */
  sample(r: number, minMs: number, maxMs: number): void {
    if (this.srtt === 0) {
      this.srtt = r;
      this.rttvar = r / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
    this.rto = Math.min(maxMs, Math.max(minMs, this.srtt + 4 * this.rttvar));
  }

  /** Exponential backoff after a timeout, up to maxMs. */
  backOff(maxMs: number): void {
    this.rto = Math.min(this.rto * 2, maxMs);
  }
}
