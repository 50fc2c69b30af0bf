/**
 * Ethernet-frame output for `-o device` with `@mac` transfers: each IPv4 packet is wrapped in a
 * 14-byte Ethernet header (destination MAC per sender or per call) and sent on an AF_PACKET
 * socket, batched with sendmmsg like RawSender.
 */
import { TcpcopyError } from '../core/errors';
import { BatchSender, type BatchOptions } from './raw-sender';

/** Options of a FrameSender. */
export interface FrameSenderOptions extends BatchOptions {
  /** Output device (must have an Ethernet header). Mirrors -o. */
  device: string;
  /** Source MAC "aa:bb:cc:dd:ee:ff"; default: the device's own address. */
  srcMac?: string;
  /** Destination MAC used by send(): the `@mac` of the -x transfer. */
  dstMac: string;
}

/** Parses "aa:bb:cc:dd:ee:ff" (or '-' separated); null when malformed. */
export function parseMac(text: string): Buffer | null {
  const m =
    /^([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})[:-]([0-9a-f]{2})$/i.exec(text);
  if (m === null) return null;
  return Buffer.from(m.slice(1, 7).map((h) => parseInt(h, 16)));
}

function macOrThrow(text: string, what: string): Buffer {
  const mac = parseMac(text);
  if (mac === null)
    throw new TcpcopyError(
      'ERR_BAD_MAC',
      `${what} ${JSON.stringify(text)} is not a MAC address like 00:11:22:33:44:55`,
      { mac: text },
    );
  return mac;
}

/** Sends IPv4 packets as Ethernet frames on one device. */
export class FrameSender extends BatchSender {
  /** Source MAC written into every frame. */
  readonly srcMac: Buffer;
  /** Destination MAC used by send(). */
  readonly dstMac: Buffer;
  private lastMacText = '';
  private lastMac: Buffer = Buffer.alloc(6);

  /** Opens the AF_PACKET socket now. Throws ERR_NO_DEVICE, ERR_BAD_MAC, ERR_NO_RAW_PERMISSION. */
  constructor(opts: FrameSenderOptions) {
    const dst = macOrThrow(opts.dstMac, 'destination MAC');
    const src0 = opts.srcMac === undefined ? undefined : macOrThrow(opts.srcMac, 'source MAC');
    super(1, opts.device, opts, `sending Ethernet frames on ${opts.device} (-o)`);
    const info = this.native.deviceInfo(opts.device);
    if (info === null) {
      this.close();
      throw new TcpcopyError(
        'ERR_NO_DEVICE',
        `output device (-o) ${JSON.stringify(opts.device)} does not exist (see \`ip link\`)`,
        { device: opts.device },
      );
    }
    if (info.hatype !== 1) {
      this.close();
      throw new TcpcopyError(
        'ERR_BAD_DEVICE',
        `output device (-o) ${opts.device} is not an Ethernet device (ARPHRD ${info.hatype}); drop the @mac part to send raw IP`,
        { device: opts.device },
      );
    }
    this.srcMac = src0 ?? info.mac;
    this.dstMac = dst;
  }

  /** Queues one IPv4 packet as a frame to the sender's dstMac. */
  override send(buf: Buffer, off: number, len: number): void {
    this.frame(this.dstMac, 0, buf, off, len);
  }

  /**
   * Queues one IPv4 packet as a frame to `dstMac`: 6 bytes, or a string (the parse of the last
   * string is cached, so a repeated string costs no allocation).
   */
  sendTo(dstMac: Uint8Array | string, buf: Buffer, off: number, len: number): void {
    if (typeof dstMac === 'string') {
      if (dstMac !== this.lastMacText) {
        this.lastMac = macOrThrow(dstMac, 'destination MAC');
        this.lastMacText = dstMac;
      }
      this.frame(this.lastMac, 0, buf, off, len);
    } else {
      this.frame(dstMac, 0, buf, off, len);
    }
  }

  private frame(dst: Uint8Array, dstOff: number, buf: Buffer, off: number, len: number): void {
    const at = this.reserve(len + 14);
    const a = this.arena;
    for (let i = 0; i < 6; i++) {
      a[at + i] = dst[dstOff + i] ?? 0;
      a[at + 6 + i] = this.srcMac[i] ?? 0;
    }
    // ethertype by the packet's IP version: 0x86dd IPv6, else 0x0800 IPv4
    const v6 = len > 0 && (buf[off] as number) >>> 4 === 6;
    a[at + 12] = v6 ? 0x86 : 0x08;
    a[at + 13] = v6 ? 0xdd : 0x00;
    buf.copy(a, at + 14, off, off + len);
  }
}
