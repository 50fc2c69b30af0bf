/**
 * CaptureFileReader on real files: the pcapng-test-generator corpus (every block type,
 * several sections and interfaces) and classic pcaps written by tcpdump (see
 * test/fixtures/capture/README.md), read with the default chunk and with tiny chunks so
 * that records span chunk boundaries.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { CaptureFileReader } from '../../../src/io/capture-file/reader';

const ROOT = resolve(__dirname, '../../../..');
const CAPS = join(ROOT, 'test/fixtures/capture');
const NG = join(ROOT, 'test/fixtures/capture/pcapng-test-generator/output_le');

interface Rec {
  lt: number;
  cap: number;
  orig: number;
  ts: number;
  ifi: number;
  foff: number;
  sum: number;
}

async function readAll(
  path: string,
  chunkBytes?: number,
  batch = 1000,
): Promise<{ recs: Rec[]; r: CaptureFileReader }> {
  const r = await CaptureFileReader.open(path, chunkBytes === undefined ? {} : { chunkBytes });
  const recs: Rec[] = [];
  const rx = {
    packet(
      lt: number,
      buf: Buffer,
      off: number,
      cap: number,
      orig: number,
      ts: number,
      ifi: number,
      foff: number,
    ): void {
      let sum = 0;
      for (let i = off; i < off + cap; i++) sum = (sum * 31 + (buf[i] ?? 0)) >>> 0;
      recs.push({ lt, cap, orig, ts, ifi, foff, sum });
    },
  };
  let guard = 0;
  while (await r.readBatch(rx, batch)) assert.ok(++guard < 1e6);
  await r.close();
  return { recs, r };
}

/** [ifIndex, linkType, capLen, origLen, tsMs (null: SPB, no timestamp)] per packet, in order. */
type Exp = [number, number, number, number, number | null];
const T0 = 1340954905298.858; // 1340954905298858 us, the generator's base timestamp
const E: Record<string, Exp[]> = {
  'basic/test001': [
    [0, 1, 314, 314, 0],
    [0, 1, 342, 342, 0],
    [0, 1, 314, 314, 0],
    [0, 1, 342, 342, 0],
  ],
  'basic/test002': [],
  'basic/test003': [],
  'basic/test004': [
    [0, 1, 96, 314, T0],
    [1, 1, 128, 342, T0 + 1],
    [0, 1, 96, 314, T0 + 2],
    [1, 1, 128, 342, T0 + 3],
  ],
  'basic/test005': [
    [0, 1, 96, 314, T0],
    [1, 1, 128, 342, T0 + 1],
    [0, 1, 96, 314, T0 + 2],
    [1, 1, 128, 342, T0 + 3],
  ],
  'basic/test006': [
    [0, 1, 96, 314, T0],
    [1, 0, 168, 168, T0 + 1],
    [0, 1, 96, 342, T0 + 2],
    [0, 1, 96, 314, T0 + 3],
    [0, 1, 96, 342, T0 + 4],
  ],
  'basic/test007': [[0, 1, 96, 314, T0]],
  // if_tsresol = 9 (nanoseconds) while the raw values are the same: 1340954.905298858 s
  'basic/test008': [
    [0, 1, 96, 314, T0 / 1000],
    [1, 1, 128, 342, (T0 + 1) / 1000],
    [0, 1, 96, 314, (T0 + 2) / 1000],
    [1, 1, 128, 342, (T0 + 3) / 1000],
  ],
  'basic/test009': [
    [0, 1, 314, 314, T0],
    [0, 1, 342, 342, T0 + 1],
  ],
  'basic/test010': [
    [0, 1, 314, 314, null],
    [0, 1, 342, 342, null],
    [0, 1, 314, 314, null],
    [0, 1, 342, 342, null],
  ],
  'basic/test011': [
    [0, 1, 314, 314, null],
    [0, 1, 342, 342, T0],
    [0, 1, 314, 314, null],
    [0, 1, 342, 342, T0 + 2],
  ],
  // IDB snaplen 315: the SPB of 342 bytes is cut to 315, the one of 314 is whole
  'basic/test012': [
    [0, 1, 314, 314, null],
    [0, 1, 315, 342, null],
    [0, 1, 314, 314, 0],
    [0, 1, 315, 342, 0],
  ],
  'basic/test013': [],
  'basic/test014': [],
  'basic/test015': [],
  'basic/test016': [
    [0, 1, 314, 314, null],
    [0, 1, 342, 342, T0],
    [0, 1, 314, 314, null],
    [0, 1, 342, 342, T0 + 2],
  ],
  'basic/test017': [],
  'basic/test018': [
    [0, 1, 314, 314, null],
    [0, 1, 342, 342, T0],
    [0, 1, 314, 314, null],
    [0, 1, 342, 342, T0 + 2],
  ],
  'advanced/test100': [
    [0, 1, 314, 314, null],
    [0, 1, 342, 342, T0],
    [0, 1, 314, 314, null],
    [0, 1, 342, 342, T0 + 2],
    [1, 0, 168, 168, T0 + 3],
  ],
  'advanced/test101': [
    [0, 1, 96, 314, T0],
    [2, 1, 128, 342, T0],
    [0, 1, 96, 314, null],
    [1, 0, 168, 168, T0 + 3],
  ],
  'advanced/test102': [
    [0, 1, 96, 314, T0],
    [2, 1, 342, 342, T0],
    [0, 1, 96, 314, null],
    [0, 1, 96, 342, T0 + 2],
    [1, 0, 168, 168, T0 + 3],
  ],
  'difficult/test200': [],
  // three sections: interfaces are numbered across sections (2 = section 1's IDB 0, 4 = section 2's IDB 1)
  'difficult/test201': [
    [0, 1, 96, 314, T0],
    [2, 1, 128, 342, T0],
    [2, 1, 128, 314, null],
    [4, 0, 168, 168, T0 + 3],
  ],
  'difficult/test202': [
    [0, 1, 96, 314, T0],
    [0, 1, 96, 342, T0],
    [1, 0, 168, 168, T0 + 3],
    [2, 1, 128, 314, null],
    [2, 1, 128, 342, T0],
    [2, 1, 128, 314, null],
    [2, 1, 128, 342, T0],
    [4, 0, 168, 168, T0 + 3],
  ],
};

/** Packet blocks the generator's .txt announces (EPB + SPB + OPB). */
function announced(txt: string): number {
  let n = 0;
  for (const m of txt.matchAll(/^\s*(EPB|SPB|OPB):\s*(\d+)/gm)) n += Number(m[2]);
  return n;
}

const ngFiles = existsSync(NG)
  ? ['basic', 'advanced', 'difficult'].flatMap((d) =>
      readdirSync(join(NG, d))
        .filter((f) => f.endsWith('.pcapng'))
        .map((f) => `${d}/${f.slice(0, -7)}`),
    )
  : [];

test(
  'pcapng corpus: every file yields exactly the packets its .txt announces',
  { skip: ngFiles.length === 0 && 'corpus not present' },
  async () => {
    assert.equal(ngFiles.length, Object.keys(E).length, 'table covers every corpus file');
    for (const name of ngFiles) {
      const exp = E[name];
      assert.ok(exp, `expectations for ${name}`);
      const txt = readFileSync(join(NG, `${name}.txt`), 'utf8');
      assert.equal(exp.length, announced(txt), `${name}: table agrees with the .txt`);
      for (const chunk of [undefined, 64, 100, 333]) {
        const { recs, r } = await readAll(join(NG, `${name}.pcapng`), chunk, 2);
        assert.equal(r.format, 'pcapng');
        assert.equal(r.fatal, null, `${name}: ${r.fatal?.message}`);
        assert.deepEqual(r.damage, [], `${name}: nothing rejected`);
        assert.equal(recs.length, exp.length, `${name} (chunk ${chunk}): packet count`);
        assert.equal(r.recordsRead, exp.length);
        assert.equal(r.bytesRead, r.fileSize);
        exp.forEach(([ifi, lt, cap, orig, ts], i) => {
          const g = recs[i]!;
          assert.deepEqual([g.ifi, g.lt, g.cap, g.orig], [ifi, lt, cap, orig], `${name} packet ${i}`);
          assert.equal(r.interfaces[g.ifi]?.linkType, lt);
          if (ts !== null) assert.ok(Math.abs(g.ts - ts) < 1e-3, `${name} packet ${i}: ts ${g.ts} vs ${ts}`);
        });
      }
    }
  },
);

test('pcapng: IDB options (if_name, if_tsresol) and sections are reported', async () => {
  const { r } = await readAll(join(NG, 'basic/test008.pcapng'));
  assert.equal(r.interfaces.length, 2);
  assert.equal(r.interfaces[0]?.name, 'eth-_0 foo');
  assert.equal(r.interfaces[0]?.tsUnitsPerSecond, 1e9);
  const { r: r2 } = await readAll(join(NG, 'difficult/test202.pcapng'));
  assert.deepEqual(
    r2.interfaces.map((i) => [i.section, i.linkType]),
    [
      [0, 1],
      [0, 0],
      [1, 1],
      [2, 1],
      [2, 0],
    ],
  );
});

/** The tcpdump captures: 35 packets each (IPv6 chatter, 3 TCP sessions, UDP, ICMP). */
const PCAPS: Array<[string, number, number, number]> = [
  // file, link type, first ts (ms), last ts (ms) -- as printed by tcpdump -tt
  ['eth-us.pcap', 1, 1795258058407.205, 1795258060158.123],
  ['eth-us-be.pcap', 1, 1795258058407.205, 1795258060158.123],
  ['eth-ns.pcap', 1, 1795258058407.205, 1795258060158.1233],
  ['any-us.pcap', 276, 1795258058407.213, 1795258060158.12],
];

test('classic pcap from tcpdump: both byte orders, both resolutions, cooked link type', async () => {
  const ref = await readAll(join(CAPS, 'eth-us.pcap'));
  for (const [file, lt, first, last] of PCAPS) {
    for (const chunk of [undefined, 64, 200, 1000]) {
      const { recs, r } = await readAll(join(CAPS, file), chunk, 7);
      assert.equal(r.format, 'pcap');
      assert.equal(r.fatal, null);
      assert.deepEqual(r.damage, []);
      assert.equal(recs.length, 35, file);
      assert.equal(r.interfaces.length, 1);
      assert.equal(r.interfaces[0]?.linkType, lt);
      assert.equal(r.interfaces[0]?.snaplen, 262144);
      assert.equal(r.interfaces[0]?.tsUnitsPerSecond, file.includes('-ns') ? 1e9 : 1e6);
      assert.ok(recs.every((x) => x.lt === lt && x.ifi === 0 && x.cap === x.orig));
      assert.ok(Math.abs(recs[0]!.ts - first) < 1e-3, `${file} first ts ${recs[0]!.ts}`);
      assert.ok(Math.abs(recs[34]!.ts - last) < 1e-3, `${file} last ts ${recs[34]!.ts}`);
      assert.equal(recs[0]!.foff, 24);
      assert.equal(r.bytesRead, r.fileSize);
      if (file.startsWith('eth-')) {
        // same packets, same bytes, whatever the byte order or the resolution
        assert.deepEqual(
          recs.map((x) => [x.cap, x.sum, x.foff]),
          ref.recs.map((x) => [x.cap, x.sum, x.foff]),
        );
      }
    }
  }
});

test('records spanning chunk boundaries: every chunk size gives the same records', async () => {
  const path = join(CAPS, 'eth-us.pcap');
  const ref = (await readAll(path)).recs;
  for (let chunk = 64; chunk <= 400; chunk += 17) {
    const { recs } = await readAll(path, chunk, 1 + (chunk % 5));
    assert.deepEqual(recs, ref, `chunk ${chunk}`);
  }
  const ng = join(NG, 'difficult/test202.pcapng');
  const ngRef = (await readAll(ng)).recs;
  for (let chunk = 64; chunk <= 700; chunk += 29)
    assert.deepEqual((await readAll(ng, chunk, 3)).recs, ngRef, `pcapng chunk ${chunk}`);
});

test('readBatch honours maxRecords and keeps returning false after the end', async () => {
  const r = await CaptureFileReader.open(join(CAPS, 'eth-us.pcap'));
  let n = 0;
  const rx = {
    packet(): void {
      n++;
    },
  };
  assert.equal(await r.readBatch(rx, 10), true);
  assert.equal(n, 10);
  assert.equal(r.recordsRead, 10);
  assert.ok(r.bytesRead > 24 && r.bytesRead < r.fileSize);
  while (await r.readBatch(rx, 10)) {
    /* drain */
  }
  assert.equal(n, 35);
  assert.equal(await r.readBatch(rx, 10), false);
  assert.equal(n, 35);
  await r.close();
  await r.close();
});
