import { test } from 'node:test';
import assert from 'node:assert/strict';
import { normaliseRecordIp, recordPayloadLen, recordPayloadOff, writeRecord } from '../../../src/channel/record';
import { parseIpv4Tcp } from '../../../src/core/wire/decode';
import { fillIpv4TcpChecksums, ipv4HeaderChecksum } from '../../../src/core/wire/checksum';
import { newSegment, parseIpv4, TCP_ACK, TCP_SYN } from '../../../src/core/wire/segment';

/** An IPv4/TCP packet with `ipOpt` IP option bytes, `tcpOpt` TCP option bytes and `pay` payload bytes. */
function packet(ipOpt: number, tcpOpt: Buffer, pay: number): Buffer {
  const ihl = 20 + ipOpt;
  const thl = 20 + tcpOpt.length;
  const b = Buffer.alloc(ihl + thl + pay);
  b[0] = 0x40 | (ihl / 4);
  b.writeUInt16BE(b.length, 2);
  b.writeUInt16BE(0x1234, 4);
  b[8] = 64;
  b[9] = 6;
  b.writeUInt32BE(parseIpv4('198.18.20.2'), 12);
  b.writeUInt32BE(parseIpv4('198.18.1.5'), 16);
  for (let i = 0; i < ipOpt; i++) b[20 + i] = 1; // NOPs (IP option "no operation")
  const t = ihl;
  b.writeUInt16BE(8080, t);
  b.writeUInt16BE(40000, t + 2);
  b.writeUInt32BE(1000, t + 4);
  b.writeUInt32BE(2000, t + 8);
  b[t + 12] = (thl / 4) << 4;
  b[t + 13] = TCP_SYN | TCP_ACK;
  b.writeUInt16BE(65535, t + 14);
  tcpOpt.copy(b, t + 20);
  for (let i = 0; i < pay; i++) b[t + thl + i] = i & 255;
  fillIpv4TcpChecksums(b, 0);
  return b;
}

// MSS, SACK-permitted, timestamps, NOP, window scale: 20 bytes.
const SYNACK_OPTS = Buffer.from('020405b40402080a0000000100000002010303070000', 'hex').subarray(0, 20);

test('a plain reply: record = headers as captured, zero padded', () => {
  const p = packet(0, SYNACK_OPTS, 0);
  const seg = newSegment();
  assert.equal(parseIpv4Tcp(p, 0, p.length, seg), 'ok');
  const r = Buffer.alloc(64, 0xee);
  writeRecord(seg, r, 0, 64);
  assert.deepEqual(r.subarray(0, p.length), p);
  assert.ok(r.subarray(p.length).every((x) => x === 0));
});

test('IP options: IHL becomes 5, total length shrinks by the options, payload length kept', () => {
  const p = packet(8, SYNACK_OPTS, 300);
  const seg = newSegment();
  assert.equal(parseIpv4Tcp(p, 0, p.length, seg), 'ok');
  assert.equal(seg.payloadLen, 300);
  const r = Buffer.alloc(64);
  writeRecord(seg, r, 0, 64);
  assert.equal(r[0], 0x45);
  assert.equal(r.readUInt16BE(2), p.length - 8);
  assert.equal(r.readUInt16BE(10), ipv4HeaderChecksum(r, 0), 'header checksum recomputed');
  const s2 = newSegment();
  assert.equal(parseIpv4Tcp(r, 0, 64, s2, true), 'ok');
  assert.equal(s2.payloadLen, 300);
  assert.equal(s2.srcPort, 8080);
  assert.equal(s2.dstPort, 40000);
  assert.equal(s2.mss, 1460);
  assert.equal(s2.wscale, 7);
  assert.equal(s2.hasTs, true);
  assert.equal(s2.tsVal, 1);
});

test('TCP options beyond 24 bytes: cut at an option boundary, data offset 11, payload length kept', () => {
  // NOP NOP TS(10) SACK(2+16=18): 30 bytes, padded to 32 with NOP NOP -> header 52 bytes.
  const opts = Buffer.concat([
    Buffer.from('0101080a0000000500000006', 'hex'),
    Buffer.from([5, 18]),
    Buffer.alloc(16, 9),
    Buffer.from([1, 1]),
  ]);
  assert.equal(opts.length, 32);
  const p = packet(4, opts, 100);
  const seg = newSegment();
  assert.equal(parseIpv4Tcp(p, 0, p.length, seg), 'ok');
  const r = Buffer.alloc(64);
  writeRecord(seg, r, 0, 64);
  assert.equal(r[20 + 12], 11 << 4);
  assert.equal(r.readUInt16BE(2), p.length - 4 - 8);
  assert.deepEqual(r.subarray(40, 52), opts.subarray(0, 12), 'whole options kept');
  assert.ok(
    r.subarray(52, 64).every((x) => x === 0),
    'the cut SACK option is zeroed (EOL)',
  );
  const s2 = newSegment();
  assert.equal(parseIpv4Tcp(r, 0, 64, s2, true), 'ok');
  assert.equal(s2.payloadLen, 100);
  assert.equal(s2.tsVal, 5);
  assert.equal(s2.tsEcr, 6);
});

test('payload variant: a whole payload of 1..128 bytes right after the TCP header, none otherwise', () => {
  for (const [optBytes, pay] of [
    [12, 0],
    [12, 1],
    [12, 100],
    [12, 128],
    [12, 129],
    [12, 1000],
    [0, 128],
    [20, 128],
  ] as const) {
    const p = packet(0, SYNACK_OPTS.subarray(0, optBytes), pay);
    const seg = newSegment();
    assert.equal(parseIpv4Tcp(p, 0, p.length, seg), 'ok');
    const r = Buffer.alloc(192 + 10, 0xee);
    const copied = writeRecord(seg, r, 5, 192);
    const want = pay >= 1 && pay <= 128 ? pay : 0;
    assert.equal(copied, want);
    assert.equal(recordPayloadLen(r, 5, 192), want);
    const at = recordPayloadOff(r, 5);
    assert.equal(at, 5 + 20 + 20 + optBytes);
    assert.deepEqual(r.subarray(at, at + want), p.subarray(40 + optBytes, 40 + optBytes + want));
    assert.deepEqual(r.subarray(5, at), Buffer.concat([p.subarray(0, 40 + optBytes)]), 'headers as captured');
    assert.ok(r.subarray(at + want, 5 + 192).every((x) => x === 0));
    assert.equal(r[4], 0xee);
    assert.equal(r[5 + 192], 0xee);
    assert.equal(recordPayloadLen(r, 5, 64), 0, 'a 64-byte record carries none');
  }
});

test('payload variant with a TCP header cut to 44 bytes: payload at 64, up to 128 bytes', () => {
  const opts = Buffer.concat([
    Buffer.from('0101080a0000000500000006', 'hex'),
    Buffer.from([1, 1, 5, 18]),
    Buffer.alloc(16, 9),
  ]);
  const p = packet(0, opts, 128);
  const seg = newSegment();
  assert.equal(parseIpv4Tcp(p, 0, p.length, seg), 'ok');
  const r = Buffer.alloc(192);
  assert.equal(writeRecord(seg, r, 0, 192), 128);
  assert.equal(recordPayloadOff(r, 0), 64);
  assert.equal(recordPayloadLen(r, 0, 192), 128);
  assert.deepEqual(r.subarray(64), p.subarray(20 + 52));
});

test('normaliseRecordIp: a record with IHL > 5 (as the original copies it) parses like ours', () => {
  const p = packet(8, SYNACK_OPTS.subarray(0, 12), 10);
  // the original's layout: 20 IP header bytes as captured, TCP header at 20, payload after it
  const r = Buffer.alloc(192);
  p.copy(r, 0, 0, 20);
  p.copy(r, 20, 28, 28 + 32 + 10);
  assert.equal(recordPayloadLen(r, 0, 192), 10, 'length from IHL and doff before normalising');
  normaliseRecordIp(r, 0);
  assert.equal(r[0], 0x45);
  assert.equal(r.readUInt16BE(2), p.length - 8);
  assert.equal(r.readUInt16BE(10), ipv4HeaderChecksum(r, 0));
  const s = newSegment();
  assert.equal(parseIpv4Tcp(r, 0, 192, s, true), 'ok');
  assert.equal(s.payloadLen, 10);
  assert.equal(s.srcPort, 8080);
  assert.equal(recordPayloadLen(r, 0, 192), 10);
  assert.deepEqual(r.subarray(recordPayloadOff(r, 0), 52 + 10), p.subarray(60, 70));
  const again = Buffer.from(r);
  normaliseRecordIp(r, 0);
  assert.deepEqual(r, again, 'IHL 5: unchanged');
});

test('snaplen-cut capture: missing bytes are zero, a payload not captured whole is not copied', () => {
  const p = packet(0, SYNACK_OPTS, 100);
  const cut = p.subarray(0, 70); // 60 header + 10 of the 100 payload bytes
  const seg = newSegment();
  assert.equal(parseIpv4Tcp(cut, 0, cut.length, seg), 'ok');
  const r = Buffer.alloc(192);
  assert.equal(writeRecord(seg, r, 0, 192), 0);
  assert.equal(r.readUInt16BE(2), p.length);
  assert.deepEqual(r.subarray(0, 60), cut.subarray(0, 60));
  assert.ok(r.subarray(60).every((x) => x === 0));
});
