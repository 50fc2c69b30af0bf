/**
 * Reads a small loopback/Ethernet pcap fixture (little-endian, microsecond) into connections:
 * per client port, the payload segments in capture order with their direction. Shared by the
 * protocol modules' fixture readers (loopback captures: no loss, no reordering).
 */
import * as fs from 'node:fs';

/** One captured connection. */
export interface Conn {
  clientPort: number;
  /** Payload segments in capture order, with their direction. */
  segments: { fromClient: boolean; bytes: Buffer }[];
}

/** Connections of the capture file at `file` whose server listens on `serverPort`, in the order they were opened. */
export function pcapConnections(file: string, serverPort: number): Conn[] {
  const b = fs.readFileSync(file);
  if (b.readUInt32LE(0) !== 0xa1b2c3d4) throw new Error('expected a little-endian microsecond pcap');
  if (b.readUInt32LE(20) !== 1) throw new Error('expected Ethernet');
  const byPort = new Map<number, Conn>();
  for (let off = 24; off + 16 <= b.length;) {
    const incl = b.readUInt32LE(off + 8);
    const ip = b.subarray(off + 16 + 14, off + 16 + incl);
    off += 16 + incl;
    const ihl = ((ip[0] as number) & 15) * 4;
    const total = ip.readUInt16BE(2);
    const t = ip.subarray(ihl);
    const doff = ((t[12] as number) >> 4) * 4;
    const sp = t.readUInt16BE(0);
    const dp = t.readUInt16BE(2);
    const fromClient = dp === serverPort;
    const cport = fromClient ? sp : dp;
    let c = byPort.get(cport);
    if (!c) byPort.set(cport, (c = { clientPort: cport, segments: [] }));
    const pay = ip.subarray(ihl + doff, total);
    if (pay.length > 0) c.segments.push({ fromClient, bytes: Buffer.from(pay) });
  }
  return [...byPort.values()];
}
