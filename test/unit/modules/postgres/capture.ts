/**
 * Reads test/fixtures/postgres/postgres.pcap (a real PostgreSQL 15 exchange on loopback, see
 * its README) into connections: per client port, the payload segments in capture order with
 * their direction (loopback: no loss, no reordering).
 */
import * as path from 'node:path';
import { type Conn, pcapConnections } from '../pcap-conns';

export type { Conn };

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

/** Connections of a capture file (default postgres.pcap), in the order they were opened. */
export function connections(file = 'postgres.pcap'): Conn[] {
  return pcapConnections(path.join(FIXTURES, file), SERVER_PORT);
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
