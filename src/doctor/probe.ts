/**
 * The doctor's end-to-end probe: register a probe client with intercept (CLIENT_ADD), send a
 * synthetic SYN from that client address to the target through the raw socket, and wait for
 * the target's SYN-ACK to come back over the channel. Then a RST to the target (so it does
 * not keep a half-open connection) and CLIENT_DEL.
 */
import { randomInt } from 'node:crypto';
import { emitIpTcp, newTcpRepr } from '../core/wire/build';
import { parseIpTcp } from '../core/wire/decode';
import { newSegment, TCP_ACK, TCP_RST, TCP_SYN } from '../core/wire/segment';
import { ChannelClient } from '../io/channel-client';
import type { PacketSender } from '../io/types';
import type { ProbeOutcome } from './checks';

/** What the probe needs. */
export interface ProbeOptions {
  /** Probe client address (IPv4 value or IPv6 id, of the target's family): one of the replay's client addresses. */
  clientIp: number;
  /** Target address and port (from -x). */
  targetIp: number;
  targetPort: number;
  /** How long to wait for the SYN-ACK, ms; default 2000. */
  waitMs?: number;
}

/** Matches replies of one probe 4-tuple; fed from the channel's onRecord. */
export class ProbeWatcher {
  /** The first matching reply: 'synack' or 'rst'; null while none. */
  reply: 'synack' | 'rst' | null = null;
  private readonly seg = newSegment();
  private wake: (() => void) | null = null;

  constructor(
    private readonly clientIp: number,
    private readonly clientPort: number,
    private readonly targetIp: number,
    private readonly targetPort: number,
    private readonly isn: number,
  ) {}

  /** Channel record callback. */
  readonly onRecord = (buf: Buffer, off: number, len: number): void => {
    const s = this.seg;
    if (this.reply !== null || parseIpTcp(buf, off, len, s, true) !== 'ok') return;
    if (
      s.srcIp !== this.targetIp ||
      s.srcPort !== this.targetPort ||
      s.dstIp !== this.clientIp ||
      s.dstPort !== this.clientPort
    )
      return;
    if ((s.flags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK) && s.ack === (this.isn + 1) >>> 0)
      this.reply = 'synack';
    else if ((s.flags & TCP_RST) !== 0) this.reply = 'rst';
    else return;
    this.wake?.();
  };

  /** Resolves when a reply matched or after `ms`. */
  wait(ms: number): Promise<void> {
    if (this.reply !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = null;
        resolve();
      };
    });
  }
}

/** Builds the probe SYN (or the cleanup RST) as an IPv4 or IPv6 packet (the target's family) in `out`; returns its length. */
export function buildProbePacket(
  out: Buffer,
  o: { clientIp: number; clientPort: number; targetIp: number; targetPort: number; seq: number; rst: boolean },
): number {
  const r = newTcpRepr();
  r.srcIp = o.clientIp;
  r.dstIp = o.targetIp;
  r.srcPort = o.clientPort;
  r.dstPort = o.targetPort;
  r.seq = o.seq >>> 0;
  r.ipId = randomInt(0, 65536);
  const v6 = o.targetIp >= 0x100000000;
  if (o.rst) {
    r.flags = TCP_RST;
  } else {
    r.flags = TCP_SYN;
    r.window = 65535;
    r.mss = v6 ? 1440 : 1460;
    r.wscale = 7;
    r.sackOk = true;
  }
  return emitIpTcp(r, null, 0, 0, out, 0);
}

/**
 * Runs one probe over an already connected channel and sender; returns what came back.
 * The channel's onRecord must deliver to `watcher.onRecord` (see createProbe).
 */
export async function runProbe(
  channel: ChannelClient,
  sender: PacketSender,
  watcher: ProbeWatcher,
  p: { clientIp: number; clientPort: number; targetIp: number; targetPort: number; isn: number; waitMs: number },
): Promise<ProbeOutcome> {
  const out = Buffer.alloc(128);
  channel.addClient(p.clientIp, p.clientPort, p.targetIp, p.targetPort);
  channel.flush();
  await new Promise((r) => setTimeout(r, 20)); // let CLIENT_ADD reach intercept before the SYN-ACK can
  const t0 = Date.now();
  sender.send(out, 0, buildProbePacket(out, { ...p, seq: p.isn, rst: false }));
  sender.flush();
  await watcher.wait(p.waitMs);
  const ms = Date.now() - t0;
  sender.send(out, 0, buildProbePacket(out, { ...p, seq: p.isn + 1, rst: true }));
  sender.flush();
  channel.delClient(p.clientIp, p.clientPort, p.targetIp, p.targetPort);
  channel.flush();
  return {
    clientIp: p.clientIp,
    clientPort: p.clientPort,
    targetIp: p.targetIp,
    targetPort: p.targetPort,
    reply: watcher.reply ?? 'none',
    ms,
  };
}

/** A fresh probe identity: random high client port and ISN. */
export function probeIdentity(): { clientPort: number; isn: number } {
  return { clientPort: randomInt(40000, 60000), isn: randomInt(0, 2 ** 32) >>> 0 };
}
