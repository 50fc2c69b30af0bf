import { ipToString } from '../core/wire/segment';
import { TCPCOPY_DEFAULTS, type TcpcopyConfig } from '../config/tcpcopy-config';

/** The live-capture settings derived from the configuration. */

/**
 * The BPF filter live capture uses when -F is not given: client->server packets of the
 * transfers; with `online` (a module that wantsOnlineReplies) also the online server's replies
 * (server->client) of the copied ports.
 */
export function transferFilter(cfg: TcpcopyConfig, online = false): string {
  const parts = cfg.transfers.map((t) =>
    t.onlineIp !== 0 ? `(dst host ${ipToString(t.onlineIp)} and dst port ${t.onlinePort})` : `dst port ${t.onlinePort}`,
  );
  if (online) parts.push(...replyParts(cfg));
  return `tcp and (${[...new Set(parts)].join(' or ')})`;
}

function replyParts(cfg: TcpcopyConfig): string[] {
  return cfg.transfers.map((t) =>
    t.onlineIp !== 0 ? `(src host ${ipToString(t.onlineIp)} and src port ${t.onlinePort})` : `src port ${t.onlinePort}`,
  );
}

/**
 * The live captures: `[filter, direction]` per device. Client packets alone are captured
 * inbound (as without a module). With a module that wants the online server's replies (outbound
 * on the online host, inbound on a mirror port) one capture takes both directions with both
 * filters: one capture, so that a reply is never read before the command it answers, or a
 * SYN-ACK before its SYN. It also reads back tcpcopy's own packets to the target when they
 * leave through a captured device (they match `dst port` of a transfer without an online
 * address): the engine ignores packets to a target address (EngineStats.clientToTarget).
 * A `-F` filter is used as given.
 */
export function liveCaptures(cfg: TcpcopyConfig, online: boolean): [string, 'in' | 'both'][] {
  return [[cfg.filter ?? transferFilter(cfg, online), online ? 'both' : 'in']];
}

/**
 * Ring geometry for live capture. The kernel retires a ring block when it is full or when the
 * block timeout expires with packets in it, so at moderate packet rates every block holds only
 * one timeout's worth of packets and the ring buffers blockCount x timeout of time. With the
 * ring's defaults (256 KiB blocks, 1 ms) a 16 MiB ring covered only 64 ms, and a replay paused
 * by GC or a busy CPU for longer lost whole bursts of packets (kernel drops). Here: the smallest
 * block that holds one snaplen packet (more blocks) and a 10 ms timeout (a replay does not need
 * lower capture latency): 16 MiB at the default snaplen cover about 1.3 s. The timeout is also
 * the wake-up rate of tcpcopy at moderate loads, and a wake-up costs 30-50 µs of CPU on a VM:
 * `--capture-delay` trades replay lag for CPU (measured at 2000 keep-alive requests/s: 5 ms
 * 32 µs per request, 10 ms 29, 20 ms 24, 40 ms 21.5).
 */
export function liveRingGeometry(
  snaplen: number,
  blockTimeoutMs = LIVE_RING_BLOCK_TIMEOUT_MS,
): { blockKB: number; blockTimeoutMs: number } {
  let kb = 4;
  while (kb * 1024 < snaplen + 128) kb *= 2;
  return { blockKB: kb, blockTimeoutMs };
}

/** Block retire timeout of the live capture ring, ms (see liveRingGeometry). */
export const LIVE_RING_BLOCK_TIMEOUT_MS = TCPCOPY_DEFAULTS.captureDelayMs;
