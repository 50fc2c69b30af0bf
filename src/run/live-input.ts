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

/** The BPF filter of the online server's replies (server -> client) of the transfers. */
export function replyFilter(cfg: TcpcopyConfig): string {
  return `tcp and (${[...new Set(replyParts(cfg))].join(' or ')})`;
}

function replyParts(cfg: TcpcopyConfig): string[] {
  return cfg.transfers.map((t) =>
    t.onlineIp !== 0 ? `(src host ${ipToString(t.onlineIp)} and src port ${t.onlinePort})` : `src port ${t.onlinePort}`,
  );
}

/**
 * The live captures: `[filter, direction]` per capture of each device. Client packets are
 * captured inbound only (as without a module): tcpcopy's own packets to the target leave
 * through the same devices and match `dst port`, so a capture of both directions would read
 * them back as client packets (and replay them again). The online server's replies, wanted by
 * a module, are outbound on the online host and inbound on a mirror port: their own capture
 * takes both directions. A `-F` filter is used as given, in both directions when replies are
 * wanted (it must then exclude the packets tcpcopy sends).
 */
export function liveCaptures(cfg: TcpcopyConfig, online: boolean): [string, 'in' | 'both'][] {
  if (cfg.filter !== null) return [[cfg.filter, online ? 'both' : 'in']];
  const caps: [string, 'in' | 'both'][] = [[transferFilter(cfg), 'in']];
  if (online) caps.push([replyFilter(cfg), 'both']);
  return caps;
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
