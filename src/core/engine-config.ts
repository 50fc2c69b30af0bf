import type { ClientIpSpec } from './client-map';
import type { ProtocolModule } from '../modules/api';

/**
 * One transfer as the engine needs it (parsed from -x by the CLI). Addresses are IPv4 values or
 * IPv6 ids (wire/ipv6.ts); the target's family is the transfer's: with onlineIp 0 it takes the
 * online port's traffic of that family only (no translation between families).
 */
export interface EngineTransfer {
  /** Online server address whose traffic is copied (of the target's family); 0 = any of that family. */
  onlineIp: number;
  /** Online server port. */
  onlinePort: number;
  /** Target address and port the copies go to. */
  targetIp: number;
  targetPort: number;
}

/** What the session engine needs to know; the CLI builds it from the frozen Config. */
export interface EngineConfig {
  /** Transfers (-x). */
  transfers: readonly EngineTransfer[];
  /** Client address rewrite (-c); empty = keep the captured client addresses. */
  clientIps: readonly ClientIpSpec[];
  /**
   * Address that replaces loopback client addresses (127.0.0.0/8) before -c (-H): traffic that
   * reached the online server from the local host cannot come from 127.x at the target; 0 = off.
   */
  localhostIp: number;
  /** The same for IPv6: the address (an IPv6 id, wire/ipv6.ts) that replaces `::1` clients (-H); 0 = off. */
  localhostIp6: number;
  /** Copies of every session (-n, 1..1023); default 1. */
  replicas: number;
  /** This instance's port-space offset for variants (-f, 0..63); default 0. */
  portOffset: number;
  /** Percentage of sessions replayed (-r, 1..100), chosen by a hash of client ip:port; default 100. */
  samplePercent: number;
  /** Ramp the sampling from 1% to samplePercent over `rampMs` from the first packet (-g); 0 = off. */
  rampMs: number;
  /** Replay only sessions whose SYN was captured (-O); default false. */
  onlySyn: boolean;
  /** Do not wait for the target's response before sending the next request (-W); default false. */
  noWait: boolean;
  /**
   * MSS announced in synthesized SYNs (-D), bytes; default 1460. IPv6 sessions announce at most
   * mtu - 60 (IPv6 and TCP headers: 1440 with the default MTU), also for captured SYNs.
   */
  mss: number;
  /** MTU toward the target (-M), bytes; larger segments are split; default 1500. */
  mtu: number;
  /** Idle time after which a session with data pending is ended (-t, given in seconds), ms; default 600000 (600 s, as the original). */
  sessionTimeoutMs: number;
  /** Idle time for a session whose captured data was all replayed (-k keepalive timeout, given in seconds), ms; default 600000. */
  keepaliveTimeoutMs: number;
  /** Initial retransmission timeout (-R default RTT), ms; default 100 (as the original). */
  rtoInitialMs: number;
  /** Upper bound of the retransmission timeout, ms; default 3000. */
  rtoMaxMs: number;
  /** Retransmissions without progress before the session is given up, default 8. */
  maxRetries: number;
  /** SYN attempts before giving up on the handshake, default 6. */
  maxSynTries: number;
  /**
   * When the target has started answering but sent fewer bytes than the online server did,
   * the next request goes after this much reply silence (or 2 * the smoothed RTT, if longer), ms; default 30.
   */
  replyQuietMs: number;
  /**
   * The same silence before the client's FIN or RST (the end of the captured stream) goes, ms;
   * default 500. Longer than replyQuietMs because an early end costs the rest of the answer
   * (nginx stops a download when the client's FIN arrives), while an early request only
   * pipelines; a stall of 80-300 ms in tcpcopy or intercept (a long send, a GC pause, a busy
   * CI machine) is silence as the engine sees it. Not an option of the original.
   */
  closeQuietMs: number;
  /** How long the next request waits for the target's first reply byte before the session is given up, ms; default 30000. */
  replyTimeoutMs: number;
  /** How long a hole in the captured client stream is waited for before the session is ended, ms; default 3000. */
  gapTimeoutMs: number;
  /** Most sessions kept at once (memory bound); new ones are refused (evicted) past it; default 1,000,000. */
  maxSessions: number;
  /**
   * Most captured data one session may hold waiting for the target (`--session-backlog`), bytes:
   * the bytes captured and not yet acknowledged plus UNIT_COST_BYTES per captured segment held
   * (its heap object). Past it the session is ended as 'backlog' (its waiting requests and the
   * rest of the connection counted lost with that reason). Infinity (default) = no bound.
   */
  maxBacklogBytes: number;
  /**
   * Delayed ACK for reply data, ms: the ACK for the end of a reply (a PSH segment) waits this
   * long for the next request to carry it; other reply segments, FINs, duplicates and
   * out-of-order segments are acknowledged at once (so the target's Nagle never waits on us);
   * 0 = acknowledge after every batch of replies. Default 40 (lab, 5k req/s keep-alive: 19% fewer packets sent, lag p99 16 ms).
   */
  delayedAckMs: number;
  /** Window we advertise before scaling (bytes, <= 65535); default 65535. */
  advertisedWindow: number;
  /** Window scale put in synthesized SYNs; default 7. */
  synthWscale: number;
  /**
   * The protocol module every session is replayed through (`--module`, no original flag; the
   * original's `--set-protocol-module`); null (default) = plain TCP replay, no module cost.
   */
  module: ProtocolModule | null;
  /**
   * The reply channel carries IPv6 sessions (channel v2: `--secret-file` on tcpcopy and
   * intercept). False for a 1.x channel (the original intercept's, IPv4-only): IPv6 connections
   * are then not replayed; each is counted once (`sessionsNoIpv6Channel`) and its requests lost
   * as 'noIpv6Channel'. Default true.
   */
  ipv6Channel: boolean;
}

/**
 * Defaults of every engine setting: the one source for those that are also tcpcopy options
 * (TCPCOPY_DEFAULTS in src/config/ reads them; the CLI overrides them from options).
 */
export const ENGINE_DEFAULTS: Readonly<Omit<EngineConfig, 'transfers'>> = Object.freeze({
  clientIps: [],
  localhostIp: 0,
  localhostIp6: 0,
  replicas: 1,
  portOffset: 0,
  samplePercent: 100,
  rampMs: 0,
  onlySyn: false,
  noWait: false,
  mss: 1460,
  mtu: 1500,
  sessionTimeoutMs: 600_000,
  keepaliveTimeoutMs: 600_000,
  rtoInitialMs: 100,
  rtoMaxMs: 3000,
  maxRetries: 8,
  maxSynTries: 6,
  replyQuietMs: 30,
  closeQuietMs: 500,
  replyTimeoutMs: 30_000,
  gapTimeoutMs: 3000,
  maxSessions: 1_000_000,
  maxBacklogBytes: Infinity,
  delayedAckMs: 40,
  advertisedWindow: 65535,
  synthWscale: 7,
  module: null,
  ipv6Channel: true,
});

/** Builds an engine config from transfers and partial overrides. */
export function engineConfig(
  transfers: readonly EngineTransfer[],
  over: Partial<Omit<EngineConfig, 'transfers'>> = {},
): EngineConfig {
  return Object.freeze({ ...ENGINE_DEFAULTS, ...over, transfers });
}
