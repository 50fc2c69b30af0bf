/**
 * Reads test/fixtures/mysql/mariadb.pcap (a real MariaDB 10.11 exchange on loopback, see its
 * README) into connections: per client port, the client->server and server->client byte
 * streams in capture order (loopback: no loss, no reordering).
 */
import * as path from 'node:path';
import { type Conn, pcapConnections } from '../pcap-conns';

export type { Conn };
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

/** Connections of the capture, in the order they were opened. */
export function connections(): Conn[] {
  return pcapConnections(path.join(FIXTURES, 'mariadb.pcap'), SERVER_PORT);
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
