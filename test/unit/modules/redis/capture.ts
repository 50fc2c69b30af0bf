/**
 * Reads test/fixtures/redis/redis.pcap (real redis-server 7.0 exchanges on loopback, see its
 * README) into connections: "production" on port 56379, "target" (other passwords) on 56380.
 */
import * as path from 'node:path';
import { type Conn, pcapConnections } from '../pcap-conns';

export type { Conn };

export const PROD_PORT = 56379;
export const TARGET_PORT = 56380;

const FIXTURES = path.resolve(
  __dirname,
  '..',
  '..',
  '..',
  '..',
  ...(__dirname.includes(`${path.sep}dist${path.sep}`) ? ['..'] : []),
  'test',
  'fixtures',
  'redis',
);

/** Connections to `port` (production by default), in the order they were opened. */
export function connections(port = PROD_PORT): Conn[] {
  return pcapConnections(path.join(FIXTURES, 'redis.pcap'), port).filter((c) => c.segments.some((s) => s.fromClient));
}

/** The raw byte stream of one direction. */
export function stream(c: Conn, fromClient: boolean): Buffer {
  return Buffer.concat(c.segments.filter((s) => s.fromClient === fromClient).map((s) => s.bytes));
}

/** The payload segments of one direction, as captured. */
export function segments(c: Conn, fromClient: boolean): Buffer[] {
  return c.segments.filter((s) => s.fromClient === fromClient).map((s) => s.bytes);
}
