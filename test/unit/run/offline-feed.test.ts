import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PcapWriter } from '../../../src/io/capture-file/writer';
import { OfflineFeed } from '../../../src/run/offline-feed';
import { formatStatus } from '../../../src/run/status-line';
import { newEngineStats } from '../../../src/core/stats';

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

/** Writes a pcap whose records are at the given raw (seconds, microseconds) timestamps. */
function makeRawCapture(stamps: [number, number][]): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcfeed-'));
  const file = path.join(dir, 'x.pcap');
  const w = PcapWriter.create(file, 1);
  const frame = Buffer.alloc(60);
  stamps.forEach(([sec, us], i) => {
    frame.writeUInt32BE(i, 0);
    w.writeRaw(sec, us, frame, 0, frame.length);
  });
  w.close();
  return file;
}

test('a corrupt timestamp (0, then 0xffffffff s) is reported and skipped, not waited for (--max-gap)', async () => {
  const f = makeRawCapture([
    [0, 0],
    [0, 100_000],
    [0xffffffff, 0],
    [0xffffffff, 50_000],
    [0, 300_000],
    [0, 400_000],
  ]);
  const gaps: [number, number][] = [];
  const feed = new OfflineFeed({
    file: f,
    accelerate: 1,
    idleGapMs: 0,
    repeats: 1,
    onLongGap: (g, frame) => gaps.push([g, frame]),
  });
  // the default bound (one hour): the jump forward and the jump back are both skipped
  assert.deepEqual(await drain(feed, 1000, 1), [
    [0, 0, 0],
    [100, 1, 0],
    [100, 2, 0],
    [150, 3, 0],
    [150, 4, 0],
    [250, 5, 0],
  ]);
  assert.equal(feed.longGaps, 2);
  assert.deepEqual(gaps, [
    [0xffffffff * 1000 - 100, 3],
    [300 - (0xffffffff * 1000 + 50), 5],
  ]);
});

test('--max-gap bounds which gaps are skipped; 0 waits for every recorded gap', async () => {
  const f = makeCapture([0, 100, 5100, 5200]);
  const bounded = new OfflineFeed({ file: f, accelerate: 1, idleGapMs: 0, repeats: 1, maxGapMs: 4000 });
  assert.deepEqual(await drain(bounded, 0, 1), [
    [0, 0, 0],
    [100, 1, 0],
    [100, 2, 0],
    [200, 3, 0],
  ]);
  assert.equal(bounded.longGaps, 1);
  const off = new OfflineFeed({ file: f, accelerate: 1, idleGapMs: 0, repeats: 1, maxGapMs: 0 });
  assert.deepEqual(await drain(off, 0, 1), [
    [0, 0, 0],
    [100, 1, 0],
    [5100, 2, 0],
    [5200, 3, 0],
  ]);
  assert.equal(off.longGaps, 0);
  // a gap below the bound is waited for (the default bound is one hour)
  const g = makeCapture([0, 1_800_000]);
  const half = new OfflineFeed({ file: g, accelerate: 1, idleGapMs: 0, repeats: 1 });
  assert.deepEqual(await drain(half, 0, 1000), [
    [0, 0, 0],
    [1_800_000, 1, 0],
  ]);
  assert.equal(half.longGaps, 0);
});

test('while a recorded gap is waited for, the feed says how long and the status line shows it', async () => {
  const f = makeCapture([0, 1_800_000]);
  const feed = new OfflineFeed({ file: f, accelerate: 1, idleGapMs: 0, repeats: 1 });
  await feed.open(0);
  const got: number[] = [];
  const sink = { frame: (_l: number, buf: Buffer, off: number) => got.push(buf.readUInt32BE(off)) };
  const next = await feed.pump(sink, 0, 100);
  assert.deepEqual(got, [0]);
  assert.equal(next, 1_800_000);
  assert.equal(feed.progress(), 1, 'the whole file is read (this is what made the status say 100%)');
  assert.equal(feed.waitingMs(60_000), 1_740_000);
  assert.equal(feed.waitingMs(1_800_000), 0);
  const text = formatStatus(newEngineStats(), {
    rate: 0,
    progress: feed.progress(),
    etaS: 0,
    rssMB: 50,
    channelUp: true,
    gapWaitS: feed.waitingMs(60_000) / 1000,
  });
  assert.match(text, /100\.0% ETA 29:00 \| waiting 29:00 for a recorded gap \|/);
  const none = formatStatus(newEngineStats(), { rate: 0, progress: 1, etaS: 0, rssMB: 50, channelUp: true });
  assert.match(none, /100\.0% ETA 0:00 \| sessions/);
  assert.doesNotMatch(none, /waiting/);
  await feed.close();
});

test('large frames are all handed out, in order: a batch ends before its arena is full (none dropped)', async () => {
  // 600 frames of 65,000 bytes (TSO/GRO-merged segments, as tcpdump on a sending host records
  // them): 39 MB, more than one 16 MiB arena; before, the frames beyond it were left out of the
  // batch without a count (258 of 600 came out)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcfeed-'));
  const file = path.join(dir, 'big.pcap');
  const w = PcapWriter.create(file, 1);
  const frame = Buffer.alloc(65_000);
  for (let i = 0; i < 600; i++) {
    frame.writeUInt32BE(i, 0);
    frame.writeUInt32BE(i, frame.length - 4);
    w.write(1_700_000_000_000 + i, frame, 0, frame.length);
  }
  w.close();
  const feed = new OfflineFeed({ file, accelerate: 0, idleGapMs: 0, repeats: 1 });
  await feed.open(0);
  const ids: number[] = [];
  for (let guard = 0; guard < 10_000; guard++) {
    const next = await feed.pump(
      {
        frame: (_l, buf, off, len) => {
          assert.equal(len, 65_000);
          assert.equal(buf.readUInt32BE(off + len - 4), buf.readUInt32BE(off), 'the whole frame, not another one');
          ids.push(buf.readUInt32BE(off));
        },
      },
      0,
      100_000,
    );
    if (next === Infinity) break;
  }
  assert.equal(ids.length, 600);
  assert.deepEqual(
    ids,
    Array.from({ length: 600 }, (_, i) => i),
  );
  assert.equal(feed.frames, 600);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a frame larger than the room left grows the arena and keeps the frames before it', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcfeed-'));
  const file = path.join(dir, 'huge.pcap');
  const w = PcapWriter.create(file, 1, { snaplen: 32 << 20 });
  const small = Buffer.alloc(100);
  for (let i = 0; i < 3; i++) {
    small.writeUInt32BE(i, 0);
    w.write(1_700_000_000_000 + i, small, 0, small.length);
  }
  // 16 MiB + 1: no room in a fresh arena even
  const huge = Buffer.alloc((16 << 20) + 1);
  huge.writeUInt32BE(3, 0);
  w.write(1_700_000_000_010, huge, 0, huge.length);
  small.writeUInt32BE(4, 0);
  w.write(1_700_000_000_020, small, 0, small.length);
  w.close();
  const feed = new OfflineFeed({ file, accelerate: 0, idleGapMs: 0, repeats: 1 });
  await feed.open(0);
  const got: [number, number][] = [];
  for (let guard = 0; guard < 100; guard++) {
    const next = await feed.pump({ frame: (_l, buf, off, len) => got.push([buf.readUInt32BE(off), len]) }, 0, 100);
    if (next === Infinity) break;
  }
  assert.deepEqual(got, [
    [0, 100],
    [1, 100],
    [2, 100],
    [3, (16 << 20) + 1],
    [4, 100],
  ]);
  fs.rmSync(dir, { recursive: true, force: true });
});
