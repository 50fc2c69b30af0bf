/**
 * Packet scripts for the MySQL module tests: a captured connection of the real MariaDB fixture
 * (capture.ts) replayed through ModuleDriver, with the online server's replies as captured and
 * a "target" whose replies are the captured ones changed the way another server's would be:
 * a new scramble in its greeting, other statement ids in its PREPARE_OKs.
 */
import { ModuleDriver } from '../driver';
import { packets, type Conn } from './capture';
import { encodePacket, type MysqlPacket } from '../../../../src/modules/mysql/packet';
import { definition } from '../../../../src/modules/mysql/index';
import type { MysqlSession } from '../../../../src/modules/mysql/module';
import type { ProtocolModule, SessionStart } from '../../../../src/modules/api';
import type { ModuleOptions } from '../../../../src/modules/api';

export const PASSWORDS: Record<string, string> = { u1: 'p1secret', u2: 'p2other' };
export const USERS = ['u1:p1secret', 'u2:p2other'];

/** A module of the definition (as the registry makes it). */
export function mysqlModule(opts: ModuleOptions = { 'mysql-user': USERS }): ProtocolModule<MysqlSession> {
  return definition.createModule(opts) as ProtocolModule<MysqlSession>;
}

export function driver(mod = mysqlModule(), start: Partial<SessionStart> = {}): ModuleDriver<MysqlSession> {
  return new ModuleDriver(mod, start);
}

/** A 20-byte scramble of printable bytes (like a server's), different for each `n`. */
export function scramble(n: number): Buffer {
  const b = Buffer.alloc(20);
  for (let i = 0; i < 20; i++) b[i] = 0x21 + ((n * 31 + i * 7) % 90);
  return b;
}

/** A greeting payload with its scramble replaced (8 bytes after the connection id, 12 after the reserved bytes). */
export function regreet(greeting: Buffer, s: Buffer): Buffer {
  const g = Buffer.from(greeting);
  const o = g.indexOf(0, 1) + 1 + 4;
  s.copy(g, o, 0, 8);
  s.copy(g, o + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10, 8, 20);
  return g;
}

/** True for a PREPARE_OK packet (first answer to a COM_STMT_PREPARE). */
export function isPrepareOk(p: MysqlPacket, prev: MysqlPacket | undefined, prevFromClient: boolean): boolean {
  return prevFromClient && prev?.payload[0] === 0x16 && p.seq === 1 && p.payload[0] === 0x00 && p.payload.length === 12;
}

/** The target's version of the captured server packets: a new scramble, statement ids + `idShift`. */
export function targetPackets(
  c: Conn,
  targetScramble: Buffer,
  idShift = 10,
): (MysqlPacket & { fromClient: boolean })[] {
  const ps = packets(c);
  return ps.map((p, i) => {
    if (p.fromClient) return p;
    if (i === 0) return { ...p, payload: regreet(p.payload, targetScramble) };
    const prev = ps[i - 1];
    if (prev !== undefined && isPrepareOk(p, prev, prev.fromClient)) {
      const b = Buffer.from(p.payload);
      b.writeUInt32LE(b.readUInt32LE(1) + idShift, 1);
      return { ...p, payload: b };
    }
    return p;
  });
}

/** Framed bytes of a packet. */
export function wire(p: MysqlPacket): Buffer {
  return encodePacket(p.seq, p.payload);
}

/**
 * Replays a connection: client packets to the module, server packets to the module as the
 * online server's (as captured) and as the target's (changed, see targetPackets), in capture order.
 */
export function replay(
  d: ModuleDriver<MysqlSession>,
  c: Conn,
  targetScramble: Buffer,
  opts: { online?: boolean; idShift?: number; limit?: number } = {},
): void {
  const ps = packets(c, opts.limit);
  const ts = targetPackets(c, targetScramble, opts.idShift ?? 10);
  ps.forEach((p, i) => {
    if (p.fromClient) d.client(wire(p));
    else {
      if (opts.online !== false) d.online(wire(p));
      d.target(wire(ts[i] as MysqlPacket));
    }
  });
}

/** The packets the module sent, framed again. */
export function sentPackets(d: ModuleDriver<MysqlSession>): MysqlPacket[] {
  const out: MysqlPacket[] = [];
  const b = d.sentBytes();
  for (let o = 0; o + 4 <= b.length;) {
    const n = b.readUIntLE(o, 3);
    out.push({ seq: b[o + 3] as number, payload: b.subarray(o + 4, o + 4 + n) });
    o += 4 + n;
  }
  return out;
}
