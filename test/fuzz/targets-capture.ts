/**
 * Fuzz targets of the capture-file readers (src/io/capture-file/): classic pcap in every
 * variant and pcapng with every block type, options and timestamp resolutions; round trips
 * from a model, and hostile files (mutated valid files, random bytes behind a magic) that
 * must end in records or a stated reason, the same whatever the read chunk size. `inspect`
 * reads the same hostile files and must always print a report.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { TcpcopyError } from '../../src/core/errors';
import { CaptureFileReader } from '../../src/io/capture-file/reader';
import { runInspect } from '../../src/cli/inspect';
import {
  buildPcap,
  buildPcapng,
  expectedPcap,
  expectedPcapng,
  type BlockModel,
  type PcapModel,
  type SectionModel,
} from './capture-build';
import { mutate, mutationArb, target, type FuzzTarget, type Mutation } from './target';

let dir: string | null = null;
let fileSeq = 0;
/** Writes `bytes` to a fresh temporary file (removed at exit) and returns its path. */
function tempFile(bytes: Buffer): string {
  if (dir === null) {
    const d = mkdtempSync(join(tmpdir(), 'tcfuzz-'));
    dir = d;
    process.on('exit', () => rmSync(d, { recursive: true, force: true }));
  }
  const p = join(dir, `c${fileSeq++ % 4}.cap`);
  writeFileSync(p, bytes);
  return p;
}

/** Everything a read of a capture file produced, comparable with deepEqual. */
interface Outcome {
  openError: string | null;
  records: { lt: number; data: string; orig: number; ts: number; ifi: number; foff: number }[];
  ifaces: unknown[];
  damage: unknown[];
  damageCount: number;
  fatal: string | null;
}

/**
 * Reads `path` to its end with the given chunk size, checking as it goes that every record
 * lies inside the buffer and the file, and that the loop terminates (bounded batches).
 */
async function readAll(path: string, file: Buffer, chunkBytes: number): Promise<Outcome> {
  const size = file.length;
  let r: CaptureFileReader;
  try {
    r = await CaptureFileReader.open(path, { chunkBytes });
  } catch (e) {
    assert.ok(e instanceof TcpcopyError, `open throws only TcpcopyError, got ${String(e)}`);
    assert.match(e.code, /^ERR_CAPTURE_(FORMAT|TRUNCATED|OPEN)$/);
    return { openError: `${e.code}: ${e.message}`, records: [], ifaces: [], damage: [], damageCount: 0, fatal: null };
  }
  const records: Outcome['records'] = [];
  let lastOff = -1;
  const rx = {
    packet(lt: number, b: Buffer, off: number, cap: number, orig: number, ts: number, ifi: number, foff: number): void {
      assert.ok(off >= 0 && cap >= 0 && off + cap <= b.length, `record [${off}, +${cap}) inside the buffer`);
      assert.ok(foff > lastOff && foff < size, `record offsets increase inside the file (${foff})`);
      lastOff = foff;
      assert.ok(!Number.isNaN(ts), 'timestamp is a number');
      assert.ok(ifi >= 0 && ifi < r.interfaces.length, `interface ${ifi} is known`);
      const [at, room] = recordData(r.format, file, foff);
      assert.ok(at >= 0, `a record at ${foff} is a packet record or block`);
      assert.ok(cap <= room, `record at ${foff}: ${cap} captured bytes fit its ${room} bytes of room`);
      assert.ok(b.subarray(off, off + cap).equals(file.subarray(at, at + cap)), `record at ${foff}: its own bytes`);
      records.push({ lt, data: b.toString('hex', off, off + cap), orig, ts, ifi, foff });
    },
  };
  let batches = 0;
  while (await r.readBatch(rx, 7)) assert.ok(++batches <= size + 2, 'reading terminates');
  await r.close();
  // bounded output: at least 16 bytes of file per record, every captured byte from the file
  assert.ok(records.length <= size / 16, `${records.length} records from ${size} bytes`);
  assert.ok(records.reduce((a, x) => a + x.data.length / 2, 0) <= size, 'no more record bytes than the file has');
  assert.ok(r.damageCount <= size / 12 + 1, `${r.damageCount} damaged places in ${size} bytes`);
  return {
    openError: null,
    records,
    ifaces: r.interfaces.map((f) => ({ ...f })),
    damage: r.damage.map((d) => ({ ...d })),
    damageCount: r.damageCount,
    fatal: r.fatal ? `${r.fatal.code}: ${r.fatal.message}` : null,
  };
}

/**
 * [file offset, room in bytes] of the packet data of the record/block at `foff`, read from the
 * file itself (pcap: after the record header, up to the end of the file; pcapng: after the
 * block's fixed fields, up to its trailing length); [-1, 0] when no packet can start there.
 */
function recordData(format: 'pcap' | 'pcapng', file: Buffer, foff: number): [number, number] {
  if (format === 'pcap') {
    const magic = file.readUInt32LE(0);
    const hl = magic === 0xa1b2cd34 || magic === 0x34cdb2a1 ? 24 : 16;
    return foff + hl <= file.length ? [foff + hl, file.length - foff - hl] : [-1, 0];
  }
  if (foff + 12 > file.length) return [-1, 0];
  for (const le of [true, false]) {
    const len = le ? file.readUInt32LE(foff + 4) : file.readUInt32BE(foff + 4);
    if (len < 12 || foff + len > file.length) continue;
    const trail = le ? file.readUInt32LE(foff + len - 4) : file.readUInt32BE(foff + len - 4);
    if (trail !== len) continue;
    const type = le ? file.readUInt32LE(foff) : file.readUInt32BE(foff);
    const hdr = type === 6 || type === 2 ? 28 : type === 3 ? 12 : -1;
    if (hdr < 0 || hdr > len - 4) continue;
    return [foff + hdr, len - 4 - hdr];
  }
  return [-1, 0];
}

/** Timestamps equal up to floating rounding (relative to the size of the terms). */
function tsClose(got: number, want: number, scale: number): boolean {
  return Math.abs(got - want) <= 1e-9 * (Math.abs(scale) + 1);
}

const bytes = (max: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength: max });
const u32 = fc.nat({ max: 0xffffffff });

/** Link types the decoders know, and any other 16-bit value. */
const linkTypeArb = fc.oneof(fc.constantFrom(0, 1, 12, 14, 101, 113, 228, 229, 276), fc.nat({ max: 0xffff }));

export const pcapModelArb: fc.Arbitrary<PcapModel> = fc.record({
  le: fc.boolean(),
  variant: fc.constantFrom('us' as const, 'ns' as const, 'modified' as const),
  snaplen: fc.oneof(fc.constantFrom(0, 64, 65535, 262144), u32),
  linkType: fc.oneof(linkTypeArb, u32),
  records: fc.array(fc.record({ sec: u32, frac: u32, data: bytes(300), origLen: u32 }), { maxLength: 8 }),
});

const tsresolArb = fc.option(fc.oneof(fc.constantFrom(0, 3, 6, 9, 0x80, 0x81, 0x8a, 0x9e), fc.nat({ max: 255 })), {
  nil: null,
});
const tsoffsetArb = fc.option(
  fc.oneof(
    fc.constantFrom(0n, 1n, -1n, 2n ** 53n, -(2n ** 53n), 2n ** 62n, -(2n ** 62n), 2n ** 63n - 1n, -(2n ** 63n)),
    fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  ),
  { nil: null },
);
const nameArb = fc.option(
  fc.string({ maxLength: 24 }).filter((s) => !s.endsWith('\0')),
  { nil: null },
);
const idbArb = fc.record({
  kind: fc.constant('idb' as const),
  linkType: linkTypeArb,
  snaplen: fc.oneof(fc.constantFrom(0, 64, 65535), u32),
  name: nameArb,
  tsresol: tsresolArb,
  tsoffset: tsoffsetArb,
});
const hiArb = fc.oneof(fc.constantFrom(0, 0x5f5e1, 0xffffffff), u32);
/** Skipped block types: NRB, ISB, DSB, custom, and any other that is not SHB/IDB/OPB/SPB/EPB. */
const otherTypeArb = fc.oneof(
  fc.constantFrom(4, 5, 10, 0xbad, 0x40000bad),
  u32.filter((t) => t !== 0x0a0d0d0a && (t < 1 || t > 6 || t === 4 || t === 5)),
);
type RawBlock =
  | BlockModel
  | {
      kind: 'pkt';
      which: 'epb' | 'opb';
      ifRaw: number;
      hi: number;
      lo: number;
      data: Uint8Array;
      origLen: number;
      trailer: Uint8Array;
    };
const rawBlockArb: fc.Arbitrary<RawBlock> = fc.oneof(
  { arbitrary: idbArb, weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('pkt' as const),
      which: fc.constantFrom('epb' as const, 'opb' as const),
      ifRaw: fc.nat(),
      hi: hiArb,
      lo: u32,
      data: bytes(200),
      origLen: u32,
      trailer: bytes(12),
    }),
    weight: 4,
  },
  { arbitrary: fc.record({ kind: fc.constant('spb' as const), data: bytes(200), origLen: u32 }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('other' as const), type: otherTypeArb, body: bytes(40) }), weight: 1 },
);

/** Well-formed pcapng sections: each starts with an interface; packets name existing interfaces. */
export const pcapngModelArb: fc.Arbitrary<SectionModel[]> = fc
  .array(fc.record({ le: fc.boolean(), first: idbArb, raw: fc.array(rawBlockArb, { maxLength: 10 }) }), {
    minLength: 1,
    maxLength: 3,
  })
  .map((secs) =>
    secs.map(({ le, first, raw }) => {
      const blocks: BlockModel[] = [first];
      let nIf = 1;
      for (const b of raw) {
        if (b.kind === 'pkt') {
          const ifId = b.ifRaw % nIf;
          blocks.push({
            kind: b.which,
            ifId,
            hi: b.hi,
            lo: b.lo,
            data: b.data,
            origLen: b.origLen,
            trailer: b.trailer,
          });
        } else {
          if (b.kind === 'idb') nIf++;
          blocks.push(b);
        }
      }
      return { le, blocks };
    }),
  );

const chunkArb = fc.oneof(fc.constantFrom(64, 65, 100, 128), fc.integer({ min: 64, max: 4096 }));

const pcapRoundTrip: FuzzTarget<{ m: PcapModel; chunk: number }> = {
  name: 'pcap-roundtrip',
  says: 'classic pcap (both byte orders, us/ns/modified): build -> read delivers every record exactly',
  arb: fc.record({ m: pcapModelArb, chunk: chunkArb }),
  unitRuns: 60,
  async check({ m, chunk }) {
    const file = buildPcap(m);
    const o = await readAll(tempFile(file), file, chunk);
    assert.equal(o.openError, null);
    assert.equal(o.fatal, null);
    assert.equal(o.damageCount, 0);
    const want = expectedPcap(m);
    assert.equal(o.records.length, want.length);
    want.forEach((w, i) => {
      const g = o.records[i];
      assert.ok(g);
      assert.equal(g.lt, w.linkType);
      assert.equal(g.data, w.data.toString('hex'));
      assert.equal(g.orig, w.origLen);
      assert.ok(tsClose(g.ts, w.tsMs, w.tsMs), `record ${i}: ts ${g.ts} vs ${w.tsMs}`);
      assert.equal(g.ifi, 0);
    });
  },
};

const pcapngRoundTrip: FuzzTarget<{ m: SectionModel[]; chunk: number }> = {
  name: 'pcapng-roundtrip',
  says: 'pcapng (sections of both byte orders, IDB options, EPB/OPB/SPB, skipped blocks): build -> read = model',
  arb: fc.record({ m: pcapngModelArb, chunk: chunkArb }),
  unitRuns: 60,
  async check({ m, chunk }) {
    const file = buildPcapng(m);
    const o = await readAll(tempFile(file), file, chunk);
    assert.equal(o.openError, null);
    assert.equal(o.fatal, null);
    assert.equal(o.damageCount, 0, JSON.stringify(o.damage));
    const want = expectedPcapng(m);
    assert.deepEqual(
      o.ifaces.map((x) => {
        const f = x as Record<string, unknown>;
        return Object.fromEntries(Object.entries(f).filter(([k]) => k !== 'section'));
      }),
      want.ifaces,
    );
    assert.equal(o.records.length, want.records.length);
    want.records.forEach((w, i) => {
      const g = o.records[i];
      assert.ok(g);
      assert.equal(g.lt, w.linkType, `record ${i} link type`);
      assert.equal(g.data, w.data.toString('hex'), `record ${i} data`);
      assert.equal(g.orig, w.origLen);
      assert.equal(g.ifi, w.ifIndex);
      const f = want.ifaces[w.ifIndex];
      const scale = Math.abs(w.tsMs) + Math.abs((f?.tsOffsetSeconds ?? 0) * 1000);
      assert.ok(tsClose(g.ts, w.tsMs, scale), `record ${i}: ts ${g.ts} vs ${w.tsMs}`);
    });
  },
};

/** A hostile capture: a valid file mutated, or random bytes behind a pcap/pcapng magic. */
type HostileCapture =
  | { kind: 'pcap'; m: PcapModel; muts: Mutation[] }
  | { kind: 'pcapng'; m: SectionModel[]; muts: Mutation[] }
  | { kind: 'raw'; head: number; body: Uint8Array };

const MAGICS = ['d4c3b2a1', 'a1b2c3d4', '4d3cb2a1', 'a1b23c4d', '34cdb2a1', 'a1b2cd34', '0a0d0d0a'];

export const hostileCaptureArb: fc.Arbitrary<HostileCapture> = fc.oneof(
  fc.record({
    kind: fc.constant('pcap' as const),
    m: pcapModelArb,
    muts: fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
  }),
  fc.record({
    kind: fc.constant('pcapng' as const),
    m: pcapngModelArb,
    muts: fc.array(mutationArb, { minLength: 1, maxLength: 4 }),
  }),
  fc.record({ kind: fc.constant('raw' as const), head: fc.nat({ max: MAGICS.length - 1 }), body: bytes(400) }),
);

export function hostileBytes(h: HostileCapture): Buffer {
  if (h.kind === 'pcap') return mutate(buildPcap(h.m), h.muts);
  if (h.kind === 'pcapng') return mutate(buildPcapng(h.m), h.muts);
  const magic = Buffer.from(MAGICS[h.head] ?? MAGICS[0] ?? '', 'hex');
  const b = Buffer.concat([magic, Buffer.from(h.body)]);
  // a pcapng SHB wants a byte-order magic at 8: give it one half of the time
  if (h.head === MAGICS.length - 1 && b.length >= 12 && (h.body[0] ?? 0) < 128) b.writeUInt32LE(0x1a2b3c4d, 8);
  return b;
}

const captureHostile: FuzzTarget<{ h: HostileCapture; chunk: number }> = {
  name: 'capture-hostile',
  says: 'hostile pcap/pcapng: never throws, records inside the file, bounded output, same result for any chunk size',
  arb: fc.record({ h: hostileCaptureArb, chunk: chunkArb }),
  unitRuns: 120,
  async check({ h, chunk }) {
    const file = hostileBytes(h);
    const path = tempFile(file);
    const a = await readAll(path, file, 64);
    const b = await readAll(path, file, chunk);
    assert.deepEqual(b, a, `chunk ${chunk} reads as chunk 64`);
    const c = await readAll(path, file, 1 << 20);
    assert.deepEqual(c, a, 'a 1 MiB chunk reads as chunk 64');
  },
};

/** Collects what runInspect writes. */
async function inspect(argv: string[]): Promise<{ code: number; text: string }> {
  let text = '';
  const out = new Writable({
    write(c: Buffer, _e, cb): void {
      text += c.toString();
      cb();
    },
  });
  const code = await runInspect(argv, out);
  return { code, text };
}

const inspectHostile: FuzzTarget<HostileCapture> = {
  name: 'inspect-hostile',
  says: '`tcpcopy inspect` on hostile captures: always a report (one JSON object with --json), exit 0 or 1',
  arb: hostileCaptureArb,
  unitRuns: 40,
  async check(h) {
    const path = tempFile(hostileBytes(h));
    const j = await inspect([path, '--json']);
    assert.ok(j.code === 0 || j.code === 1, `exit ${j.code}`);
    const lines = j.text.trim().split('\n');
    assert.equal(lines.length, 1, 'one JSON line');
    const rep = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
    assert.ok('error' in rep || typeof rep['packets'] === 'number', 'a report or an error');
    const t = await inspect([path]);
    assert.equal(t.code, j.code);
    assert.ok(t.text.length > 0);
  },
};

export const CAPTURE_TARGETS: FuzzTarget[] = [
  target(pcapRoundTrip),
  target(pcapngRoundTrip),
  target(captureHostile),
  target(inspectHostile),
];
