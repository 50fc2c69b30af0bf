/** `tcpcopy inspect` on the tcpdump fixtures, a two-section pcapng, and broken inputs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { runInspect } from '../../../src/cli/inspect';
import { PcapWriter } from '../../../src/io/capture-file/writer';

const CAPS = join(resolve(__dirname, '../../../..'), 'test/fixtures/capture');
const dir = mkdtempSync(join(tmpdir(), 'tcr-insp-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

async function run(argv: string[]): Promise<{ code: number; text: string }> {
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
async function json(argv: string[]): Promise<{ code: number; j: any }> {
  const { code, text } = await run([...argv, '--json']);
  assert.equal(text.trim().split('\n').length, 1, 'one JSON object');
  return { code, j: JSON.parse(text) };
}

/** What the tcpdump capture holds (see traffic.js): 3 sessions to 198.18.213.2:8080. */
const SESSION = {
  server: '198.18.213.2:8080',
  sessions: 3,
  sessionsWithSyn: 2,
  sessionsWithoutSyn: 1,
  requestSegments: 4,
  requestBytes: 9 + 11 + 11 + 10,
  requestSegmentsCut: 0,
  sessionsClosing: 3,
  clientPackets: 16,
  serverPackets: 11,
};

test('classic pcaps: sessions, SYNs, request segments, closings, decode counts, time span', async () => {
  for (const f of ['eth-us.pcap', 'eth-ns.pcap', 'eth-us-be.pcap', 'any-us.pcap']) {
    const { code, j } = await json([join(CAPS, f)]);
    assert.equal(code, 0);
    assert.equal(j.packets, 35);
    assert.equal(j.format, 'pcap');
    assert.deepEqual(j.transfers, [SESSION], f);
    assert.equal(j.decode.ok, 27);
    assert.equal(j.decode.ipv6, 0); // the 6 IPv6 packets are ICMPv6 (MLD, router solicitations)
    assert.equal(j.decode['not-tcp'], 8);
    assert.ok(Math.abs(j.durationMs - (f.startsWith('any') ? 1750.907 : 1750.918)) < 0.01, String(j.durationMs));
    assert.equal(j.interfaces[0].linkType, f.startsWith('any') ? 276 : 1);
    assert.equal(j.fatal, null);
    assert.deepEqual(j.damage, []);
  }
});

test('-x picks the server side; packets outside every transfer are counted', async () => {
  let r = await json([join(CAPS, 'eth-us.pcap'), '-x', '8080-198.18.0.9:80']);
  assert.deepEqual(r.j.transfers, [SESSION]);
  assert.equal(r.j.outsideTransfers, 0);
  r = await json([join(CAPS, 'eth-us.pcap'), '-x', '198.18.213.9:8080-198.18.0.9:80']);
  assert.deepEqual(r.j.transfers, []);
  assert.equal(r.j.outsideTransfers, 27);
  // the client port of session 1 named as the "server": that side becomes the server
  r = await json([join(CAPS, 'eth-us.pcap'), '-x34460-198.18.0.9:80']);
  assert.equal(r.j.transfers.length, 1);
  assert.equal(r.j.transfers[0].server, '198.18.213.1:34460');
  assert.equal(r.j.transfers[0].requestSegments, 1); // the reply "reply to GET /one"
  assert.equal(r.j.outsideTransfers, 27 - 10);
});

test('pcapng with two sections and an unknown link type', async () => {
  const { code, j } = await json([join(CAPS, 'two-sections.pcapng')]);
  assert.equal(code, 0);
  assert.equal(j.format, 'pcapng');
  assert.equal(j.packets, 47);
  assert.deepEqual(
    j.interfaces.map((i: { linkType: number; packets: number; skippedUnknownLink: number }) => [
      i.linkType,
      i.packets,
      i.skippedUnknownLink,
    ]),
    [
      [1, 20, 0],
      [147, 12, 12],
      [1, 15, 0],
    ],
  );
  assert.deepEqual(j.transfers, [SESSION]);
  assert.equal(j.decode['unknown-link'], 12);
  const { text } = await run([join(CAPS, 'two-sections.pcapng')]);
  assert.match(text, /interface 1: link type 147 \(unknown\): 12 packets skipped/);
  assert.match(text, /198\.18\.213\.2:8080\s+3\s+2\s+1\s+4\s/);
  assert.match(text, /packets\s+47 in 1\.751 s/);
});

test('human output is a readable table', async () => {
  const { code, text } = await run([join(CAPS, 'eth-us.pcap')]);
  assert.equal(code, 0);
  assert.match(text, /^file\s+.*eth-us\.pcap \(pcap, 3130 bytes\)$/m);
  assert.match(text, /0\s+1 \(ETHERNET\)\s+262144\s+35/);
  assert.match(text, /decode\s+ok 27, not-tcp 8/);
  assert.match(text, /3 sessions \(2 with SYN, 1 without\), 4 request segments, 3 seen closing/);
  assert.match(text, /damage\s+none/);
});

test('truncated capture: everything before is reported, fatal named, exit 1', async () => {
  const full = readFileSync(join(CAPS, 'eth-us.pcap'));
  const cut = join(dir, 'cut.pcap');
  writeFileSync(cut, full.subarray(0, full.length - 5));
  const { code, j } = await json([cut]);
  assert.equal(code, 1);
  assert.equal(j.packets, 34);
  assert.equal(j.fatal.code, 'ERR_CAPTURE_TRUNCATED');
  assert.equal(j.damage.length, 1);
  assert.equal(j.fatal.offset, j.damage[0].offset);
  const { text } = await run([cut]);
  assert.match(text, new RegExp(`offset ${j.fatal.offset}: record truncated at end of file`));
  assert.match(text, /fatal\s+ERR_CAPTURE_TRUNCATED: .*cut\.pcap: truncated at byte offset/);
});

test('unknown link type in a classic pcap', async () => {
  const p = join(dir, 'lt147.pcap');
  const w = PcapWriter.create(p, 147);
  for (let i = 0; i < 12; i++) w.write(1000 + i, Buffer.alloc(60, i), 0, 60);
  w.close();
  const { code, text } = await run([p]);
  assert.equal(code, 0);
  assert.match(text, /interface 0: link type 147 \(unknown\): 12 packets skipped/);
  assert.match(text, /no TCP sessions/);
});

test('usage and open errors', async () => {
  let r = await run([]);
  assert.equal(r.code, 2);
  assert.match(r.text, /no capture file given; usage: tcpcopy inspect FILE/);
  r = await run([join(CAPS, 'eth-us.pcap'), '-x', '80']);
  assert.equal(r.code, 2);
  assert.match(r.text, /-x 80/);
  r = await run([join(CAPS, 'eth-us.pcap'), '--bogus']);
  assert.equal(r.code, 2);
  assert.match(r.text, /unknown option --bogus/);
  r = await run([join(dir, 'missing.pcap')]);
  assert.equal(r.code, 1);
  assert.match(r.text, /cannot open capture file .*missing\.pcap: ENOENT/);
  const { code, j } = await json([join(CAPS, 'make-fixtures.sh')]);
  assert.equal(code, 1);
  assert.equal(j.error.code, 'ERR_CAPTURE_FORMAT');
  r = await run(['--help']);
  assert.equal(r.code, 0);
});
