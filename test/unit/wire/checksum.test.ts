/**
 * checksum.ts: RFC 1071 sums against a byte-by-byte reference, against the checksums in
 * real captured packets, and RFC 1624 incremental updates against full recomputation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checksumAdjust16,
  checksumAdjust32,
  fillIpv4TcpChecksums,
  ipv4HeaderChecksum,
  onesComplementSum,
  tcpChecksum,
  verifyIpv4TcpChecksums,
} from '../../../src/core/wire/checksum';
import { emitIpv4Tcp, newTcpRepr } from '../../../src/core/wire/build';
import { decodeFrame } from '../../../src/core/wire/decode';
import { newSegment } from '../../../src/core/wire/segment';
import { loadFrames, prng } from './fixture-frames';

/** Reference: 16-bit big-endian words one at a time, end-around carry on every add. */
function refSum(b: Buffer, off: number, len: number): number {
  let s = 0;
  for (let i = 0; i < len; i += 2) {
    s += ((b[off + i] ?? 0) << 8) | (i + 1 < len ? (b[off + i + 1] ?? 0) : 0);
    if (s > 0xffff) s = (s & 0xffff) + 1;
  }
  return s;
}

test('RFC 1071 numerical example: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2', () => {
  assert.equal(onesComplementSum(Buffer.from('0001f203f4f5f6f7', 'hex'), 0, 8), 0xddf2);
  assert.equal(onesComplementSum(Buffer.alloc(0), 0, 0), 0);
  assert.equal(onesComplementSum(Buffer.from([0xff, 0xff]), 0, 2), 0xffff);
});

test('onesComplementSum equals the reference at any length, offset and buffer alignment', () => {
  const rnd = prng(1071);
  const big = Buffer.alloc(4096 + 64);
  for (let i = 0; i < big.length; i++) big[i] = rnd() & 255;
  for (let k = 0; k < 3000; k++) {
    const base = rnd() % 13;
    const view = big.subarray(base); // odd and even byteOffsets
    const off = rnd() % 40;
    const len = k < 1600 ? k % 1600 : rnd() % 4000;
    assert.equal(onesComplementSum(view, off, len), refSum(view, off, len), `off ${base}+${off} len ${len}`);
  }
  const pooled = Buffer.from(big.subarray(3, 1503)); // a pool slice or its own ArrayBuffer
  assert.equal(onesComplementSum(pooled, 0, 1500), refSum(pooled, 0, 1500));
  assert.equal(onesComplementSum(big, 4090, 1000), refSum(big, 4090, big.length - 4090), 'len clamped to the buffer');
});

test('sums chain through `initial` (even-length parts), also with large unfolded initial values', () => {
  const rnd = prng(7);
  const b = Buffer.alloc(600);
  for (let i = 0; i < b.length; i++) b[i] = rnd() & 255;
  for (const cut of [0, 2, 10, 64, 300, 598]) {
    assert.equal(onesComplementSum(b, cut, 600 - cut, onesComplementSum(b, 0, cut)), refSum(b, 0, 600));
  }
  const unfolded = 0xffffffff * 3 + 0x12345; // e.g. several address words added up
  let f = unfolded;
  while (f > 0xffff) f = (f % 0x10000) + Math.floor(f / 0x10000);
  assert.equal(onesComplementSum(b, 0, 0, unfolded), f);
});

test('captured packets: stored IP and TCP checksums equal the computed ones; fill restores them', () => {
  const seg = newSegment();
  let n = 0;
  for (const f of loadFrames('eth')) {
    if (!/ethertype IPv4 \(0x0800\)/.test(f.text) || /ethertype 802/.test(f.text)) continue;
    const ipOff = 14;
    assert.equal(ipv4HeaderChecksum(f.bytes, ipOff), f.bytes.readUInt16BE(ipOff + 10), f.text);
    if (decodeFrame(f.linkType, f.bytes, 0, f.bytes.length, seg) !== 'ok') continue;
    n++;
    assert.equal(tcpChecksum(f.bytes, ipOff), f.bytes.readUInt16BE(seg.tcpOff + 16), f.text);
    assert.deepEqual(verifyIpv4TcpChecksums(f.bytes, ipOff), { ip: true, tcp: true });
    const b = Buffer.from(f.bytes);
    b.writeUInt16BE(0, ipOff + 10);
    b.writeUInt16BE(0xbeef, seg.tcpOff + 16);
    fillIpv4TcpChecksums(b, ipOff);
    assert.ok(b.equals(f.bytes));
    b[b.length - 1] = (b[b.length - 1] ?? 0) ^ 0x40;
    assert.deepEqual(verifyIpv4TcpChecksums(b, ipOff), { ip: true, tcp: false });
    b[ipOff + 8] = 63; // TTL
    assert.deepEqual(verifyIpv4TcpChecksums(b, ipOff), { ip: false, tcp: false });
  }
  assert.ok(n >= 20, `${n} TCP frames`);
});

test('checksumAdjust16/32 (RFC 1624) equal full recomputation on random packets', () => {
  const rnd = prng(1624);
  const out = Buffer.alloc(1600);
  const payload = Buffer.alloc(1460);
  for (let i = 0; i < payload.length; i++) payload[i] = rnd() & 255;
  const r = newTcpRepr();
  for (let k = 0; k < 3000; k++) {
    Object.assign(r, {
      srcIp: rnd(),
      dstIp: rnd(),
      srcPort: rnd() & 0xffff,
      dstPort: rnd() & 0xffff,
      seq: rnd(),
      ack: rnd(),
      flags: rnd() & 0xff,
      window: rnd() & 0xffff,
      ipId: rnd() & 0xffff,
      ttl: rnd() & 0xff,
      mss: rnd() & 0xffff,
      wscale: (rnd() % 16) - 1,
      sackOk: (rnd() & 1) === 1,
      hasTs: (rnd() & 1) === 1,
      tsVal: rnd(),
      tsEcr: rnd(),
    });
    const len = emitIpv4Tcp(r, payload, rnd() % 100, rnd() % 1300, out, 0);
    const pkt = out.subarray(0, len);
    const ipSum = pkt.readUInt16BE(10);
    const tcpSum = pkt.readUInt16BE(36);
    // A 32-bit field covered by the TCP checksum: seq (offset 24) or ack (28).
    const f32 = (rnd() & 1) === 1 ? 24 : 28;
    const old32 = pkt.readUInt32BE(f32);
    const new32 = rnd();
    pkt.writeUInt32BE(new32, f32);
    const adj = checksumAdjust32(tcpSum, old32, new32);
    assert.equal(adj, tcpChecksum(pkt, 0), `seq/ack k=${k}`);
    pkt.writeUInt16BE(adj, 36);
    // The destination address: in both the IP header and the TCP pseudo header.
    const oldDst = pkt.readUInt32BE(16);
    const newDst = rnd();
    pkt.writeUInt32BE(newDst, 16);
    assert.equal(checksumAdjust32(ipSum, oldDst, newDst), ipv4HeaderChecksum(pkt, 0), `ip dst k=${k}`);
    assert.equal(checksumAdjust32(adj, oldDst, newDst), tcpChecksum(pkt, 0), `tcp dst k=${k}`);
    pkt.writeUInt16BE(checksumAdjust32(adj, oldDst, newDst), 36);
    // A 16-bit word anywhere in the TCP header or payload except the checksum itself.
    let w = 20 + 2 * (rnd() % ((len - 20) >> 1));
    if (w === 36) w = 34;
    const cur = pkt.readUInt16BE(36);
    const old16 = pkt.readUInt16BE(w);
    const new16 = k % 50 === 0 ? old16 : rnd() & 0xffff;
    pkt.writeUInt16BE(new16, w);
    assert.equal(checksumAdjust16(cur, old16, new16), tcpChecksum(pkt, 0), `word ${w} k=${k}`);
  }
});

test('checksum functions never throw on short or odd buffers', () => {
  const rnd = prng(99);
  for (let len = 0; len < 80; len++) {
    const b = Buffer.alloc(len);
    for (let i = 0; i < len; i++) b[i] = rnd() & 255;
    if (len > 0) b[0] = 0x40 | (rnd() & 15);
    for (const off of [0, 1, len, len + 3]) {
      assert.equal(typeof ipv4HeaderChecksum(b, off), 'number');
      assert.equal(typeof tcpChecksum(b, off), 'number');
      verifyIpv4TcpChecksums(b, off);
      fillIpv4TcpChecksums(b, off);
    }
  }
});
