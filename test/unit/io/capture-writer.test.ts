/** PcapWriter: round trip through CaptureFileReader and tcpdump-compatible output. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PcapWriter } from '../../../src/io/capture-file/writer';
import { CaptureFileReader } from '../../../src/io/capture-file/reader';

const dir = mkdtempSync(join(tmpdir(), 'tcr-wr-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

async function readBack(
  path: string,
): Promise<{ recs: Array<{ ts: number; data: Buffer; orig: number; lt: number }>; r: CaptureFileReader }> {
  const r = await CaptureFileReader.open(path, { chunkBytes: 256 });
  const recs: Array<{ ts: number; data: Buffer; orig: number; lt: number }> = [];
  const rx = {
    packet(lt: number, b: Buffer, off: number, cap: number, orig: number, ts: number): void {
      recs.push({ ts, data: Buffer.from(b.subarray(off, off + cap)), orig, lt });
    },
  };
  while (await r.readBatch(rx, 100)) {
    /* drain */
  }
  return { recs, r };
}

for (const nanos of [false, true]) {
  test(`round trip (${nanos ? 'ns' : 'us'}): bytes, lengths, timestamps, link type, buffer wrap`, async () => {
    const path = join(dir, `rt-${nanos}.pcap`);
    const w = PcapWriter.create(path, 101, { nanos, snaplen: 65535, bufferBytes: 4096 });
    const src = Buffer.alloc(70000);
    for (let i = 0; i < src.length; i++) src[i] = (i * 7) & 255;
    const sent: Array<{ ts: number; data: Buffer; orig: number }> = [];
    for (let i = 0; i < 500; i++) {
      const len = i === 250 ? 65535 : (i * 37) % 1600;
      const ts = 1700000000000 + i * 1.5 + (nanos ? 0.000123 : 0.001);
      const orig = i % 3 === 0 ? len + 10 : len;
      w.write(ts, src, i, len, orig);
      sent.push({ ts, data: src.subarray(i, i + len), orig });
    }
    w.writeRaw(1700000001, nanos ? 999999999 : 999999, src, 0, 4);
    w.close();
    w.close();
    assert.equal(w.records, 501);
    const { recs, r } = await readBack(path);
    assert.equal(r.fatal, null);
    assert.equal(r.interfaces[0]?.linkType, 101);
    assert.equal(r.interfaces[0]?.snaplen, 65535);
    assert.equal(r.interfaces[0]?.tsUnitsPerSecond, nanos ? 1e9 : 1e6);
    assert.equal(recs.length, 501);
    sent.forEach((s, i) => {
      const g = recs[i]!;
      assert.equal(g.lt, 101);
      assert.equal(g.orig, s.orig);
      assert.ok(g.data.equals(s.data), `record ${i} bytes`);
      assert.ok(Math.abs(g.ts - s.ts) < (nanos ? 1e-5 : 1e-3), `record ${i}: ${g.ts} vs ${s.ts}`);
    });
    assert.ok(Math.abs(recs[500]!.ts - (1700000001999 + (nanos ? 0.999999 : 0.999))) < 1e-4);
    assert.equal(statSync(path).size, r.fileSize);
  });
}

test('timestamp rounding carries into the seconds', async () => {
  const path = join(dir, 'carry.pcap');
  const w = PcapWriter.create(path, 1);
  w.write(1999.9999999, Buffer.alloc(14), 0, 14);
  w.close();
  const { recs } = await readBack(path);
  assert.equal(recs[0]?.ts, 2000);
});

test('create on an impossible path throws ERR_CAPTURE_OPEN', () => {
  assert.throws(() => PcapWriter.create(join(dir, 'no/such/dir/x.pcap'), 1), { code: 'ERR_CAPTURE_OPEN' });
});
