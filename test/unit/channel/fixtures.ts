/** Helpers to read test/fixtures/channel (hex files, the replies pcap, expected values). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodeFrame } from '../../../src/core/wire/decode';
import { newSegment, type TcpSegment } from '../../../src/core/wire/segment';

/** Directory of the channel fixtures (from dist/test/unit/channel or test/unit/channel). */
export const FIXTURES = path.resolve(
  __dirname,
  '..',
  '..',
  '..',
  ...(__dirname.includes(`${path.sep}dist${path.sep}`) ? ['..'] : []),
  'test',
  'fixtures',
  'channel',
);

/** Bytes of a hex fixture (whitespace ignored). */
export function hex(name: string): Buffer {
  return Buffer.from(fs.readFileSync(path.join(FIXTURES, name), 'utf8').replace(/\s+/g, ''), 'hex');
}

/** Values make-fixtures.py recorded for each record. */
export interface ExpectedRecord {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  ipTotalLen: number;
  tcpHdrLen: number;
  payloadLen: number;
  /** Hex of the payload a 192-byte record carries ('' when none: the reply's payload is 0 or over 128 bytes). */
  payload?: string;
}

/** expected.json. */
export function expected(): {
  'frame-1': ExpectedRecord[];
  'frame-16': ExpectedRecord[];
  'frame-payload': ExpectedRecord[];
  'frame-c-edge': ExpectedRecord[];
  pcapIndex: Record<string, number[]>;
} {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8'));
}

/** Frames of a classic pcap file: { linkType, data }. */
export function readPcap(name: string): { linkType: number; frames: Buffer[] } {
  const b = fs.readFileSync(path.join(FIXTURES, name));
  const le = b.readUInt32LE(0) === 0xa1b2c3d4 || b.readUInt32LE(0) === 0xa1b23c4d;
  const u32 = (o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const linkType = u32(20);
  const frames: Buffer[] = [];
  for (let off = 24; off + 16 <= b.length;) {
    const incl = u32(off + 8);
    frames.push(b.subarray(off + 16, off + 16 + incl));
    off += 16 + incl;
  }
  return { linkType, frames };
}

/** The frames of a fixture pcap, each decoded into its own segment (the decode must succeed). */
export function decodedFrames(pcap: { linkType: number; frames: Buffer[] }): TcpSegment[] {
  return pcap.frames.map((f, i) => {
    const s = newSegment();
    const r = decodeFrame(pcap.linkType, f, 0, f.length, s);
    if (r !== 'ok') throw new Error(`frame ${i}: ${r}`);
    return s;
  });
}

/** A decoded segment's payload bytes (a view into its frame). */
export const payloadOf = (s: TcpSegment): Buffer => s.buf.subarray(s.payloadOff, s.payloadOff + s.payloadLen);
