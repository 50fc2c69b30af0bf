/**
 * decodeFrame against real frames captured by tcpdump (test/fixtures/wire, see its README):
 * every frame of every capture is decoded and compared with what tcpdump itself printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeFrame, linkNetworkOffset, payloadCaptured, type DecodeStatus } from '../../../src/core/wire/decode';
import {
  tcpChecksum,
  tcpChecksum6,
  verifyIpv4TcpChecksums,
  verifyIpv6TcpChecksum,
} from '../../../src/core/wire/checksum';
import { isIpv6 } from '../../../src/core/wire/ipv6';
import { newSegment, parseIp, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN } from '../../../src/core/wire/segment';
import { LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2 } from '../../../src/core/wire/link';
import { loadFrames, parseTcpdumpTcp, type Frame } from './fixture-frames';

const CAPTURES = ['eth', 'eth-snap96', 'sll', 'sll2', 'lo', 'eth6', 'sll6', 'sll26', 'lo6'];

/** The status tcpdump's text implies for a frame that is not a decoded IPv4 TCP packet. */
function expectedNonTcp(f: Frame): DecodeStatus {
  const t = f.text;
  if (/ethertype ARP/.test(t)) return 'not-ipv4';
  if (/ethertype IPv6/.test(t)) return /: frag \(/.test(t) ? 'fragment' : 'not-tcp'; // UDP, ICMPv6 (MLD after a hop-by-hop header)
  if (/IP0 \(invalid\)/.test(t)) return 'bad-ip-header';
  // Cooked captures of 802.1ad+802.1Q frames lose the inner TPID (see README): not IP.
  if (/ethertype 802\.1Q-QinQ \(0x88a8\), length \d+: \| 0x0000:/.test(t)) return 'bad-ip-header';
  // tcpdump does not decode 0x9100 in cooked captures; we do (checked separately below).
  if (/ethertype 802\.1Q-9100 \(0x9100\), length \d+: \| 0x0000:/.test(t)) return 'ok';
  const ip = /offset (\d+), flags \[([^\]]*)\], proto \w+ \((\d+)\)/.exec(t);
  if (ip && (ip[1] !== '0' || ip[2]?.includes('+'))) return 'fragment';
  if (ip && ip[3] !== '6') return 'not-tcp';
  throw new Error(`unclassified fixture frame: ${t}`);
}

for (const name of CAPTURES) {
  test(`${name}: every frame decodes to what tcpdump printed`, () => {
    const frames = loadFrames(name);
    assert.ok(frames.length > 10);
    const seg = newSegment();
    let tcpFrames = 0;
    for (const f of frames) {
      const st = decodeFrame(f.linkType, f.bytes, 0, f.bytes.length, seg);
      const want = parseTcpdumpTcp(f.text);
      const where = `${name}#${f.index}: ${f.text.slice(0, 160)}`;
      if (want === null) {
        assert.equal(st, expectedNonTcp(f), where);
        continue;
      }
      tcpFrames++;
      assert.equal(st, 'ok', where);
      assert.equal(seg.srcIp, parseIp(want.src), where);
      assert.equal(seg.dstIp, parseIp(want.dst), where);
      assert.equal(seg.srcPort, want.srcPort, where);
      assert.equal(seg.dstPort, want.dstPort, where);
      assert.equal(seg.flags, want.flags, where);
      assert.equal(seg.seq, want.seq, where);
      if (want.ack !== null) assert.equal(seg.ack, want.ack, where);
      assert.equal(seg.window, want.win, where);
      assert.equal(seg.ipId, want.ipId, where);
      assert.equal(seg.ttl, want.ttl, where);
      assert.equal(seg.ipTotalLen, want.ipLen, where);
      assert.equal(seg.payloadLen, want.payloadLen, where);
      assert.equal(seg.mss, want.mss, where);
      assert.equal(seg.wscale, want.wscale, where);
      assert.equal(seg.sackOk, want.sackOk, where);
      assert.equal(seg.hasTs, want.ts !== null, where);
      if (want.ts) assert.deepEqual([seg.tsVal, seg.tsEcr], want.ts, where);
      assert.equal(payloadCaptured(seg), Math.min(seg.payloadLen, f.bytes.length - seg.payloadOff), where);
      if (want.cksum && isIpv6(seg.srcIp)) {
        assert.equal(f.bytes.readUInt16BE(seg.tcpOff + 16), want.cksum.value, where);
        // tcpdump takes a routing header's final destination into the pseudo header; we never send one
        if (f.text.includes('RT6 (')) continue;
        assert.equal(verifyIpv6TcpChecksum(f.bytes, seg.ipOff, seg.tcpOff), want.cksum.correct, where);
        assert.equal(tcpChecksum6(f.bytes, seg.ipOff, seg.tcpOff), want.cksum.computed, where);
      } else if (want.cksum) {
        assert.equal(f.bytes.readUInt16BE(seg.tcpOff + 16), want.cksum.value, where);
        const v = verifyIpv4TcpChecksums(f.bytes, seg.ipOff);
        assert.deepEqual(v, { ip: true, tcp: want.cksum.correct }, where);
        // Same value tcpdump computed, also for loopback's partial (offloaded) checksums.
        assert.equal(tcpChecksum(f.bytes, seg.ipOff), want.cksum.computed, where);
      }
    }
    assert.ok(tcpFrames >= 10, `${name}: ${tcpFrames} TCP frames`);
  });
}

test('eth: client SYN fields (tcpdump: Flags [S], seq 2283472034, win 64240, mss 1460,sackOK,TS val 2658825733 ecr 0,nop,wscale 10)', () => {
  const f = loadFrames('eth')[2];
  assert.ok(f);
  const seg = newSegment();
  assert.equal(decodeFrame(f.linkType, f.bytes, 0, f.bytes.length, seg), 'ok');
  assert.equal(seg.buf, f.bytes);
  assert.deepEqual(
    [seg.ipOff, seg.ipHdrLen, seg.ipTotalLen, seg.capLen, seg.tcpOff, seg.tcpHdrLen, seg.payloadOff, seg.payloadLen],
    [14, 20, 60, 60, 34, 40, 74, 0],
  );
  assert.equal(seg.srcIp, 0xc613d501);
  assert.equal(seg.dstIp, 0xc613d502);
  assert.deepEqual(
    [seg.srcPort, seg.dstPort, seg.seq, seg.ack, seg.flags, seg.window],
    [36104, 8080, 2283472034, 0, TCP_SYN, 64240],
  );
  assert.deepEqual(
    [seg.mss, seg.sackOk, seg.hasTs, seg.tsVal, seg.tsEcr, seg.wscale],
    [1460, true, true, 2658825733, 0, 10],
  );
  assert.deepEqual([seg.ipId, seg.ttl], [25681, 64]);
});

test('eth: data, FIN and RST segments', () => {
  const frames = loadFrames('eth');
  const seg = newSegment();
  const dec = (i: number): void => {
    const f = frames[i];
    assert.ok(f);
    assert.equal(decodeFrame(f.linkType, f.bytes, 0, f.bytes.length, seg), 'ok');
  };
  dec(9); // seq 2677204334:2677205782, ack 2283472123, win 64, length 1448
  assert.deepEqual(
    [seg.seq, seg.ack, seg.flags, seg.window, seg.payloadLen, payloadCaptured(seg)],
    [2677204334, 2283472123, TCP_ACK, 64, 1448, 1448],
  );
  assert.equal(seg.buf.toString('latin1', seg.payloadOff, seg.payloadOff + 10), 'line 0000 ');
  dec(5); // the GET request
  assert.equal(seg.flags, TCP_PSH | TCP_ACK);
  assert.equal(
    seg.buf.toString('latin1', seg.payloadOff, seg.payloadOff + seg.payloadLen).split('\r\n')[0],
    'GET /big.txt HTTP/1.1',
  );
  dec(17); // client FIN: Flags [F.], seq 2283472123, ack 2677209459
  assert.deepEqual([seg.flags, seg.seq, seg.ack], [TCP_FIN | TCP_ACK, 2283472123, 2677209459]);
  dec(21); // RST: Flags [R.], seq 0, ack 2329959625, win 0, no options
  assert.deepEqual([seg.flags, seg.seq, seg.ack, seg.window, seg.tcpHdrLen], [TCP_RST | TCP_ACK, 0, 2329959625, 0, 20]);
  assert.deepEqual([seg.mss, seg.wscale, seg.sackOk, seg.hasTs], [0, -1, false, false], 'options reset');
});

test('network offsets: Ethernet 14, 802.1Q 18, QinQ and 0x9100 22, SLL 16, SLL2 20, ARP -3', () => {
  const eth = loadFrames('eth');
  const off = (f: Frame | undefined): number => (f ? linkNetworkOffset(f.linkType, f.bytes, 0, f.bytes.length) : NaN);
  assert.equal(off(eth[0]), -3); // ARP
  assert.equal(off(eth[2]), 14);
  assert.equal(off(eth[30]), 18); // vlan 100
  assert.equal(off(eth[32]), 22); // vlan 200 (802.1ad) + vlan 300
  assert.equal(off(eth[34]), 22); // vlan 5 (0x9100) + vlan 6
  const sll = loadFrames('sll');
  assert.equal(sll[2]?.linkType, LINKTYPE_LINUX_SLL);
  assert.equal(off(sll[2]), 16);
  assert.equal(off(sll[30]), 20); // cooked v1 with the 802.1Q tag put back by libpcap
  const sll2 = loadFrames('sll2');
  assert.equal(sll2[2]?.linkType, LINKTYPE_LINUX_SLL2);
  assert.equal(off(sll2[2]), 20);
  assert.equal(eth[2]?.linkType, LINKTYPE_ETHERNET);
});

test('VLAN-tagged frames decode to the same segment as the untagged original', () => {
  const eth = loadFrames('eth');
  const a = newSegment();
  const b = newSegment();
  for (const [tagged, plain] of [
    [30, 2],
    [31, 5],
    [32, 2],
    [33, 5],
    [34, 2],
    [35, 5],
  ] as const) {
    const t = eth[tagged];
    const p = eth[plain];
    assert.ok(t && p);
    assert.equal(decodeFrame(t.linkType, t.bytes, 0, t.bytes.length, a), 'ok');
    assert.equal(decodeFrame(p.linkType, p.bytes, 0, p.bytes.length, b), 'ok');
    const pick = (s: typeof a): unknown[] => [
      s.srcIp,
      s.dstIp,
      s.srcPort,
      s.dstPort,
      s.seq,
      s.ack,
      s.flags,
      s.window,
      s.payloadLen,
      s.mss,
      s.wscale,
      s.tsVal,
    ];
    assert.deepEqual(pick(a), pick(b));
    assert.equal(a.ipOff - b.ipOff, tagged < 32 ? 4 : 8);
  }
  for (const name of ['sll', 'sll2']) {
    // 0x9100 + 802.1Q in cooked captures
    const fr = loadFrames(name)[34];
    assert.ok(fr);
    assert.equal(decodeFrame(fr.linkType, fr.bytes, 0, fr.bytes.length, a), 'ok', name);
    assert.deepEqual([a.srcPort, a.dstPort, a.seq, a.flags], [36104, 8080, 2283472034, TCP_SYN]);
  }
});

test('snaplen 96: payload length from the IP header, payloadCaptured from the bytes present', () => {
  const f = loadFrames('eth-snap96').find((x) => / length 1448: /.test(x.text));
  assert.ok(f);
  assert.equal(f.bytes.length, 96);
  const seg = newSegment();
  assert.equal(decodeFrame(f.linkType, f.bytes, 0, f.bytes.length, seg), 'ok');
  assert.equal(seg.payloadLen, 1448);
  assert.equal(seg.capLen, 82);
  assert.equal(payloadCaptured(seg), 96 - 14 - 20 - 32);
  assert.deepEqual(verifyIpv4TcpChecksums(f.bytes, 14), { ip: true, tcp: false });
});
