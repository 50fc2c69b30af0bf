/**
 * decode.ts on synthetic and hostile input: other link types, TSO, padding, snaplen cuts,
 * intercept's 64-byte records, malformed TCP options, every truncation length of real
 * frames, and random bytes (deterministic PRNG). Nothing may throw.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeFrame,
  linkNetworkOffset,
  parseIpv4Tcp,
  payloadCaptured,
  type DecodeStatus,
} from '../../../src/core/wire/decode';
import { verifyIpv4TcpChecksums } from '../../../src/core/wire/checksum';
import { emitIpv4Tcp, newTcpRepr } from '../../../src/core/wire/build';
import { ipToString, newSegment, TCP_ACK, TCP_SYN } from '../../../src/core/wire/segment';
import {
  LINKTYPE_ETHERNET,
  LINKTYPE_IPV4,
  LINKTYPE_IPV6,
  LINKTYPE_LINUX_SLL,
  LINKTYPE_LINUX_SLL2,
  LINKTYPE_NULL,
  LINKTYPE_RAW,
  LINKTYPE_RAW_ALT1,
  LINKTYPE_RAW_ALT2,
} from '../../../src/core/wire/link';
import { loadFrames, prng } from './fixture-frames';

const STATUSES = new Set<DecodeStatus>([
  'ok',
  'unknown-link',
  'not-ipv4',
  'ipv6',
  'truncated',
  'bad-ip-header',
  'fragment',
  'not-tcp',
  'bad-tcp-header',
  'address-table-full',
]);
const eth = loadFrames('eth');
function ethFrame(i: number): Buffer {
  const f = eth[i];
  assert.ok(f, `eth frame ${i}`);
  return Buffer.from(f.bytes);
}
const SYN = 2;
const DATA1448 = 9;
const RST = 21;
const ICMP_FRAG1 = 22;
const TCP_FRAG1 = 28;
const TCP_FRAG2 = 29;
const ipv6Frame = loadFrames('lo6').find((f) => f.text.includes('Flags [S]'));
assert.ok(ipv6Frame);

/** 20-byte IPv4 + 20-byte TCP (ACK) + the given option bytes (padded with zeros to 4). */
function withOptions(opts: number[], flags = TCP_ACK): Buffer {
  const pad = (4 - (opts.length % 4)) % 4;
  const optLen = opts.length + pad;
  const r = newTcpRepr();
  Object.assign(r, {
    srcIp: 0xc6120001,
    dstIp: 0xc6120002,
    srcPort: 1234,
    dstPort: 80,
    seq: 1,
    ack: 2,
    flags,
    window: 100,
  });
  const b = Buffer.alloc(40 + optLen);
  emitIpv4Tcp(r, null, 0, 0, b, 0);
  b.writeUInt16BE(40 + optLen, 2);
  b[32] = ((20 + optLen) / 4) << 4;
  Buffer.from(opts).copy(b, 40);
  return b;
}

test('NULL/loopback link type: AF_INET in either byte order, AF_INET6 values, others', () => {
  const ip = ethFrame(SYN).subarray(14);
  const seg = newSegment();
  for (const hdr of [
    [2, 0, 0, 0],
    [0, 0, 0, 2],
  ]) {
    const b = Buffer.concat([Buffer.from(hdr), ip]);
    assert.equal(linkNetworkOffset(LINKTYPE_NULL, b, 0, b.length), 4);
    assert.equal(decodeFrame(LINKTYPE_NULL, b, 0, b.length, seg), 'ok');
    assert.equal(seg.srcPort, 36104);
  }
  const ip6 = ipv6Frame.bytes.subarray(14);
  for (const fam of [10, 24, 28, 30]) {
    const le = Buffer.concat([Buffer.from([fam, 0, 0, 0]), ip6]);
    const be = Buffer.concat([Buffer.from([0, 0, 0, fam]), ip6]);
    assert.equal(decodeFrame(LINKTYPE_NULL, le, 0, le.length, seg), 'ok');
    assert.deepEqual([seg.ipOff, seg.tcpOff, seg.dstPort], [4, 44, 8080]);
    assert.equal(decodeFrame(LINKTYPE_NULL, be, 0, be.length, seg), 'ok');
    assert.equal(ipToString(seg.srcIp), '::1');
  }
  const other = Buffer.concat([Buffer.from([99, 0, 0, 0]), ip]);
  assert.equal(decodeFrame(LINKTYPE_NULL, other, 0, other.length, seg), 'not-ipv4');
  assert.equal(decodeFrame(LINKTYPE_NULL, other, 0, 3, seg), 'truncated');
});

test('RAW link types use the version nibble; unknown link types are reported', () => {
  const ip = ethFrame(SYN).subarray(14);
  const ip6 = ipv6Frame.bytes.subarray(14);
  const seg = newSegment();
  for (const lt of [LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_RAW_ALT1, LINKTYPE_RAW_ALT2]) {
    assert.equal(decodeFrame(lt, ip, 0, ip.length, seg), 'ok');
    assert.equal(seg.ipOff, 0);
    assert.equal(decodeFrame(lt, ip6, 0, ip6.length, seg), 'ok');
    assert.deepEqual([seg.ipOff, seg.ipHdrLen, seg.tcpOff, seg.dstPort, seg.flags], [0, 40, 40, 8080, TCP_SYN]);
    assert.equal(decodeFrame(lt, Buffer.from([0x15, 0, 0]), 0, 3, seg), 'not-ipv4');
    assert.equal(decodeFrame(lt, ip, 0, 0, seg), 'truncated');
  }
  assert.equal(linkNetworkOffset(147, ip, 0, ip.length), -1);
  assert.equal(decodeFrame(147, ip, 0, ip.length, seg), 'unknown-link');
  assert.equal(linkNetworkOffset(LINKTYPE_ETHERNET, ethFrame(0), 0, 42), -3); // ARP
  assert.equal(linkNetworkOffset(LINKTYPE_ETHERNET, ethFrame(SYN), 0, 13), -2);
});

test('a frame inside a larger buffer at an offset decodes the same', () => {
  const f = ethFrame(DATA1448);
  const big = Buffer.alloc(f.length + 100, 0xee);
  f.copy(big, 37);
  const a = newSegment();
  const b = newSegment();
  assert.equal(decodeFrame(LINKTYPE_ETHERNET, f, 0, f.length, a), 'ok');
  assert.equal(decodeFrame(LINKTYPE_ETHERNET, big, 37, f.length, b), 'ok');
  assert.deepEqual(
    [b.ipOff, b.payloadOff, b.payloadLen, payloadCaptured(b)],
    [a.ipOff + 37, a.payloadOff + 37, 1448, 1448],
  );
  assert.equal(decodeFrame(LINKTYPE_ETHERNET, f, 0, f.length + 500, a), 'ok', 'capLen beyond the buffer is clamped');
  assert.equal(payloadCaptured(a), 1448);
});

test('fragments of any protocol are reported before the protocol check', () => {
  const seg = newSegment();
  for (const i of [TCP_FRAG1, TCP_FRAG2, ICMP_FRAG1]) {
    const f = ethFrame(i);
    assert.equal(decodeFrame(LINKTYPE_ETHERNET, f, 0, f.length, seg), 'fragment');
    assert.equal(seg.srcIp, 0xc613d501);
  }
  assert.equal(seg.ipId, 13351);
  const icmp = ethFrame(ICMP_FRAG1);
  icmp.writeUInt16BE(0, 20); // clear MF: a whole ICMP packet
  assert.equal(decodeFrame(LINKTYPE_ETHERNET, icmp, 0, icmp.length, seg), 'not-tcp');
});

test('IP total length 0 (TSO capture) uses the captured length; Ethernet padding is ignored', () => {
  const seg = newSegment();
  const tso = ethFrame(DATA1448);
  tso.writeUInt16BE(0, 16);
  assert.equal(decodeFrame(LINKTYPE_ETHERNET, tso, 0, tso.length, seg), 'ok');
  assert.deepEqual([seg.ipTotalLen, seg.payloadLen, payloadCaptured(seg)], [1500, 1448, 1448]);
  const padded = Buffer.concat([ethFrame(RST), Buffer.alloc(6)]); // 54 -> 60 bytes like a NIC pads
  assert.equal(decodeFrame(LINKTYPE_ETHERNET, padded, 0, padded.length, seg), 'ok');
  assert.deepEqual([seg.ipTotalLen, seg.capLen, seg.payloadLen, payloadCaptured(seg)], [40, 40, 0, 0]);
  assert.deepEqual(verifyIpv4TcpChecksums(padded, 14), { ip: true, tcp: true });
});

test('bad IP and TCP headers', () => {
  const seg = newSegment();
  const st = (mut: (b: Buffer) => void, base = SYN): DecodeStatus => {
    const b = ethFrame(base);
    mut(b);
    return decodeFrame(LINKTYPE_ETHERNET, b, 0, b.length, seg);
  };
  assert.equal(
    st((b) => {
      b[14] = 0x44;
    }),
    'bad-ip-header',
  ); // IHL 16 bytes
  assert.equal(
    st((b) => {
      b[14] = 0x55;
    }),
    'bad-ip-header',
  ); // version 5
  assert.equal(
    st((b) => {
      b[14] = 0x4f;
    }, RST),
    'truncated',
  ); // IHL 60, only 40 bytes captured
  assert.equal(
    st((b) => {
      b[14] = 0x4f;
    }),
    'bad-tcp-header',
  ); // IHL 60 leaves no room for TCP
  assert.equal(
    st((b) => {
      b.writeUInt16BE(10, 16);
    }),
    'bad-ip-header',
  ); // total length < IHL
  assert.equal(
    st((b) => {
      b.writeUInt16BE(30, 16);
    }),
    'bad-tcp-header',
  ); // 10 bytes of TCP
  assert.equal(
    st((b) => {
      b[14 + 20 + 12] = 0x40;
    }),
    'bad-tcp-header',
  ); // data offset 16
  assert.equal(
    st((b) => {
      b[14 + 20 + 12] = 0xf0;
    }),
    'bad-tcp-header',
  ); // data offset 60 > 40 TCP bytes
  assert.equal(
    st((b) => {
      b[14 + 9] = 17;
    }),
    'not-tcp',
  );
  const ip6 = Buffer.from(ipv6Frame.bytes.subarray(14));
  assert.equal(parseIpv4Tcp(ip6, 0, ip6.length, seg), 'ipv6');
});

test('TCP options: EOL, NOP, SACK blocks, unknown kinds, malformed lengths; fields reset every parse', () => {
  const seg = newSegment();
  const opts = (o: number[], flags = TCP_ACK): [DecodeStatus, number, number, boolean, boolean] => {
    const b = withOptions(o, flags);
    const s = parseIpv4Tcp(b, 0, b.length, seg);
    return [s, seg.mss, seg.wscale, seg.sackOk, seg.hasTs];
  };
  assert.deepEqual(opts([2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9, 1, 3, 3, 7], TCP_SYN), [
    'ok',
    1460,
    7,
    true,
    true,
  ]);
  assert.deepEqual([seg.tsVal, seg.tsEcr], [7, 9]);
  assert.deepEqual(opts([]), ['ok', 0, -1, false, false], 'reset after a parse with options');
  assert.deepEqual(opts([1, 1, 1, 0, 2, 4, 5, 180]), ['ok', 0, -1, false, false], 'EOL stops');
  assert.deepEqual(opts([4, 2, 2, 0, 5, 180]), ['ok', 0, -1, true, false], 'length 0 stops');
  assert.deepEqual(opts([3, 3, 2, 2, 1, 5, 180, 0]), ['ok', 0, 2, false, false], 'length 1 stops');
  assert.deepEqual(opts([4, 2, 2, 40, 5, 180]), ['ok', 0, -1, true, false], 'length past the header stops');
  assert.deepEqual(
    opts([5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 2, 4, 5, 180, 1, 1]),
    ['ok', 1460, -1, false, false],
    'SACK block skipped',
  );
  assert.deepEqual(opts([254, 4, 0xaa, 0xbb, 3, 3, 9, 1]), ['ok', 0, 9, false, false], 'unknown kind skipped');
  assert.deepEqual(opts([2, 3, 5, 1, 3, 3, 4, 1]), ['ok', 0, 4, false, false], 'MSS with a wrong length ignored');
  assert.deepEqual(opts([1, 1, 1, 8]), ['ok', 0, -1, false, false], 'kind without a length byte');
  assert.deepEqual(opts([8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 1]), ['ok', 0, -1, false, true]);
  const frag = ethFrame(TCP_FRAG1);
  assert.equal(decodeFrame(LINKTYPE_ETHERNET, frag, 0, frag.length, seg), 'fragment');
  assert.deepEqual(
    [seg.mss, seg.wscale, seg.sackOk, seg.hasTs, seg.tsVal],
    [0, -1, false, false, 0],
    'reset on a non-ok parse',
  );
});

test("lenient parse of intercept's 64-byte records (options cut at 24 bytes)", () => {
  const seg = newSegment();
  // A SYN-ACK with 40 bytes of options: MSS, SACK-perm, WS, NOPs, then TS that the cut splits.
  const o = [
    2, 4, 5, 180, 4, 2, 1, 1, 1, 3, 3, 7, 1, 1, 1, 1, 1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8, 34, 10, 9, 9, 9, 9, 9, 9, 9,
    9, 0, 0,
  ];
  const full = withOptions(o, TCP_SYN | TCP_ACK);
  full.writeUInt16BE(80 + 200, 2); // the reply carried 200 bytes of payload
  const rec = Buffer.alloc(64);
  full.copy(rec, 0, 0, 64);
  assert.equal(parseIpv4Tcp(rec, 0, 64, seg), 'truncated');
  assert.equal(parseIpv4Tcp(rec, 0, 64, seg, true), 'ok');
  assert.deepEqual([seg.tcpHdrLen, seg.payloadLen, payloadCaptured(seg)], [60, 200, 0]);
  assert.deepEqual([seg.mss, seg.sackOk, seg.wscale, seg.hasTs], [1460, true, 7, false]);
  // The real SYN-ACK (20 bytes of options) fits a record with or without lenient.
  const sa = ethFrame(3).subarray(14);
  rec.fill(0);
  sa.copy(rec);
  assert.equal(parseIpv4Tcp(rec, 0, 64, seg), 'ok');
  assert.deepEqual(
    [seg.srcPort, seg.flags, seg.mss, seg.wscale, seg.tsVal],
    [8080, TCP_SYN | TCP_ACK, 1460, 10, 3208601051],
  );
});

test('every truncation length of real frames returns a status, never throws', () => {
  const seg = newSegment();
  for (const name of ['eth', 'sll', 'sll2', 'lo']) {
    for (const f of loadFrames(name)) {
      const full = decodeFrame(f.linkType, f.bytes, 0, f.bytes.length, seg);
      const hdrEnd = full === 'ok' ? seg.payloadOff : -1;
      for (let n = 0; n <= f.bytes.length; n++) {
        const cut = f.bytes.subarray(0, n);
        const s = decodeFrame(f.linkType, cut, 0, n, seg);
        assert.ok(STATUSES.has(s));
        assert.equal(decodeFrame(f.linkType, f.bytes, 0, n, seg), s, 'capLen and buffer end agree');
        if (full === 'ok') assert.equal(s, n >= hdrEnd ? 'ok' : 'truncated', `${name}#${f.index} cut at ${n}`);
      }
    }
  }
});

test('random bytes and random mutations of real frames never throw', () => {
  const rnd = prng(0x7c3);
  const seg = newSegment();
  const links = [
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    LINKTYPE_IPV4,
    999,
  ];
  const seen = new Set<DecodeStatus>();
  const buf = Buffer.alloc(200);
  for (let i = 0; i < 30000; i++) {
    const len = rnd() % 120;
    for (let j = 0; j < len; j++) buf[j] = rnd() & 255;
    if (i & 1) {
      buf[12] = 0x08;
      buf[13] = 0;
      buf[14] = 0x40 | (rnd() & 15);
      buf[23] = 6;
      buf[20] = 0;
      buf[21] = 0;
    }
    const lt = links[rnd() % links.length] ?? LINKTYPE_ETHERNET;
    const s = decodeFrame(lt, buf, 0, len, seg);
    seen.add(s);
    parseIpv4Tcp(buf, rnd() % 30, len, seg, (i & 2) !== 0);
  }
  const frames = loadFrames('eth');
  for (let i = 0; i < 20000; i++) {
    const f = frames[rnd() % frames.length];
    assert.ok(f);
    const b = Buffer.from(f.bytes);
    for (let k = 1 + (rnd() % 4); k > 0; k--) b[rnd() % b.length] = rnd() & 255;
    const s = decodeFrame(f.linkType, b, 0, b.length, seg);
    seen.add(s);
    if (s === 'ok') assert.ok(payloadCaptured(seg) >= 0 && payloadCaptured(seg) <= seg.payloadLen);
  }
  for (const s of seen) assert.ok(STATUSES.has(s));
  assert.ok(seen.size >= 7, [...seen].join(','));
});
