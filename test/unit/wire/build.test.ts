/**
 * build.ts: emitting real captured packets from their decoded values reproduces Linux's
 * bytes exactly (option layout, DF, checksums); emit -> decode round trips.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { emitIpTcp, emitIpv4Tcp, newTcpRepr, tcpOptionsLength, type TcpRepr } from '../../../src/core/wire/build';
import { decodeFrame, parseIpv4Tcp, payloadCaptured } from '../../../src/core/wire/decode';
import {
  fillIpv4TcpChecksums,
  fillIpv6TcpChecksum,
  verifyIpv4TcpChecksums,
  verifyIpv6TcpChecksum,
} from '../../../src/core/wire/checksum';
import { parseIpv6 } from '../../../src/core/wire/ipv6';
import {
  newSegment,
  TCP_ACK,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  type TcpSegment,
} from '../../../src/core/wire/segment';
import { loadFrames, prng } from './fixture-frames';

function reprOf(s: TcpSegment): TcpRepr {
  return {
    srcIp: s.srcIp,
    dstIp: s.dstIp,
    srcPort: s.srcPort,
    dstPort: s.dstPort,
    seq: s.seq,
    ack: s.ack,
    flags: s.flags,
    window: s.window,
    ipId: s.ipId,
    ttl: s.ttl,
    mss: s.mss,
    wscale: s.wscale,
    sackOk: s.sackOk,
    hasTs: s.hasTs,
    tsVal: s.tsVal,
    tsEcr: s.tsEcr,
  };
}

test('re-emitting captured Linux packets gives the same bytes (SYN, SYN-ACK, ACK, data, FIN, RST)', () => {
  const seg = newSegment();
  const out = Buffer.alloc(2000);
  let n = 0;
  for (const f of loadFrames('eth')) {
    if (/ethertype 802/.test(f.text) || decodeFrame(f.linkType, f.bytes, 0, f.bytes.length, seg) !== 'ok') continue;
    const len = emitIpv4Tcp(reprOf(seg), seg.buf, seg.payloadOff, seg.payloadLen, out, 0);
    assert.equal(len, seg.ipTotalLen);
    assert.equal(out.subarray(0, len).toString('hex'), f.bytes.subarray(14, 14 + len).toString('hex'), f.text);
    n++;
  }
  assert.ok(n >= 20);
});

test('tcpOptionsLength and the Linux option layouts', () => {
  const r = newTcpRepr();
  assert.deepEqual([r.ttl, r.mss, r.wscale, r.sackOk, r.hasTs], [64, 0, -1, false, false]);
  const out = Buffer.alloc(100);
  const opts = (p: Partial<TcpRepr>): string => {
    const x = Object.assign(newTcpRepr(), p);
    const len = emitIpv4Tcp(x, null, 0, 0, out, 0);
    assert.equal(len, 40 + tcpOptionsLength(x));
    assert.equal(tcpOptionsLength(x) % 4, 0);
    return out.subarray(40, len).toString('hex');
  };
  const all = { mss: 1460, wscale: 7, sackOk: true, hasTs: true, tsVal: 0x01020304, tsEcr: 0x05060708 };
  assert.equal(opts({ flags: TCP_SYN, ...all }), '020405b4' + '0402080a0102030405060708' + '01030307');
  assert.equal(opts({ flags: TCP_SYN | TCP_ACK, ...all, hasTs: false }), '020405b4' + '01010402' + '01030307');
  assert.equal(opts({ flags: TCP_SYN, ...all, sackOk: false }), '020405b4' + '0101080a0102030405060708' + '01030307');
  assert.equal(opts({ flags: TCP_SYN, ...all, sackOk: false, hasTs: false, wscale: -1 }), '020405b4');
  assert.equal(opts({ flags: TCP_SYN }), '');
  assert.equal(opts({ flags: TCP_ACK, ...all }), '0101080a0102030405060708', 'non-SYN: only timestamps');
  assert.equal(opts({ flags: TCP_ACK | TCP_PSH, ...all, hasTs: false }), '');
  assert.equal(opts({ flags: TCP_RST }), '');
});

test('emit -> decode round trips with random values; only [off, off+len) is written', () => {
  const rnd = prng(2024);
  const seg = newSegment();
  const payload = Buffer.alloc(1500);
  for (let i = 0; i < payload.length; i++) payload[i] = rnd() & 255;
  const out = Buffer.alloc(1700);
  const flagSet = [
    TCP_SYN,
    TCP_SYN | TCP_ACK,
    TCP_ACK,
    TCP_ACK | TCP_PSH,
    TCP_FIN | TCP_ACK,
    TCP_RST,
    TCP_RST | TCP_ACK,
  ];
  for (let k = 0; k < 2000; k++) {
    const r = Object.assign(newTcpRepr(), {
      srcIp: rnd(),
      dstIp: rnd(),
      srcPort: rnd() & 0xffff,
      dstPort: rnd() & 0xffff,
      seq: rnd(),
      ack: rnd(),
      flags: flagSet[rnd() % flagSet.length] ?? TCP_ACK,
      window: rnd() & 0xffff,
      ipId: rnd() & 0xffff,
      ttl: 1 + (rnd() % 255),
      mss: rnd() % 3 === 0 ? 0 : 1 + (rnd() % 65535),
      wscale: (rnd() % 16) - 1,
      sackOk: (rnd() & 1) === 1,
      hasTs: (rnd() & 1) === 1,
      tsVal: rnd(),
      tsEcr: rnd(),
    });
    const pOff = rnd() % 100;
    const pLen = rnd() % 3 === 0 ? 0 : rnd() % 1400;
    const off = rnd() % 50;
    out.fill(0xa5);
    const len = emitIpv4Tcp(r, pLen === 0 && (k & 1) === 1 ? null : payload, pOff, pLen, out, off);
    assert.equal(len, 40 + tcpOptionsLength(r) + pLen);
    assert.ok(out.subarray(0, off).every((x) => x === 0xa5) && out.subarray(off + len).every((x) => x === 0xa5));
    assert.equal(parseIpv4Tcp(out, off, len, seg), 'ok');
    assert.deepEqual(verifyIpv4TcpChecksums(out, off), { ip: true, tcp: true });
    const syn = (r.flags & TCP_SYN) !== 0;
    assert.deepEqual(
      [seg.srcIp, seg.dstIp, seg.srcPort, seg.dstPort, seg.seq, seg.ack, seg.flags, seg.window, seg.ipId, seg.ttl],
      [r.srcIp, r.dstIp, r.srcPort, r.dstPort, r.seq, r.ack, r.flags, r.window, r.ipId, r.ttl],
    );
    assert.deepEqual([seg.mss, seg.wscale, seg.sackOk], syn ? [r.mss, r.wscale, r.sackOk] : [0, -1, false]);
    assert.deepEqual([seg.hasTs, seg.tsVal, seg.tsEcr], r.hasTs ? [true, r.tsVal, r.tsEcr] : [false, 0, 0]);
    assert.equal(out.readUInt16BE(off + 6), 0x4000, 'DF');
    assert.equal(out[off + 1], 0, 'TOS');
    assert.equal(payloadCaptured(seg), pLen);
    assert.ok(out.subarray(seg.payloadOff, seg.payloadOff + pLen).equals(payload.subarray(pOff, pOff + pLen)));
  }
});

test('the one-pass checksums of built packets equal the general ones (both families, odd and even lengths)', () => {
  const rnd = prng(0x5eed);
  const out = Buffer.alloc(2000);
  const payload = Buffer.alloc(1500);
  for (let i = 0; i < payload.length; i++) payload[i] = rnd() % 256;
  const src6 = parseIpv6('2001:2:0:1::7');
  const dst6 = parseIpv6('2001:2::2');
  for (let n = 0; n < 300; n++) {
    const r = newTcpRepr();
    r.srcPort = rnd() % 65536;
    r.dstPort = 8080;
    r.seq = rnd() % 2 ** 32;
    r.ack = rnd() % 2 ** 32;
    r.flags = n % 7 === 0 ? TCP_SYN : TCP_ACK;
    r.tsVal = n % 3 === 0 ? 0 : rnd() % 2 ** 32;
    r.mss = 1460;
    r.window = rnd() % 65536;
    const len = rnd() % 1400;
    for (const v6 of [false, true]) {
      r.srcIp = v6 ? src6 : rnd() % 2 ** 32;
      r.dstIp = v6 ? dst6 : 0xc6120002;
      const total = emitIpTcp(r, payload, 3, len, out, 0);
      const built = Buffer.from(out.subarray(0, total));
      const general = Buffer.from(built);
      if (v6) fillIpv6TcpChecksum(general, 0);
      else fillIpv4TcpChecksums(general, 0);
      assert.deepEqual(built, general, `packet ${n} ${v6 ? 'IPv6' : 'IPv4'} payload ${len}`);
      if (v6) assert.equal(verifyIpv6TcpChecksum(built, 0), true);
      else assert.deepEqual(verifyIpv4TcpChecksums(built, 0), { ip: true, tcp: true });
    }
  }
});
