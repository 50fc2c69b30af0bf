/**
 * `tcpcopy inspect` on timestamps outside the range of a JavaScript Date (issue 18 item 1):
 * it must print something meaningful (text and --json), not crash with "Invalid time value".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { runInspect } from '../../../src/cli/inspect';
import { buildPcapng, type IdbModel } from '../../fuzz/capture-build';

const dir = mkdtempSync(join(tmpdir(), 'tcr-insp-ts-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;

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

/** A pcapng with one interface and two EPBs: one at time 0 (+offset) and one at hi:lo. */
function capture(idb: Partial<IdbModel>, hi: number, lo: number): string {
  const file = join(dir, `t${seq++}.pcapng`);
  const data = Uint8Array.from(Buffer.alloc(40, 0));
  writeFileSync(
    file,
    buildPcapng([
      {
        le: true,
        blocks: [
          { kind: 'idb', linkType: 101, snaplen: 0, name: null, tsresol: null, tsoffset: null, ...idb },
          { kind: 'epb', ifId: 0, hi: 0, lo: 0, data, origLen: 40, trailer: new Uint8Array(0) },
          { kind: 'epb', ifId: 0, hi, lo, data, origLen: 40, trailer: new Uint8Array(0) },
        ],
      },
    ]),
  );
  return file;
}

const CASES: { what: string; idb: Partial<IdbModel>; hi: number; lo: number }[] = [
  { what: 'EPB timestamp 0xffffffff:ffffffff at the default resolution', idb: {}, hi: 0xffffffff, lo: 0xffffffff },
  { what: 'if_tsresol 0 (seconds) with a large timestamp', idb: { tsresol: 0 }, hi: 0x10000, lo: 0 },
  { what: 'if_tsresol 0x80 (2^0 per second) with a large timestamp', idb: { tsresol: 0x80 }, hi: 0x10000, lo: 0 },
  { what: 'if_tsresol 0x81 (2^-1 s) with a large timestamp', idb: { tsresol: 0x81 }, hi: 0xffffffff, lo: 0 },
  { what: 'if_tsoffset +2^53 s', idb: { tsoffset: 2n ** 53n }, hi: 0, lo: 1 },
  { what: 'if_tsoffset -2^53 s', idb: { tsoffset: -(2n ** 53n) }, hi: 0, lo: 1 },
  { what: 'if_tsoffset +2^62 s', idb: { tsoffset: 2n ** 62n }, hi: 0, lo: 1 },
  { what: 'if_tsoffset -2^62 s', idb: { tsoffset: -(2n ** 62n) }, hi: 0, lo: 1 },
];

for (const c of CASES) {
  test(`inspect survives ${c.what} (--json and text)`, async () => {
    const file = capture(c.idb, c.hi, c.lo);
    const j = await run([file, '--json']);
    assert.equal(j.code, 0, j.text);
    const rep = JSON.parse(j.text) as { packets: number; start: string; end: string; lastTsMs: number };
    assert.equal(rep.packets, 2);
    const outside = [rep.start, rep.end].filter((s) => !/^[+-]?\d{4,6}-\d\d-\d\dT/.test(s));
    assert.ok(outside.length >= 1, `one of the times is outside the Date range: ${rep.start} .. ${rep.end}`);
    for (const s of outside) assert.match(s, /^out of range \([-+]?[\d.e+]+ s since 1970\)$/);
    const t = await run([file]);
    assert.equal(t.code, 0, t.text);
    assert.match(t.text, /packets {4}2 in .* s \(.*out of range \(.* s since 1970\)/);
  });
}

test('inspect still prints ISO times inside the Date range', async () => {
  const file = capture({}, 0x71afd, 0); // about 2.0e15 us = year 2033
  const rep = JSON.parse((await run([file, '--json'])).text) as { start: string; end: string };
  assert.equal(rep.start, '1970-01-01T00:00:00.000Z');
  assert.match(rep.end, /^20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});
