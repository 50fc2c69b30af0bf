/**
 * IPv6 decoding on real frames (test/fixtures/wire/*6.hex, make-fixtures6.sh): extension
 * headers walked, fragments, every link type (Ethernet, SLL, SLL2, RAW, NULL, pcapng with
 * two IDBs), hostile chains and truncations; and the address table (ipv6.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeFrame, parseIpTcp, parseIpv4Tcp, parseIpv6Tcp, type DecodeStatus } from '../../../src/core/wire/decode';
import {
  addressHash,
  internIpv6,
  internIpv6Words,
  IPV6_BASE,
  ipv6ToString,
  isIpv6,
  parseIpv6,
  parseIpv6Words,
  writeIpv6,
} from '../../../src/core/wire/ipv6';
import { endpointToString, ipToString, newSegment, parseIp, TCP_SYN } from '../../../src/core/wire/segment';
import {
  LINKTYPE_ETHERNET,
  LINKTYPE_LINUX_SLL,
  LINKTYPE_LINUX_SLL2,
  LINKTYPE_LOOP,
  LINKTYPE_NULL,
  LINKTYPE_RAW,
} from '../../../src/core/wire/link';
import { CaptureFileReader } from '../../../src/io/capture-file/reader';
import { loadFrames, prng } from './fixture-frames';

const eth6 = loadFrames('eth6');
function frame(i: number): Buffer {
  const f = eth6[i];
  assert.ok(f, `eth6 frame ${i}`);
  return Buffer.from(f.bytes);
}
const SYN = 5; // 2001:2:0:6::1.54758 > 2001:2:0:6::2.8080: Flags [S]
const DATA = 8; // the GET, 91 bytes
const UDP_FRAG1 = 25;
const UDP_FRAG2 = 26;
const HBH_SYN = 28;
const DST_SYN = 31;
const RT_SYN = 34;
const TCP_FRAG1 = 35;
const TCP_FRAG2 = 36;
const MLD_HBH = 1; // ICMPv6 after a hop-by-hop header (router alert)

test('a plain IPv6 SYN and data segment: addresses, ports, lengths, options', () => {
  const seg = newSegment();
  assert.equal(decodeFrame(LINKTYPE_ETHERNET, frame(SYN), 0, frame(SYN).length, seg), 'ok');
  assert.ok(isIpv6(seg.srcIp) && isIpv6(seg.dstIp));
  assert.equal(ipToString(seg.srcIp), '2001:2:0:6::1');
  assert.equal(endpointToString(seg.dstIp, seg.dstPort), '[2001:2:0:6::2]:8080');
  assert.deepEqual(
    [seg.ipOff, seg.ipHdrLen, seg.ipTotalLen, seg.tcpOff, seg.tcpHdrLen, seg.payloadLen, seg.ipId, seg.ttl],
    [14, 40, 80, 54, 40, 0, 0, 64],
  );
  assert.deepEqual(
    [seg.flags, seg.seq, seg.mss, seg.wscale, seg.sackOk, seg.hasTs],
    [TCP_SYN, 831195, 1440, 10, true, true],
  );
  const d = frame(DATA);
  assert.equal(decodeFrame(LINKTYPE_ETHERNET, d, 0, d.length, seg), 'ok');
  assert.deepEqual([seg.payloadOff, seg.payloadLen], [54 + 32, 91]);
  assert.equal(d.subarray(seg.payloadOff, seg.payloadOff + 4).toString(), 'GET ');
});

test('extension headers are walked to TCP: hop-by-hop, destination options, routing + destination options', () => {
  const seg = newSegment();
  const want: [number, number][] = [
    [HBH_SYN, 48],
    [DST_SYN, 48],
    [RT_SYN, 72],
  ];
  for (const [i, hl] of want) {
    const f = frame(i);
    assert.equal(decodeFrame(LINKTYPE_ETHERNET, f, 0, f.length, seg), 'ok', `frame ${i}`);
    assert.deepEqual([seg.ipHdrLen, seg.tcpOff, seg.srcPort, seg.dstPort, seg.seq], [hl, 14 + hl, 54758, 8080, 831195]);
    assert.deepEqual([seg.payloadLen, seg.mss, seg.wscale], [0, 1440, 10]);
  }
  const m = frame(MLD_HBH);
  assert.equal(decodeFrame(LINKTYPE_ETHERNET, m, 0, m.length, seg), 'not-tcp');
});

test('IPv6 fragments of any protocol are fragments (never replayed)', () => {
  const seg = newSegment();
  for (const i of [UDP_FRAG1, UDP_FRAG2, TCP_FRAG1, TCP_FRAG2]) {
    const f = frame(i);
    assert.equal(decodeFrame(LINKTYPE_ETHERNET, f, 0, f.length, seg), 'fragment', `frame ${i}`);
    assert.equal(ipToString(seg.dstIp), '2001:2:0:6::2');
  }
});

test('the same connection decodes alike on SLL, SLL2, RAW, NULL and LOOP link types', () => {
  const seg = newSegment();
  const key = (): string => `${ipToString(seg.srcIp)} ${seg.srcPort} ${seg.seq} ${seg.flags} ${seg.payloadLen}`;
  const e = frame(DATA);
  assert.equal(decodeFrame(LINKTYPE_ETHERNET, e, 0, e.length, seg), 'ok');
  const want = key();
  for (const [name, lt] of [
    ['sll6', LINKTYPE_LINUX_SLL],
    ['sll26', LINKTYPE_LINUX_SLL2],
  ] as const) {
    const f = loadFrames(name).find((x) => x.text.includes('seq 831196:831287') && x.text.includes('> 2001:2:0:6::2'));
    assert.ok(f, name);
    assert.equal(f.linkType, lt);
    assert.equal(decodeFrame(lt, f.bytes, 0, f.bytes.length, seg), 'ok', name);
    assert.equal(key(), want, name);
  }
  const ip = e.subarray(14);
  assert.equal(decodeFrame(LINKTYPE_RAW, ip, 0, ip.length, seg), 'ok');
  assert.equal(key(), want);
  for (const fam of [10, 24, 28, 30]) {
    const b = Buffer.concat([Buffer.from([fam, 0, 0, 0]), ip]);
    assert.equal(decodeFrame(LINKTYPE_NULL, b, 0, b.length, seg), 'ok');
    assert.equal(key(), want);
  }
  // LOOP (OpenBSD): the family in network byte order (AF_INET6 is 24 there)
  const loop = Buffer.concat([Buffer.from([0, 0, 0, 24]), ip]);
  assert.equal(decodeFrame(LINKTYPE_LOOP, loop, 0, loop.length, seg), 'ok');
  assert.equal(key(), want);
  const arp = Buffer.concat([Buffer.from([0, 0, 0, 99]), ip]);
  assert.notEqual(decodeFrame(LINKTYPE_LOOP, arp, 0, arp.length, seg), 'ok', 'an unknown family is not IP');
});

test('pcapng with an Ethernet and a cooked IDB: IPv6 frames of both decode', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tcr-v6-'));
  try {
    const blk = (type: number, body: Buffer): Buffer => {
      const padded = Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
      const h = Buffer.alloc(8);
      h.writeUInt32LE(type, 0);
      h.writeUInt32LE(12 + padded.length, 4);
      const t = Buffer.alloc(4);
      t.writeUInt32LE(12 + padded.length, 0);
      return Buffer.concat([h, padded, t]);
    };
    const shbBody = Buffer.alloc(16, 0xff);
    shbBody.writeUInt32LE(0x1a2b3c4d, 0);
    shbBody.writeUInt16LE(1, 4);
    shbBody.writeUInt16LE(0, 6);
    const idb = (lt: number): Buffer => {
      const b = Buffer.alloc(8);
      b.writeUInt16LE(lt, 0);
      b.writeUInt32LE(65535, 4);
      return blk(1, b);
    };
    const epb = (ifId: number, data: Buffer): Buffer => {
      const b = Buffer.alloc(20);
      b.writeUInt32LE(ifId, 0);
      b.writeUInt32LE(data.length, 12);
      b.writeUInt32LE(data.length, 16);
      return blk(6, Buffer.concat([b, data]));
    };
    const sll2 = loadFrames('sll26').find((x) => x.text.includes('Flags [S]') && x.text.includes('> 2001:2:0:6::2'));
    assert.ok(sll2);
    const file = join(dir, 'v6.pcapng');
    writeFileSync(
      file,
      Buffer.concat([
        blk(0x0a0d0d0a, shbBody),
        idb(LINKTYPE_ETHERNET),
        idb(LINKTYPE_LINUX_SLL2),
        epb(0, frame(SYN)),
        epb(1, sll2.bytes),
        epb(0, frame(HBH_SYN)),
      ]),
    );
    const r = await CaptureFileReader.open(file);
    const seg = newSegment();
    const got: string[] = [];
    const rx = {
      packet(lt: number, buf: Buffer, off: number, capLen: number): void {
        const st: DecodeStatus = decodeFrame(lt, buf, off, capLen, seg);
        got.push(`${lt} ${st} ${ipToString(seg.srcIp)}.${seg.srcPort}`);
      },
    };
    while (await r.readBatch(rx, 16));
    await r.close();
    assert.deepEqual(got, ['1 ok 2001:2:0:6::1.54758', '276 ok 2001:2:0:6::1.54758', '1 ok 2001:2:0:6::1.54758']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** The SYN's IPv6 packet with extension headers `ext` (each a [type, bytes]) before TCP. */
function withExt(ext: [number, Buffer][]): Buffer {
  const ip = frame(SYN).subarray(14);
  const tcp = ip.subarray(40);
  const chain: Buffer[] = [];
  for (let i = 0; i < ext.length; i++) {
    const b = Buffer.from((ext[i] as [number, Buffer])[1]);
    b[0] = i + 1 < ext.length ? (ext[i + 1] as [number, Buffer])[0] : 6;
    chain.push(b);
  }
  const body = Buffer.concat([...chain, tcp]);
  const h = Buffer.from(ip.subarray(0, 40));
  h.writeUInt16BE(body.length, 4);
  h[6] = ext.length > 0 ? (ext[0] as [number, Buffer])[0] : 6;
  return Buffer.concat([h, body]);
}

test('hostile extension chains: too long, past the payload, cut, AH, no-next-header, ESP', () => {
  const seg = newSegment();
  const opt8 = (): Buffer => Buffer.from([0, 0, 1, 4, 0, 0, 0, 0]);
  const p = (b: Buffer): DecodeStatus => parseIpv6Tcp(b, 0, b.length, seg);
  assert.equal(p(withExt(Array.from({ length: 8 }, () => [60, opt8()] as [number, Buffer]))), 'ok');
  assert.equal(seg.ipHdrLen, 40 + 64);
  assert.equal(p(withExt(Array.from({ length: 9 }, () => [60, opt8()] as [number, Buffer]))), 'bad-ip-header');
  const ah = Buffer.alloc(24); // AH: length in 4-byte units minus 2 (24 bytes -> 4)
  ah[1] = 4;
  assert.equal(p(withExt([[51, ah]])), 'ok');
  assert.equal(seg.ipHdrLen, 64);
  const long = withExt([[60, opt8()]]);
  long[41] = 200; // claims 1608 bytes
  assert.equal(p(long), 'bad-ip-header');
  const cut = withExt([[0, opt8()]]);
  assert.equal(parseIpv6Tcp(cut, 0, 45, seg), 'truncated');
  assert.equal(parseIpv6Tcp(cut, 0, 41, seg), 'truncated');
  const none = withExt([[60, opt8()]]);
  none[40] = 59;
  assert.equal(p(none), 'not-tcp');
  const esp = withExt([]);
  esp[6] = 50;
  assert.equal(p(esp), 'not-tcp');
  const v4 = Buffer.from(frame(SYN).subarray(14));
  v4[0] = 0x45;
  assert.equal(parseIpv6Tcp(v4, 0, v4.length, seg), 'bad-ip-header');
  assert.equal(parseIpv4Tcp(frame(SYN).subarray(14), 0, 60, seg), 'ipv6');
  assert.equal(parseIpTcp(frame(SYN).subarray(14), 0, 80, seg), 'ok');
  const gso = withExt([]);
  gso.writeUInt16BE(0, 4); // payload length 0: GSO capture, the captured length counts
  assert.equal(p(gso), 'ok');
  assert.equal(seg.ipTotalLen, gso.length);
});

test('every truncation and random corruption of IPv6 frames: a status, never a throw', () => {
  const seg = newSegment();
  const rnd = prng(6);
  for (const i of [SYN, DATA, HBH_SYN, RT_SYN, TCP_FRAG1]) {
    const f = frame(i);
    for (let n = 0; n <= f.length; n++) {
      const st = decodeFrame(LINKTYPE_ETHERNET, f, 0, n, seg);
      if (n < f.length && i !== TCP_FRAG1 && i !== DATA) assert.notEqual(st, 'ok', `frame ${i} cut at ${n}`);
    }
    for (let k = 0; k < 300; k++) {
      const b = Buffer.from(f);
      for (let j = 0; j < 4; j++) b[14 + (rnd() % (b.length - 14))] = rnd() & 0xff;
      decodeFrame(LINKTYPE_ETHERNET, b, 0, b.length, seg);
    }
  }
});

test('address table: the same bytes give the same id, text forms per RFC 5952, stable hashes', () => {
  const a = parseIpv6('2001:2:0:6::1');
  assert.ok(a >= IPV6_BASE);
  assert.equal(parseIpv6('2001:0002:0000:0006:0000:0000:0000:0001'), a);
  const b = Buffer.alloc(16);
  writeIpv6(a, b, 0);
  assert.equal(b.toString('hex'), '20010002000000060000000000000001');
  assert.equal(internIpv6(b, 0), a);
  assert.equal(ipv6ToString(a), '2001:2:0:6::1');
  for (const [text, want] of [
    ['::1', '::1'],
    ['::', '::'],
    ['2001:db8::1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['::ffff:198.18.0.1', '::ffff:c612:1'],
    ['FE80::A', 'fe80::a'],
  ]) {
    assert.equal(ipv6ToString(parseIpv6(text as string)), want, text);
  }
  for (const bad of ['1::2::3', '1:2:3:4:5:6:7:8:9', '12345::', ':::', '1.2.3.4', '', 'g::1', '1:2:3:4:5:6:7::8:9']) {
    assert.equal(parseIpv6Words(bad), null, bad);
  }
  assert.equal(parseIp('198.18.0.1'), 0xc6120001);
  assert.equal(parseIp('::1'), parseIpv6('::1'));
  assert.equal(parseIp('nope'), -1);
  // hashes come from the bytes, not from the order of interning
  assert.equal(addressHash(parseIpv6('2001:2::77')), addressHash(parseIpv6('2001:2:0:0:0:0:0:77')));
  assert.notEqual(addressHash(parseIpv6('2001:2::77')), addressHash(parseIpv6('2001:2::78')));
  assert.equal(addressHash(0xc6120001), 0xc6120001);
  // thousands of addresses (the table grows) keep their ids
  const ids: number[] = [];
  for (let i = 0; i < 5000; i++) ids.push(parseIpv6(`2001:2:0:9::${i.toString(16)}`));
  for (let i = 0; i < 5000; i++) assert.equal(parseIpv6(`2001:2:0:9::${i.toString(16)}`), ids[i]);
  assert.equal(new Set(ids).size, 5000);
  assert.ok(Number.isSafeInteger(Math.max(...ids) * 65536 + 65535));
});

test('the decoder memo: many addresses alternating with a repeated one keep their ids; writeIpv6 stays inside its Buffer', () => {
  const server = parseIpv6('2001:2::1');
  const pkt = Buffer.alloc(60);
  pkt[0] = 0x60;
  pkt[5] = 20; // payload length: the TCP header
  pkt[6] = 6;
  pkt[52] = 0x50; // data offset 5
  const seg = newSegment();
  for (let i = 0; i < 2000; i++) {
    const client = internIpv6Words(0x20010002, 0, i % 7, i);
    // client -> server, then server -> client: the memo of each position sees both
    writeIpv6(client, pkt, 8);
    writeIpv6(server, pkt, 24);
    assert.equal(parseIpv6Tcp(pkt, 0, 60, seg), 'ok');
    assert.equal(seg.srcIp, client);
    assert.equal(seg.dstIp, server);
    writeIpv6(server, pkt, 8);
    writeIpv6(client, pkt, 24);
    parseIpv6Tcp(pkt, 0, 60, seg);
    assert.equal(seg.srcIp, server);
    assert.equal(seg.dstIp, client);
  }
  // a Buffer that is a slice of a larger ArrayBuffer: nothing written beyond its end
  const whole = Buffer.alloc(64, 0xee);
  const slice = whole.subarray(10, 30);
  writeIpv6(server, slice, 10);
  assert.deepEqual([...whole.subarray(20, 30)], [0x20, 0x01, 0, 0x02, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...whole.subarray(30)], new Array<number>(34).fill(0xee));
  writeIpv6(server, slice, 2);
  assert.deepEqual([...whole.subarray(12, 28)], [0x20, 0x01, 0, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
});
