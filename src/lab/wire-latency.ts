/**
 * Server-side request latency measured from a packet capture taken on the client's link
 * (tcpdump headers only, e.g. `-s 128 port 80`): per request, the time from the request's
 * first data packet (client -> server, payload > 0) to the first data packet of the response
 * (server -> client, payload > 0) on the same connection. The capture's kernel timestamps
 * leave out the load generator's own scheduling delays, which on a small shared box pollute
 * the tail of the latencies it measures itself.
 *
 * The matching is a pure state machine (WireLatencyMatcher, fed decoded segments and their
 * timestamps); wireLatencies() is the file edge that feeds it from CaptureFileReader.
 *
 * Matching rule, per connection (client ip:port <-> server ip:serverPort):
 * - a client data packet carrying new sequence space (seq+len beyond everything already seen
 *   from the client, i.e. not a pure retransmission) while no request is outstanding starts a
 *   request at its timestamp; further client data while one is outstanding (the other
 *   segments of a multi-segment request) start nothing;
 * - the first server data packet carrying new sequence space while a request is outstanding
 *   ends it: latency = its timestamp - the request's start; server data while nothing is
 *   outstanding (the rest of a response) and retransmitted server data are ignored;
 * - pipelined requests (a second request sent before the first response arrives) are folded
 *   into the outstanding one: the pair counts as one request, timed from the first request to
 *   the first response byte, and the second response's data is ignored;
 * - SYN, FIN, RST and pure ACKs (payload 0) never start or end a request. A client SYN with a
 *   new initial sequence number on a known address pair starts a new connection (port reuse);
 *   a request the old connection left outstanding then counts as unmatched;
 * - requests still outstanding at the end of the capture count as unmatched.
 *
 * Timestamp precision: the reader delivers fractional milliseconds since the epoch as a double
 * (about 0.25 us resolution at today's dates). Latencies are rounded to the capture's
 * timestamp unit when it is 1 us or coarser (classic pcap: exact microseconds); nanosecond
 * captures keep the reader's precision.
 */
import { CaptureFileReader } from '../io/capture-file/reader';
import type { CaptureRecordReceiver } from '../io/capture-file/types';
import { decodeFrame } from '../core/wire/decode';
import { newSegment, TCP_ACK, TCP_FIN, TCP_SYN, type TcpSegment } from '../core/wire/segment';
import { seqAdd, seqAfter } from '../core/seq';
import { percentile } from './percentile';

/** What wireLatencies() found in a capture. */
export interface WireLatencyResult {
  /** One latency per matched request, microseconds, sorted ascending. */
  latenciesUs: Float64Array;
  /** Requests started (matched + unmatched; pipelined requests folded into one). */
  requests: number;
  /** Requests that got a response: latenciesUs.length. */
  matched: number;
  /** Requests without a response data packet by the end of the capture (or of their connection). */
  unmatched: number;
  /** Connections seen (client ip:port <-> server ip:port; a new SYN on a reused pair counts again). */
  connections: number;
  /** Packet records read from the file (all of them, TCP or not). */
  frames: number;
  /** Damaged or skipped places in the file, including a truncated end (reading stops there). */
  damaged: number;
}

/** Options of wireLatencies() and WireLatencyMatcher. */
export interface WireLatencyOptions {
  /** TCP port of the server whose latency is measured (80 for the online nginx). */
  serverPort: number;
}

/** Per-connection state of the matcher. */
interface ConnState {
  /** Initial sequence number of the client's SYN, -1 when no SYN was seen. */
  clientIsn: number;
  /** Sequence number after the client's highest byte seen, -1 when nothing seen yet. */
  clientNext: number;
  /** Same for the server. */
  serverNext: number;
  /** A request is waiting for its first response data packet. */
  outstanding: boolean;
  /** Timestamp (ms since epoch, fractional) of the outstanding request's first packet. */
  startMs: number;
  /** Timestamp units per second of the interface the request was captured on. */
  startUnits: number;
}

/** Sequence number after the segment [seq, seq+len) plus the SYN and FIN it carries. */
function segEnd(seg: TcpSegment): number {
  let n = seg.payloadLen;
  if ((seg.flags & TCP_SYN) !== 0) n++;
  if ((seg.flags & TCP_FIN) !== 0) n++;
  return seqAdd(seg.seq, n);
}

/**
 * Advances `next` (-1 = unknown) to cover a segment ending at `end`; returns the new value
 * and whether the segment carried sequence space not seen before.
 */
function advance(next: number, end: number): [number, boolean] {
  if (next < 0 || seqAfter(end, next)) return [end, true];
  return [next, false];
}

/**
 * The matching state machine (see the module comment). Feed decoded segments in capture
 * order with segment(); read the outcome with result(). Pure: no I/O, no clock.
 */
export class WireLatencyMatcher {
  private readonly conns = new Map<string, ConnState>();
  private readonly lat: number[] = [];
  private requests = 0;
  private unmatchedClosed = 0;
  private connections = 0;

  /** `opts.serverPort`: the measured server's TCP port. */
  constructor(private readonly opts: WireLatencyOptions) {}

  /**
   * One decoded IPv4+TCP segment captured at `tsMs` (ms since epoch, fractional) on an
   * interface with `unitsPerSecond` timestamp units (1e6 for classic pcap). Segments that
   * neither come from nor go to the server port are ignored.
   */
  segment(seg: TcpSegment, tsMs: number, unitsPerSecond: number): void {
    const port = this.opts.serverPort;
    const toServer = seg.dstPort === port;
    const fromServer = seg.srcPort === port;
    if (toServer === fromServer) return; // unrelated, or both ports equal: ambiguous
    const key = toServer ? `${seg.srcIp}:${seg.srcPort}>${seg.dstIp}` : `${seg.dstIp}:${seg.dstPort}>${seg.srcIp}`;
    let c = this.conns.get(key);
    const syn = (seg.flags & TCP_SYN) !== 0;
    if (toServer && syn && (seg.flags & TCP_ACK) === 0 && c !== undefined && c.clientIsn !== seg.seq) {
      // the address pair is reused by a new connection
      if (c.outstanding) this.unmatchedClosed++;
      c = undefined;
    }
    if (c === undefined) {
      c = { clientIsn: -1, clientNext: -1, serverNext: -1, outstanding: false, startMs: 0, startUnits: 1e6 };
      this.conns.set(key, c);
      this.connections++;
    }
    const end = segEnd(seg);
    if (toServer) {
      if (syn && c.clientIsn < 0) c.clientIsn = seg.seq;
      const [next, fresh] = advance(c.clientNext, end);
      c.clientNext = next;
      if (seg.payloadLen > 0 && fresh && !c.outstanding) {
        c.outstanding = true;
        c.startMs = tsMs;
        c.startUnits = unitsPerSecond;
        this.requests++;
      }
      return;
    }
    const [next, fresh] = advance(c.serverNext, end);
    c.serverNext = next;
    if (seg.payloadLen > 0 && fresh && c.outstanding) {
      c.outstanding = false;
      this.lat.push(roundToUnit((tsMs - c.startMs) * 1000, Math.max(c.startUnits, unitsPerSecond)));
    }
  }

  /** The outcome so far; requests still outstanding count as unmatched. */
  result(): Omit<WireLatencyResult, 'frames' | 'damaged'> {
    let open = 0;
    for (const c of this.conns.values()) if (c.outstanding) open++;
    const latenciesUs = Float64Array.from(this.lat).sort();
    return {
      latenciesUs,
      requests: this.requests,
      matched: latenciesUs.length,
      unmatched: this.unmatchedClosed + open,
      connections: this.connections,
    };
  }
}

/**
 * Rounds a latency in microseconds to the timestamp unit (1e6/unitsPerSecond us) when that
 * unit is 1 us or coarser, so the reader's double rounding does not show; never negative
 * (out-of-order records on a multi-queue tap count as 0).
 */
function roundToUnit(us: number, unitsPerSecond: number): number {
  if (!(us > 0)) return 0;
  if (unitsPerSecond > 0 && unitsPerSecond <= 1e6) {
    const step = 1e6 / unitsPerSecond;
    return Math.round(us / step) * step;
  }
  return us;
}

/** Records per readBatch call. */
const BATCH = 4096;

/**
 * Reads the pcap/pcapng capture `file` and measures the server's request latencies (see the
 * module comment for the matching rule). Non-TCP, IPv6 and undecodable frames are skipped.
 * Throws TcpcopyError (ERR_CAPTURE_OPEN / ERR_CAPTURE_FORMAT / ERR_CAPTURE_TRUNCATED in the
 * header) when the file cannot be read as a capture; damage later in the file (a truncated
 * last record when tcpdump was killed) stops reading there and is counted in `damaged`.
 */
export async function wireLatencies(file: string, opts: WireLatencyOptions): Promise<WireLatencyResult> {
  const reader = await CaptureFileReader.open(file);
  const matcher = new WireLatencyMatcher(opts);
  const seg = newSegment();
  let frames = 0;
  const rx: CaptureRecordReceiver = {
    packet(linkType, buf, off, capLen, _origLen, tsMs, ifIndex) {
      frames++;
      if (decodeFrame(linkType, buf, off, capLen, seg) !== 'ok') return;
      const units = reader.interfaces[ifIndex]?.tsUnitsPerSecond ?? 1e6;
      matcher.segment(seg, tsMs, units);
    },
  };
  try {
    while (await reader.readBatch(rx, BATCH)) {
      /* the receiver does the work */
    }
  } finally {
    await reader.close();
  }
  return { ...matcher.result(), frames, damaged: reader.damageCount };
}

/** Nearest-rank percentile of latencies (µs, ascending); see percentile.ts. */
export const percentileUs: (sorted: Float64Array, p: number) => number = percentile;
