import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FrameDecoder, FrameEncoder } from '../../../src/channel/frame';
import { normaliseRecordIp, recordPayloadLen, recordPayloadOff, writeRecord } from '../../../src/channel/record';
import type { RecordBytes } from '../../../src/channel/constants';
import { decodeFrame, parseIpv4Tcp } from '../../../src/core/wire/decode';
import { ipToString, newSegment } from '../../../src/core/wire/segment';
import { expected, hex, readPcap, type ExpectedRecord } from './fixtures';

const pcap = readPcap('replies.pcap');
const exp = expected();

function encode(name: 'frame-1' | 'frame-16' | 'frame-payload', rb: RecordBytes): Buffer {
  const enc = new FrameEncoder(rb);
  const seg = newSegment();
  for (const i of exp.pcapIndex[name] as number[]) {
    const f = pcap.frames[i] as Buffer;
    assert.equal(decodeFrame(pcap.linkType, f, 0, f.length, seg), 'ok');
    const at = enc.reserve();
    writeRecord(seg, enc.buffer, at, rb);
  }
  const out = enc.take();
  assert.ok(out);
  return out;
}

test('frames built from the captured replies equal the fixture bytes', () => {
  assert.deepEqual(encode('frame-1', 64), hex('frame-1.hex'));
  assert.deepEqual(encode('frame-16', 64), hex('frame-16.hex'));
  assert.deepEqual(encode('frame-payload', 192), hex('frame-payload.hex'));
});

function check(recs: Buffer[], want: ExpectedRecord[], rb: RecordBytes): void {
  assert.equal(recs.length, want.length);
  const seg = newSegment();
  recs.forEach((r, i) => {
    const w = want[i] as ExpectedRecord;
    assert.equal(r.length, rb);
    normaliseRecordIp(r, 0);
    assert.equal(parseIpv4Tcp(r, 0, r.length, seg, true), 'ok');
    assert.deepEqual(
      {
        src: ipToString(seg.srcIp),
        dst: ipToString(seg.dstIp),
        srcPort: seg.srcPort,
        dstPort: seg.dstPort,
        seq: seg.seq,
        ack: seg.ack,
        flags: seg.flags,
        ipTotalLen: seg.ipTotalLen,
        tcpHdrLen: seg.tcpHdrLen,
        payloadLen: seg.payloadLen,
      },
      Object.fromEntries(Object.entries(w).filter(([k]) => k !== 'payload')),
    );
    if (w.payload !== undefined) {
      const n = recordPayloadLen(r, 0, r.length);
      const at = recordPayloadOff(r, 0);
      assert.equal(at, 20 + w.tcpHdrLen, 'right after the TCP header, at 20 + doff*4');
      assert.equal(r.subarray(at, at + n).toString('hex'), w.payload);
      assert.ok(
        r.subarray(at + n).every((x) => x === 0),
        'zero after the payload',
      );
    }
  });
}

function decodeSplit(bytes: Buffer, rb: RecordBytes, cuts: number[]): Buffer[] {
  const recs: Buffer[] = [];
  const d = new FrameDecoder(rb, (b, off, len) => recs.push(Buffer.from(b.subarray(off, off + len))));
  let p = 0;
  for (const c of [...cuts, bytes.length]) {
    assert.equal(d.feed(bytes.subarray(p, c)), 'ok');
    p = c;
  }
  return recs;
}

test('decoding the fixtures gives the captured header values, split at every point', () => {
  for (const [name, rb] of [
    ['frame-1', 64],
    ['frame-16', 64],
    ['frame-payload', 192],
    ['frame-c-edge', 192],
  ] as const) {
    const bytes = hex(`${name}.hex`);
    const want = exp[name];
    check(decodeSplit(bytes, rb, []), want, rb);
    for (let i = 0; i <= bytes.length; i++) check(decodeSplit(bytes, rb, [i]), want, rb);
    // several frames back to back, cut into 7-byte chunks and 1-byte chunks
    const three = Buffer.concat([bytes, bytes, bytes]);
    for (const step of [1, 7, 63, 65, 193]) {
      const cuts: number[] = [];
      for (let c = step; c < three.length; c += step) cuts.push(c);
      check(decodeSplit(three, rb, cuts), [...want, ...want, ...want], rb);
    }
  }
});

test('decoder rejects a count above the limit and stays dead', () => {
  const recs: number[] = [];
  const d = new FrameDecoder(64, (_b, off) => recs.push(off));
  const b = Buffer.alloc(2 + 17 * 64);
  b.writeUInt16BE(17, 0);
  assert.equal(d.feed(b), 'bad-count');
  assert.equal(d.badCount, 17);
  assert.equal(d.feed(hex('frame-1.hex')), 'bad-count');
  assert.deepEqual(recs, []);
  const p = new FrameDecoder(192, () => {});
  const c = Buffer.from([0, 7]);
  assert.equal(p.feed(c, 0, 1), 'ok');
  assert.equal(p.feed(c, 1, 1), 'bad-count');
});

test('decoder accepts an empty frame and counts frames and records', () => {
  const d = new FrameDecoder(64, () => {});
  assert.equal(d.feed(Buffer.concat([Buffer.from([0, 0]), hex('frame-16.hex'), hex('frame-1.hex')])), 'ok');
  assert.equal(d.frames, 3);
  assert.equal(d.records, 17);
});

test('encoder splits into frames of 16 (6 with payload) records', () => {
  for (const [rb, max] of [
    [64, 16],
    [192, 6],
  ] as const) {
    const enc = new FrameEncoder(rb);
    const rec = Buffer.alloc(rb, 0xab);
    for (let i = 0; i < max * 2 + 3; i++) assert.ok(enc.addRecord(rec, 0));
    assert.equal(enc.pendingFrames, 3);
    const out = enc.take() as Buffer;
    assert.equal(out.length, 3 * 2 + (max * 2 + 3) * rb);
    assert.equal(out.readUInt16BE(0), max);
    assert.equal(out.readUInt16BE(2 + max * rb), max);
    assert.equal(out.readUInt16BE(4 + 2 * max * rb), 3);
    assert.equal(enc.take(), null);
    let n = 0;
    const d = new FrameDecoder(rb, () => n++);
    assert.equal(d.feed(out), 'ok');
    assert.equal(n, max * 2 + 3);
  }
});

test('encoder refuses records beyond its byte cap and counts them', () => {
  const enc = new FrameEncoder(64, 2 + 64 * 3);
  const rec = Buffer.alloc(64);
  assert.ok(enc.addRecord(rec, 0));
  assert.ok(enc.addRecord(rec, 0));
  assert.ok(enc.addRecord(rec, 0));
  assert.equal(enc.addRecord(rec, 0), false);
  assert.equal(enc.dropped, 1);
  assert.equal((enc.take() as Buffer).length, 2 + 64 * 3);
  assert.ok(enc.addRecord(rec, 0));
});
