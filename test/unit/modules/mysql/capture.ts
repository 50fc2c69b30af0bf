/**
 * Reads test/fixtures/mysql/mariadb.pcap (a real MariaDB 10.11 exchange on loopback, see its
 * README) into connections: per client port, the client->server and server->client byte
 * streams in capture order (loopback: no loss, no reordering).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PacketFramer, type MysqlPacket } from '../../../../src/modules/mysql/packet';

/** The server port of the capture. */
export const SERVER_PORT = 33306;

const FIXTURES = path.resolve(
  __dirname,
  '..',
  '..',
  '..',
  '..',
  ...(__dirname.includes(`${path.sep}dist${path.sep}`) ? ['..'] : []),
  'test',
  'fixtures',
  'mysql',
);

/** One captured connection. */
export interface Conn {
  clientPort: number;
  /** Payload segments in capture order, with their direction. */
  segments: { fromClient: boolean; bytes: Buffer }[];
}

/** Connections of the capture, in the order they were opened. */
export function connections(): Conn[] {
  const b = fs.readFileSync(path.join(FIXTURES, 'mariadb.pcap'));
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

/** The packets of one connection, in order, each tagged with its direction (stops at compressed traffic: `limit`). */
export function packets(c: Conn, limit = Infinity): (MysqlPacket & { fromClient: boolean })[] {
  const out: (MysqlPacket & { fromClient: boolean })[] = [];
  const fr = { true: new PacketFramer(), false: new PacketFramer() };
  for (const s of c.segments) {
    if (out.length >= limit) break;
    fr[`${s.fromClient}`].feed(s.bytes, (p) => out.push({ ...p, fromClient: s.fromClient }));
  }
  return out.slice(0, limit);
}

/** The raw byte stream of one direction. */
export function stream(c: Conn, fromClient: boolean): Buffer {
  return Buffer.concat(c.segments.filter((s) => s.fromClient === fromClient).map((s) => s.bytes));
}
