import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PcapWriter } from '../../../src/io/capture-file/writer';
import { OfflineFeed } from '../../../src/run/offline-feed';

/** Writes a pcap whose records are 60-byte frames at the given times (ms). */
function makeCapture(times: number[]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcfeed-'));
  const file = path.join(dir, 'x.pcap');
  const w = PcapWriter.create(file, 1);
  const frame = Buffer.alloc(60);
  times.forEach((t, i) => {
    frame.writeUInt32BE(i, 0);
    w.write(1_700_000_000_000 + t, frame, 0, frame.length);
  });
  w.close();
  return file;
}

/** Pumps the feed with a manual clock; returns [wall offset, frame index, rep] per frame. */
async function drain(feed: OfflineFeed, start: number, step: number): Promise<[number, number, number][]> {
  const out: [number, number, number][] = [];
  let now = start;
  await feed.open(now);
  for (let guard = 0; guard < 100_000; guard++) {
    const next = await feed.pump(
      { frame: (_l, buf, off, _len, _o, rep) => out.push([Math.round(now - start), buf.readUInt32BE(off), rep]) },
      now,
      1000,
    );
    if (next === Infinity) break;
    now = Math.max(now + step, next);
  }
  return out;
}

test('frames come out at the recorded pace, -a times faster', async () => {
  const f = makeCapture([0, 100, 250, 1000]);
  assert.deepEqual(await drain(new OfflineFeed({ file: f, accelerate: 1, idleGapMs: 0, repeats: 1 }), 5000, 1), [
    [0, 0, 0],
    [100, 1, 0],
    [250, 2, 0],
    [1000, 3, 0],
  ]);
  assert.deepEqual(await drain(new OfflineFeed({ file: f, accelerate: 10, idleGapMs: 0, repeats: 1 }), 5000, 1), [
    [0, 0, 0],
    [10, 1, 0],
    [25, 2, 0],
    [100, 3, 0],
  ]);
  assert.deepEqual(await drain(new OfflineFeed({ file: f, accelerate: 0, idleGapMs: 0, repeats: 1 }), 5000, 1), [
    [0, 0, 0],
    [0, 1, 0],
    [0, 2, 0],
    [0, 3, 0],
  ]);
});

test('-I skips idle gaps longer than the threshold', async () => {
  const f = makeCapture([0, 100, 60_100, 60_150]);
  assert.deepEqual(await drain(new OfflineFeed({ file: f, accelerate: 1, idleGapMs: 1000, repeats: 1 }), 0, 1), [
    [0, 0, 0],
    [100, 1, 0],
    [100, 2, 0],
    [150, 3, 0],
  ]);
});

test('-T replays the file again with the next repetition index', async () => {
  const f = makeCapture([0, 10]);
  assert.deepEqual(await drain(new OfflineFeed({ file: f, accelerate: 1, idleGapMs: 0, repeats: 3 }), 0, 1), [
    [0, 0, 0],
    [10, 1, 0],
    [10, 0, 1],
    [20, 1, 1],
    [20, 0, 2],
    [30, 1, 2],
  ]);
});

test('a truncated capture: every record before the damage is handed out, then the error names file and offset', async () => {
  const f = makeCapture([0, 1, 2, 3]);
  const size = fs.statSync(f).size;
  fs.truncateSync(f, size - 20);
  const feed = new OfflineFeed({ file: f, accelerate: 0, idleGapMs: 0, repeats: 1 });
  const got = await drain(feed, 0, 1);
  assert.deepEqual(
    got.map((g) => g[1]),
    [0, 1, 2],
  );
  assert.equal(feed.fatalCode, 'ERR_CAPTURE_TRUNCATED');
  assert.ok(feed.fatal?.includes(f), feed.fatal ?? '');
  assert.match(feed.fatal ?? '', /offset \d+|byte \d+/);
});
