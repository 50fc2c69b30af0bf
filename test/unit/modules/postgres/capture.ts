/**
 * Reads test/fixtures/postgres/postgres.pcap (a real PostgreSQL 15 exchange on loopback, see
 * its README) into connections: per client port, the payload segments in capture order with
 * their direction (loopback: no loss, no reordering).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The server port of the capture. */
export const SERVER_PORT = 55432;

export const FIXTURES = path.resolve(
  __dirname,
  '..',
  '..',
  '..',
  '..',
  ...(__dirname.includes(`${path.sep}dist${path.sep}`) ? ['..'] : []),
  'test',
  'fixtures',
  'postgres',
);

/** One captured connection. */
export interface Conn {
  clientPort: number;
  segments: { fromClient: boolean; bytes: Buffer }[];
}

/** Connections of a capture file (default postgres.pcap), in the order they were opened. */
export function connections(file = 'postgres.pcap'): Conn[] {
  const b = fs.readFileSync(path.join(FIXTURES, file));
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
    const fromClient = dp === SERVER_PORT;
    const cport = fromClient ? sp : dp;
    let c = byPort.get(cport);
    if (!c) byPort.set(cport, (c = { clientPort: cport, segments: [] }));
    const pay = ip.subarray(ihl + doff, total);
    if (pay.length > 0) c.segments.push({ fromClient, bytes: Buffer.from(pay) });
  }
  return [...byPort.values()];
}

/** The raw byte stream of one direction. */
export function stream(c: Conn, fromClient: boolean): Buffer {
  return Buffer.concat(c.segments.filter((s) => s.fromClient === fromClient).map((s) => s.bytes));
}

/** The client's messages of a stream: untyped ones until the StartupMessage (or a cancel), typed after. */
export function clientMessages(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let o = 0;
  let typed = false;
  while (o < b.length) {
    if (!typed) {
      const n = b.readUInt32BE(o);
      typed = b.readUInt32BE(o + 4) === 196608;
      out.push(b.subarray(o, o + n));
      o += n;
    } else {
      const n = b.readUInt32BE(o + 1) + 1;
      out.push(b.subarray(o, o + n));
      o += n;
    }
  }
  return out;
}

/** The server's messages of a stream (`singles`: how many one-byte negotiation answers come first). */
export function serverMessages(b: Buffer, singles = 0): Buffer[] {
  const out: Buffer[] = [];
  let o = 0;
  for (; o < singles; o++) out.push(b.subarray(o, o + 1));
  while (o < b.length) {
    const n = b.readUInt32BE(o + 1) + 1;
    out.push(b.subarray(o, o + n));
    o += n;
  }
  return out;
}
