/**
 * Hostile capture files: every truncation of the fixtures, random bytes, bit flips in
 * headers, absurd length fields, and files that are not captures at all. The reader must
 * never crash or hang, must deliver every record before the damage, and must say where.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CaptureFileReader } from '../../../src/io/capture-file/reader';
import { TcpcopyError } from '../../../src/core/errors';

const ROOT = resolve(__dirname, '../../../..');
const CAPS = join(ROOT, 'test/fixtures/capture');
const NG = join(ROOT, 'test/fixtures/capture/pcapng-test-generator/output_le');
const dir = mkdtempSync(join(tmpdir(), 'tcr-dmg-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

interface Outcome {
  offs: number[];
  r: CaptureFileReader | null;
  err: TcpcopyError | null;
}

/** Reads `bytes` as a file; open errors are returned, any other exception fails the test. */
async function attempt(bytes: Buffer, chunkBytes = 64): Promise<Outcome> {
  const path = join(dir, 'f.bin');
  writeFileSync(path, bytes);
  let r: CaptureFileReader;
  try {
    r = await CaptureFileReader.open(path, { chunkBytes });
  } catch (e) {
    assert.ok(e instanceof TcpcopyError, `open throws only TcpcopyError, got ${String(e)}`);
    return { offs: [], r: null, err: e };
  }
  const offs: number[] = [];
  const rx = {
    packet(_lt: number, b: Buffer, off: number, cap: number, _o: number, ts: number, _i: number, foff: number): void {
      assert.ok(off >= 0 && off + cap <= b.length, 'view inside the buffer');
      assert.ok(Number.isFinite(ts));
      offs.push(foff);
    },
  };
  let guard = 0;
  while (await r.readBatch(rx, 5)) assert.ok(++guard < 100000, 'reader terminates');
  await r.close();
  return { offs, r, err: null };
}

/** Record (pcap) or block (pcapng) boundaries of a well-formed little-endian file. */
function boundaries(b: Buffer): number[] {
  const out: number[] = [];
  if (b.readUInt32LE(0) === 0x0a0d0d0a) {
    for (let o = 0; o + 8 <= b.length; o += b.readUInt32LE(o + 4)) out.push(o);
  } else {
    for (let o = 24; o + 16 <= b.length; o += 16 + b.readUInt32LE(o + 8)) out.push(o);
  }
  out.push(b.length);
  return out;
}

for (const [label, file] of [
  ['pcap eth-us', join(CAPS, 'eth-us.pcap')],
  ['pcapng test102', join(NG, 'advanced/test102.pcapng')],
] as const) {
  test(`every truncation of ${label}: earlier records delivered, fatal names the offset`, async () => {
    const full = readFileSync(file);
    const all = (await attempt(full)).offs;
    const bounds = boundaries(full);
    const isNg = full.readUInt32LE(0) === 0x0a0d0d0a;
    for (let len = 0; len < full.length; len++) {
      const o = await attempt(full.subarray(0, len), len % 2 ? 64 : 4096);
      if (o.r === null) {
        // only a cut inside the file header may fail to open
        assert.ok(len < (isNg ? 12 : 24), `len ${len}: ${o.err?.message}`);
        assert.ok(['ERR_CAPTURE_FORMAT', 'ERR_CAPTURE_TRUNCATED'].includes(o.err?.code ?? ''), o.err?.code);
        continue;
      }
      const r = o.r;
      const last = Math.max(...bounds.filter((b) => b <= len), isNg ? 0 : 24);
      assert.deepEqual(
        o.offs,
        all.filter((x) => x < last),
        `len ${len}: all complete records delivered`,
      );
      if (bounds.includes(len) || (!isNg && len === 24)) {
        assert.equal(r.fatal, null, `len ${len} ends on a boundary`);
      } else {
        assert.equal(r.fatal?.code, 'ERR_CAPTURE_TRUNCATED', `len ${len}`);
        assert.equal(r.fatal?.details['offset'], last, `len ${len}`);
        assert.match(r.fatal?.message ?? '', new RegExp(`f\\.bin: truncated at byte offset ${last}\\b`));
        assert.deepEqual(
          r.damage.map((d) => d.offset),
          [last],
        );
      }
    }
  });
}

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('random bytes, with and without a valid magic in front, never crash or hang', async () => {
  const rnd = rng(42);
  const pcapHdr = readFileSync(join(CAPS, 'eth-us.pcap')).subarray(0, 24);
  const shb = readFileSync(join(NG, 'basic/test002.pcapng'));
  for (let i = 0; i < 300; i++) {
    const body = Buffer.alloc(Math.floor(rnd() * 3000));
    for (let j = 0; j < body.length; j++) body[j] = Math.floor(rnd() * 256);
    const prefix = i % 3 === 0 ? pcapHdr : i % 3 === 1 ? shb : Buffer.alloc(0);
    await attempt(Buffer.concat([prefix, body]), i % 2 ? 64 : 1024);
  }
});

test('every single-bit flip in the headers of real files is survived', async () => {
  for (const [file, span] of [
    [join(CAPS, 'eth-us.pcap'), 24 + 16 + 40],
    [join(CAPS, 'eth-us-be.pcap'), 24 + 16],
    [join(NG, 'difficult/test202.pcapng'), 160],
  ] as const) {
    const full = readFileSync(file);
    for (let bit = 0; bit < span * 8; bit++) {
      const b = Buffer.from(full);
      b[bit >> 3] = (b[bit >> 3] ?? 0) ^ (1 << (bit & 7));
      const o = await attempt(b, 128);
      if (o.r) assert.ok(o.offs.length <= 40);
    }
  }
});

test('a pcap record length of 0xFFFFFFFF stops with ERR_CAPTURE_CORRUPT, no 4 GB allocation', async () => {
  const full = readFileSync(join(CAPS, 'eth-us.pcap'));
  const bounds = boundaries(full);
  const at = bounds[3]!;
  for (const bad of [0xffffffff, 0x80000000, 262145 + 1]) {
    const b = Buffer.from(full);
    b.writeUInt32LE(bad, at + 8);
    const before = process.memoryUsage().arrayBuffers;
    const o = await attempt(b, 4096);
    assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024);
    assert.deepEqual(o.offs, bounds.slice(0, 3));
    assert.equal(o.r?.fatal?.code, 'ERR_CAPTURE_CORRUPT');
    assert.equal(o.r?.fatal?.details['offset'], at);
    assert.match(o.r?.fatal?.message ?? '', new RegExp(`offset ${at}.*captured length ${bad}`));
  }
});

test('open errors: missing file, directory, empty file, not a capture, truncated header', async () => {
  const expectErr = async (path: string, code: string, re: RegExp): Promise<void> => {
    await assert.rejects(CaptureFileReader.open(path), (e: unknown) => {
      assert.ok(e instanceof TcpcopyError);
      assert.equal(e.code, code);
      assert.match(e.message, re);
      return true;
    });
  };
  await expectErr(join(dir, 'nope.pcap'), 'ERR_CAPTURE_OPEN', /nope\.pcap.*ENOENT/);
  mkdirSync(join(dir, 'adir'));
  await expectErr(join(dir, 'adir'), 'ERR_CAPTURE_OPEN', /adir.*EISDIR/);
  writeFileSync(join(dir, 'empty'), '');
  await expectErr(join(dir, 'empty'), 'ERR_CAPTURE_FORMAT', /empty.*only 0 bytes/);
  writeFileSync(join(dir, 'text.pcap'), 'GET / HTTP/1.1\r\n\r\n');
  await expectErr(join(dir, 'text.pcap'), 'ERR_CAPTURE_FORMAT', /text\.pcap.*magic 47455420/);
  writeFileSync(join(dir, 'short.pcap'), readFileSync(join(CAPS, 'eth-us.pcap')).subarray(0, 10));
  await expectErr(join(dir, 'short.pcap'), 'ERR_CAPTURE_TRUNCATED', /short\.pcap.*header truncated/);
});
