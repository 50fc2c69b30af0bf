/**
 * Crafted pcapng files for what the corpus does not cover: big-endian sections,
 * if_tsresol in powers of two, if_tsoffset, OPB, the SPB snaplen rule, custom and unknown
 * blocks, and damaged blocks that can be skipped (resync) versus ones that stop reading.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureFileReader } from '../../../src/io/capture-file/reader';

const dir = mkdtempSync(join(tmpdir(), 'tcr-ng-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;

function u32(v: number, le: boolean): Buffer {
  const b = Buffer.alloc(4);
  if (le) b.writeUInt32LE(v >>> 0);
  else b.writeUInt32BE(v >>> 0);
  return b;
}
function u16(v: number, le: boolean): Buffer {
  const b = Buffer.alloc(2);
  if (le) b.writeUInt16LE(v);
  else b.writeUInt16BE(v);
  return b;
}
function pad(b: Buffer): Buffer {
  return Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);
}
function block(type: number, body: Buffer, le: boolean): Buffer {
  const len = 12 + pad(body).length;
  return Buffer.concat([u32(type, le), u32(len, le), pad(body), u32(len, le)]);
}
function opt(code: number, val: Buffer, le: boolean): Buffer {
  return Buffer.concat([u16(code, le), u16(val.length, le), pad(val)]);
}
const END = (le: boolean): Buffer => opt(0, Buffer.alloc(0), le);
function shb(le: boolean): Buffer {
  return block(0x0a0d0d0a, Buffer.concat([u32(0x1a2b3c4d, le), u16(1, le), u16(0, le), Buffer.alloc(8, 0xff)]), le);
}
function idb(linkType: number, snaplen: number, le: boolean, opts: Buffer[] = []): Buffer {
  return block(
    1,
    Buffer.concat([u16(linkType, le), u16(0, le), u32(snaplen, le), ...opts, ...(opts.length ? [END(le)] : [])]),
    le,
  );
}
function epb(ifId: number, hi: number, lo: number, data: Buffer, le: boolean, orig = data.length): Buffer {
  return block(
    6,
    Buffer.concat([u32(ifId, le), u32(hi, le), u32(lo, le), u32(data.length, le), u32(orig, le), data]),
    le,
  );
}
function opb(ifId: number, hi: number, lo: number, data: Buffer, le: boolean): Buffer {
  return block(
    2,
    Buffer.concat([
      u16(ifId, le),
      u16(0, le),
      u32(hi, le),
      u32(lo, le),
      u32(data.length, le),
      u32(data.length, le),
      data,
    ]),
    le,
  );
}
function spb(orig: number, data: Buffer, le: boolean): Buffer {
  return block(3, Buffer.concat([u32(orig, le), data]), le);
}
const pkt = (n: number, fill: number): Buffer => Buffer.alloc(n, fill);

interface Got {
  lt: number;
  cap: number;
  orig: number;
  ts: number;
  ifi: number;
  foff: number;
  first: number;
}
async function read(bytes: Buffer, chunkBytes = 64): Promise<{ got: Got[]; r: CaptureFileReader }> {
  const path = join(dir, `f${seq++}.pcapng`);
  writeFileSync(path, bytes);
  const r = await CaptureFileReader.open(path, { chunkBytes });
  const got: Got[] = [];
  const rx = {
    packet(lt: number, b: Buffer, off: number, cap: number, orig: number, ts: number, ifi: number, foff: number): void {
      got.push({ lt, cap, orig, ts, ifi, foff, first: cap > 0 ? (b[off] ?? -1) : -1 });
    },
  };
  let guard = 0;
  while (await r.readBatch(rx, 3)) assert.ok(++guard < 10000, 'terminates');
  return { got, r };
}

test('big-endian and little-endian sections, tsresol 2^-10, tsoffset, OPB, custom/unknown blocks', async () => {
  const be = false;
  const le = true;
  const file = Buffer.concat([
    shb(be),
    idb(1, 0, be, [
      opt(2, Buffer.from('bige0'), be),
      opt(9, Buffer.from([0x8a]), be),
      opt(14, Buffer.from([0, 0, 0, 0, 0, 0, 0, 100]), be),
    ]),
    epb(0, 0, 1024 * 5 + 512, pkt(60, 0xaa), be), // 5.5 s + 100 s offset
    block(0x40000bad, pkt(20, 1), be), // custom block
    block(0x12345, pkt(7, 2), be), // unknown block
    opb(0, 0, 2048, pkt(40, 0xbb), be),
    shb(le),
    idb(101, 50, le),
    spb(80, pkt(80, 0xcc), le), // snaplen 50 < 80
    epb(0, 0, 7_000_000, pkt(30, 0xdd), le),
    block(5, pkt(24, 0), le), // ISB
  ]);
  const { got, r } = await read(file);
  assert.equal(r.fatal, null);
  assert.deepEqual(r.damage, []);
  assert.deepEqual(
    r.interfaces.map((i) => [i.linkType, i.name, i.tsUnitsPerSecond, i.tsOffsetSeconds, i.section, i.snaplen]),
    [
      [1, 'bige0', 1024, 100, 0, 0],
      [101, '', 1e6, 0, 1, 50],
    ],
  );
  assert.deepEqual(
    got.map((g) => [g.ifi, g.lt, g.cap, g.orig, g.first]),
    [
      [0, 1, 60, 60, 0xaa],
      [0, 1, 40, 40, 0xbb],
      [1, 101, 50, 80, 0xcc],
      [1, 101, 30, 30, 0xdd],
    ],
  );
  assert.equal(got[0]?.ts, 105500);
  assert.equal(got[1]?.ts, 102000);
  assert.equal(got[2]?.ts, 102000, 'SPB carries no timestamp: the last one seen is used');
  assert.equal(got[3]?.ts, 7000);
});

test('64-bit timestamps use the high word', async () => {
  const le = true;
  const { got } = await read(Buffer.concat([shb(le), idb(1, 0, le), epb(0, 1, 0, pkt(10, 1), le)]));
  assert.equal(got[0]?.ts, 4294967296 / 1000);
});

test('damaged blocks with consistent lengths are skipped and counted; reading goes on', async () => {
  const le = true;
  const good = epb(0, 0, 1000, pkt(20, 0x11), le);
  const unknownIf = epb(7, 0, 1000, pkt(20, 0x22), le);
  const tooLongCap = epb(0, 0, 1000, pkt(20, 0x33), le);
  tooLongCap.writeUInt32LE(5000, 20); // caplen beyond the block
  const spbNoIdb = spb(10, pkt(10, 0x44), le);
  const shortIdb = block(1, pkt(4, 0), le);
  const parts = [shb(le), spbNoIdb, idb(1, 0, le), good, unknownIf, tooLongCap, shortIdb, good];
  const file = Buffer.concat(parts);
  const { got, r } = await read(file);
  assert.equal(r.fatal, null);
  assert.deepEqual(
    got.map((g) => g.first),
    [0x11, 0x11],
  );
  const offs: number[] = [];
  parts.reduce((o, p) => {
    offs.push(o);
    return o + p.length;
  }, 0);
  assert.deepEqual(
    r.damage.map((d) => d.offset),
    [offs[1], offs[4], offs[5], offs[6]],
  );
  assert.match(r.damage[0]!.reason, /simple packet block before any interface/);
  assert.match(r.damage[1]!.reason, /unknown interface 7/);
  assert.match(r.damage[2]!.reason, /captured length 5000 exceeds/);
  assert.match(r.damage[3]!.reason, /interface description block too short/);
  assert.equal(r.damageCount, 4);
});

test('inconsistent block lengths stop reading with ERR_CAPTURE_CORRUPT at the right offset', async () => {
  const le = true;
  const head = Buffer.concat([shb(le), idb(1, 0, le), epb(0, 0, 1, pkt(20, 1), le)]);
  const cases: Array<[string, Buffer, RegExp]> = [
    ['zero length', Buffer.concat([u32(6, le), u32(0, le), pkt(40, 0)]), /impossible length 0/],
    ['length 8', Buffer.concat([u32(6, le), u32(8, le), pkt(40, 0)]), /impossible length 8/],
    ['not a multiple of 4', Buffer.concat([u32(6, le), u32(33, le), pkt(40, 0)]), /impossible length 33/],
    ['0xFFFFFFFF', Buffer.concat([u32(6, le), u32(0xffffffff, le), pkt(40, 0)]), /impossible length 4294967295/],
    ['0xFFFFFFF0', Buffer.concat([u32(6, le), u32(0xfffffff0, le), pkt(40, 0)]), /impossible length/],
    [
      'trailer mismatch',
      (() => {
        const b = epb(0, 0, 1, pkt(20, 1), le);
        b.writeUInt32LE(999, b.length - 4);
        return b;
      })(),
      /trailing length 999/,
    ],
    [
      'bad byte-order magic in a later SHB',
      (() => {
        const b = shb(le);
        b.writeUInt32LE(0x11223344, 8);
        return b;
      })(),
      /byte-order magic/,
    ],
  ];
  for (const [name, tail, re] of cases) {
    const before = process.memoryUsage().arrayBuffers;
    const { got, r } = await read(Buffer.concat([head, tail, epb(0, 0, 1, pkt(20, 1), le)]));
    assert.equal(got.length, 1, `${name}: the record before it is delivered`);
    assert.equal(r.fatal?.code, 'ERR_CAPTURE_CORRUPT', name);
    assert.equal(r.fatal?.details['offset'], head.length, name);
    assert.match(r.fatal?.message ?? '', new RegExp(`offset ${head.length}`));
    assert.match(r.fatal?.message ?? '', /\.pcapng/);
    assert.match(r.fatal?.message ?? '', re);
    assert.ok(process.memoryUsage().arrayBuffers - before < 100 * 1024 * 1024, `${name}: no huge allocation`);
  }
});

test('a record larger than the chunk grows the chunk (and only for that record)', async () => {
  const le = true;
  const big = pkt(300_000, 0x5a);
  const { got, r } = await read(
    Buffer.concat([
      shb(le),
      idb(1, 0, le),
      epb(0, 0, 1, pkt(10, 1), le),
      epb(0, 0, 2, big, le),
      epb(0, 0, 3, pkt(10, 2), le),
    ]),
    4096,
  );
  assert.equal(r.fatal, null);
  assert.deepEqual(
    got.map((g) => g.cap),
    [10, 300_000, 10],
  );
});
