/**
 * Channel v2 IPv6 (issue 16, step 4): the 46-byte IPv6 CLIENT_ADD/CLIENT_DEL and the 88-byte
 * IPv6 records, against the byte-exact fixtures make-fixtures6.py built from the real IPv6
 * replies of test/fixtures/wire/eth6.pcap; intercept's core and both real sides over loopback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  ClientMsgDecoder,
  encodeClientAny,
  encodeClientMsg6,
  encodeHello,
  type ClientMsgHandler,
} from '../../../src/channel/client-msg';
import { MSG_CLIENT_ADD, MSG_CLIENT_DEL, MSG_FLAG_PAYLOAD } from '../../../src/channel/constants';
import { capClass, payloadAddType } from '../../../src/channel/caps';
import { FrameDecoder, FrameEncoder } from '../../../src/channel/frame';
import {
  CHANNEL_VERSION_V2,
  V2_IPV6_PACKET_BYTES,
  V2_NET_OFF,
  V2_REC_PAYLOAD,
  V2_RECORD_BYTES,
  v2PayloadBytes,
  v2TailLength,
  v2ToV1,
  writeRecordV2,
  writeRecordV2Payload,
} from '../../../src/channel/v2';
import { decodeFrame, parseIpTcp } from '../../../src/core/wire/decode';
import { parseIpv6 } from '../../../src/core/wire/ipv6';
import { ipToString, newSegment, parseIpv4, type TcpSegment } from '../../../src/core/wire/segment';
import { InterceptCore, type Peer } from '../../../src/intercept/core';
import { Intercept } from '../../../src/intercept/intercept';
import { nullLogger } from '../../../src/intercept/types';
import { ChannelClient } from '../../../src/io/channel-client';
import type { PacketReceiver, PacketSource, SourceStats } from '../../../src/io/types';
import { FIXTURES, hex, readPcap } from './fixtures';

interface Want {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  flags: number;
  tcpHdrLen: number;
  payloadLen: number;
  carried?: number;
}
const EXPECTED = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'expected6.json'), 'utf8')) as {
  'frame-v2-ipv6': Want[];
  'frame-v2-ipv6-pay': Want[];
  'frame-v2-ipv6-edge': Want[];
  'edge-packets': string[];
};

const pcap = readPcap(path.join('..', 'wire', 'eth6.pcap'));
/** The 11 real replies ([2001:2:0:6::2]:8080 -> [2001:2:0:6::1]:54758) and their frame indexes. */
const REPLIES: { seg: TcpSegment; index: number }[] = [];
pcap.frames.forEach((f, index) => {
  const seg = newSegment();
  if (decodeFrame(pcap.linkType, f, 0, f.length, seg) === 'ok' && seg.srcPort === 8080) REPLIES.push({ seg, index });
});
const SERVER = parseIpv6('2001:2:0:6::2');
const CLIENT = parseIpv6('2001:2:0:6::1');
const C = parseIpv6('2001:2:1::5');
const T = parseIpv6('2001:2:20::2');

function values(s: TcpSegment): Want {
  return {
    src: ipToString(s.srcIp),
    dst: ipToString(s.dstIp),
    srcPort: s.srcPort,
    dstPort: s.dstPort,
    seq: s.seq,
    ack: s.ack,
    flags: s.flags,
    tcpHdrLen: s.tcpHdrLen,
    payloadLen: s.payloadLen,
  };
}

test('IPv6 CLIENT_ADD / CLIENT_DEL encode to the fixture bytes (46 bytes, IPv4 fields zero)', () => {
  assert.equal(REPLIES.length, 11);
  const b = Buffer.alloc(46);
  assert.equal(encodeClientMsg6(b, 0, MSG_CLIENT_ADD, C, 40000, T, 8080), 46);
  assert.deepEqual(b, hex('client-add6.hex'));
  encodeClientMsg6(b, 0, MSG_CLIENT_ADD | MSG_FLAG_PAYLOAD, C, 40000, T, 8080);
  assert.deepEqual(b, hex('client-add6-payload.hex'));
  encodeClientMsg6(b, 0, MSG_CLIENT_DEL, C, 40000, T, 8080);
  assert.deepEqual(b, hex('client-del6.hex'));
  // encodeClientAny picks the form by family; IPv4 stays the 1.x bytes
  assert.equal(encodeClientAny(b, 0, MSG_CLIENT_DEL, C, 40000, T, 8080), 46);
  assert.deepEqual(b, hex('client-del6.hex'));
  const v4 = Buffer.alloc(14);
  assert.equal(
    encodeClientAny(v4, 0, MSG_CLIENT_ADD, parseIpv4('198.18.1.5'), 40000, parseIpv4('198.18.20.2'), 8080),
    14,
  );
  assert.deepEqual(v4, hex('client-add.hex'));
});

type Ev = [string, ...(number | string)[]];
function recorder(): { h: ClientMsgHandler; ev: Ev[] } {
  const ev: Ev[] = [];
  return {
    ev,
    h: {
      hello: (v) => ev.push(['hello', v]),
      client: (t, a, p, c, q, f) => ev.push(['client', t, ipToString(a), p, ipToString(c), q, f]),
      bad: (t) => ev.push(['bad', t]),
    },
  };
}

test('v2 decoder: IPv6 and IPv4 messages mixed, split at every pair of points, give the same messages', () => {
  const hello = Buffer.alloc(14);
  encodeHello(hello, 0, CHANNEL_VERSION_V2);
  const stream = Buffer.concat([
    hello,
    hex('client-add6.hex'),
    hex('client-add.hex'),
    hex('client-add6-payload.hex'),
    hex('client-del6.hex'),
    hex('client-del.hex'),
  ]);
  const want: Ev[] = [
    ['hello', CHANNEL_VERSION_V2],
    ['client', 1, '2001:2:1::5', 40000, '2001:2:20::2', 8080, 0],
    ['client', 1, '198.18.1.5', 40000, '198.18.20.2', 8080, 0],
    ['client', 1, '2001:2:1::5', 40000, '2001:2:20::2', 8080, 1],
    ['client', 2, '2001:2:1::5', 40000, '2001:2:20::2', 8080, 0],
    ['client', 2, '198.18.1.5', 40000, '198.18.20.2', 8080, 0],
  ];
  for (let i = 0; i <= stream.length; i++)
    for (let j = i; j <= stream.length; j += 3) {
      const { h, ev } = recorder();
      const d = new ClientMsgDecoder(h, 16, true);
      assert.equal(d.feed(stream.subarray(0, i)), 'ok');
      assert.equal(d.feed(stream.subarray(i, j)), 'ok');
      assert.equal(d.feed(stream.subarray(j)), 'ok');
      assert.deepEqual(ev, want, `split ${i},${j}`);
      assert.equal(d.messages, 6);
    }
});

test('IPv6 messages: an unknown 14-byte type for a 1.x decoder; non-zero IPv4 fields are bad', () => {
  const hello = Buffer.alloc(14);
  encodeHello(hello, 0);
  const { h, ev } = recorder();
  const d = new ClientMsgDecoder(h, 16, false);
  assert.equal(d.feed(Buffer.concat([hello, hex('client-add6.hex').subarray(0, 14)])), 'ok');
  assert.deepEqual(ev, [
    ['hello', 6],
    ['bad', 0x0011],
  ]);
  // v2: an IPv6 message whose IPv4 client field is not zero is refused whole (46 bytes consumed)
  const bad = Buffer.from(hex('client-add6.hex'));
  bad[0] = 1;
  encodeHello(hello, 0, CHANNEL_VERSION_V2);
  const r = recorder();
  const d2 = new ClientMsgDecoder(r.h, 16, true);
  assert.equal(d2.feed(Buffer.concat([hello, bad, hex('client-add.hex')])), 'ok');
  assert.deepEqual(r.ev, [
    ['hello', 7],
    ['bad', 0x0011],
    ['client', 1, '198.18.1.5', 40000, '198.18.20.2', 8080, 0],
  ]);
});

test('IPv6 v2 records of the real replies equal the fixture, and parse back to their values', () => {
  const enc = new FrameEncoder(V2_RECORD_BYTES);
  for (const { seg } of REPLIES) {
    const at = enc.reserve();
    writeRecordV2(seg, enc.buffer, at);
  }
  const bytes = enc.take() as Buffer;
  assert.deepEqual(bytes, hex('frame-v2-ipv6.hex'));
  const got: Want[] = [];
  const s = newSegment();
  const back = Buffer.alloc(64);
  const dec = new FrameDecoder(
    V2_RECORD_BYTES,
    (b, o, l) => {
      assert.equal(l, V2_RECORD_BYTES);
      assert.equal(v2ToV1(b, o, back, 0), 6);
      assert.equal(parseIpTcp(b, o + V2_NET_OFF, V2_IPV6_PACKET_BYTES, s, true), 'ok');
      got.push(values(s));
    },
    v2TailLength,
  );
  for (let i = 0; i < bytes.length; i += 37) assert.equal(dec.feed(bytes, i, Math.min(37, bytes.length - i)), 'ok');
  assert.deepEqual(got, EXPECTED['frame-v2-ipv6']);
  assert.equal(got[0]?.flags, 0x12, 'the SYN-ACK first');
});

test('IPv6 v2 payload records (--payload-max 1024): fixture bytes, payload tails, truncated flag', () => {
  const withPay = REPLIES.filter((r) => r.seg.payloadLen > 0);
  const enc = new FrameEncoder(V2_RECORD_BYTES);
  for (const { seg } of withPay) {
    const n = v2PayloadBytes(seg, 1024);
    const at = enc.reserve(V2_RECORD_BYTES + n); // before reading enc.buffer: reserve may grow it
    writeRecordV2Payload(seg, enc.buffer, at, n);
  }
  const bytes = enc.take() as Buffer;
  assert.deepEqual(bytes, hex('frame-v2-ipv6-pay.hex'));
  const got: (Want & { carried: number; truncated: boolean })[] = [];
  const s = newSegment();
  const dec = new FrameDecoder(
    V2_RECORD_BYTES,
    (b, o, l) => {
      assert.ok(((b[o + 1] as number) & V2_REC_PAYLOAD) !== 0);
      assert.equal(parseIpTcp(b, o + V2_NET_OFF, V2_IPV6_PACKET_BYTES, s, true), 'ok');
      got.push({ ...values(s), carried: l - V2_RECORD_BYTES, truncated: ((b[o + 1] as number) & 2) !== 0 });
    },
    v2TailLength,
  );
  for (let i = 0; i < bytes.length; i += 501) assert.equal(dec.feed(bytes, i, Math.min(501, bytes.length - i)), 'ok');
  assert.deepEqual(
    got.map(({ truncated: _t, ...v }) => v),
    EXPECTED['frame-v2-ipv6-pay'],
  );
  assert.deepEqual(
    got.map((g) => g.truncated),
    got.map((g) => g.carried < g.payloadLen),
  );
  assert.ok(got.some((g) => g.truncated) && got.some((g) => !g.truncated));
});

test('IPv6 record normalisation: extension headers dropped, a 52-byte TCP header cut to 44', () => {
  const enc = new FrameEncoder(V2_RECORD_BYTES);
  const segs = EXPECTED['edge-packets'].map((h) => {
    const b = Buffer.from(h, 'hex');
    const s = newSegment();
    assert.equal(parseIpTcp(b, 0, b.length, s), 'ok');
    return s;
  });
  assert.equal(segs[0]?.ipHdrLen, 64, 'three 8-byte extension headers');
  for (const s of segs) {
    const at = enc.reserve();
    writeRecordV2(s, enc.buffer, at);
  }
  const bytes = enc.take() as Buffer;
  assert.deepEqual(bytes, hex('frame-v2-ipv6-edge.hex'));
  const r = newSegment();
  const got: Want[] = [];
  for (let k = 0; k < segs.length; k++) {
    const o = 2 + k * V2_RECORD_BYTES;
    assert.equal(bytes[o + V2_NET_OFF + 6], 6, 'next header TCP');
    assert.equal(parseIpTcp(bytes, o + V2_NET_OFF, V2_IPV6_PACKET_BYTES, r, true), 'ok');
    got.push(values(r));
  }
  assert.deepEqual(got, EXPECTED['frame-v2-ipv6-edge']);
  assert.equal(got[1]?.tcpHdrLen, 44);
  assert.equal(got[0]?.payloadLen, 10);
  assert.equal(got[1]?.payloadLen, 30);
});

function core(): { core: InterceptCore; out: Map<Peer, Buffer[]> } {
  const out = new Map<Peer, Buffer[]>();
  const c = new InterceptCore(
    { holdMs: 2000 },
    (p, b) => {
      out.set(p, [...(out.get(p) ?? []), b]);
      return true;
    },
    nullLogger,
  );
  return { core: c, out };
}

function helloAnd(...msgs: Buffer[]): Buffer {
  const h = Buffer.alloc(14);
  encodeHello(h, 0, CHANNEL_VERSION_V2);
  return Buffer.concat([h, ...msgs]);
}

function msg6(type: number, cport: number): Buffer {
  const b = Buffer.alloc(46);
  encodeClientMsg6(b, 0, type, CLIENT, cport, SERVER, 8080);
  return b;
}

test('intercept core: IPv6 replies routed to the v2 peer that registered the client; a 1.x peer cannot', () => {
  const { core: c, out } = core();
  const v2 = c.addPeer('198.18.0.1:1000', true, '198.18.0.1');
  const v1 = c.addPeer('198.18.0.9:1000', false, '198.18.0.9');
  assert.equal(c.clientBytes(v2, helloAnd(msg6(MSG_CLIENT_ADD, 54758)), 0), 'ok');
  // the 1.x peer's IPv6 message is an unknown 14-byte type (the rest of it, more unknown types)
  const h = Buffer.alloc(14);
  encodeHello(h, 0);
  assert.equal(c.clientBytes(v1, Buffer.concat([h, msg6(MSG_CLIENT_ADD, 1)]), 0), 'ok');
  assert.equal(c.stats().routesAdded, 1);
  for (const { seg } of REPLIES) c.reply(seg, 1);
  c.flush();
  assert.equal(out.get(v1), undefined);
  const bytes = Buffer.concat(out.get(v2) ?? []);
  assert.deepEqual(bytes, hex('frame-v2-ipv6.hex'));
  assert.equal(c.stats().routed, 11);
  // CLIENT_DEL of the IPv6 route
  c.clientBytes(v2, msg6(MSG_CLIENT_DEL, 54758), 2);
  assert.equal(c.stats().routesDeleted, 1);
});

test('intercept core: an IPv6 SYN-ACK held before its CLIENT_ADD is delivered as its v2 record (payload flag set)', () => {
  const { core: c, out } = core();
  const p = c.addPeer('198.18.0.1:1000', true, '198.18.0.1');
  c.clientBytes(p, helloAnd(), 0);
  const synack = REPLIES[0]?.seg as TcpSegment;
  c.reply(synack, 0);
  assert.equal(c.stats().held, 1);
  c.clientBytes(p, msg6(MSG_CLIENT_ADD | MSG_FLAG_PAYLOAD, 54758), 5);
  assert.equal(c.stats().heldDelivered, 1);
  const bytes = Buffer.concat(out.get(p) ?? []);
  const fixture = hex('frame-v2-ipv6.hex');
  const want = Buffer.from(fixture.subarray(2, 2 + V2_RECORD_BYTES));
  want[1] = V2_REC_PAYLOAD; // asked for payload; a SYN-ACK has none: P = 0, not truncated
  assert.deepEqual(bytes, Buffer.concat([Buffer.from([0, 1]), want]));
});

class FakeSource implements PacketSource {
  rx: PacketReceiver | null = null;
  async start(rx: PacketReceiver): Promise<void> {
    this.rx = rx;
  }
  async stop(): Promise<void> {
    this.rx = null;
  }
  stats(): SourceStats {
    return { received: 0, dropped: 0 };
  }
  replay(indexes: number[]): void {
    for (const i of indexes) {
      const f = pcap.frames[i] as Buffer;
      this.rx?.packet(pcap.linkType, f, 0, f.length, f.length, Date.now());
    }
    this.rx?.batchEnd(Date.now());
  }
}

async function until(ok: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok() && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
}

test('both real sides over loopback (v2): an IPv6 session registers and gets its replies as IPv6 packets', async () => {
  const secret = Buffer.from('a shared secret of the IPv6 test');
  const src = new FakeSource();
  const icp = new Intercept({ host: '127.0.0.1', port: 0, secret }, src, nullLogger);
  await icp.start();
  const got: Want[] = [];
  const s = newSegment();
  const ch = new ChannelClient(
    { servers: [{ host: '127.0.0.1', port: icp.port }], connections: 1, reconnect: false, recordBytes: 64, secret },
    (b, o, l) => {
      assert.equal(parseIpTcp(b, o, l, s, true), 'ok');
      got.push(values(s));
    },
    { warn() {}, info() {} },
  );
  try {
    await ch.connect();
    assert.equal(ch.carriesIpv6, true);
    ch.addClient(CLIENT, 54758, SERVER, 8080);
    ch.flush();
    await until(() => icp.stats().routes === 1);
    src.replay(REPLIES.map((r) => r.index));
    await until(() => got.length === REPLIES.length);
    assert.deepEqual(got, EXPECTED['frame-v2-ipv6']);
    assert.equal(ch.stats().recordsSkipped, 0);
  } finally {
    await ch.close();
    await icp.stop();
  }
});

test('1.x channel: an IPv6 client is not sent (counted as dropped), IPv4 ones are', async () => {
  const src = new FakeSource();
  const icp = new Intercept({ host: '127.0.0.1', port: 0 }, src, nullLogger);
  await icp.start();
  const ch = new ChannelClient(
    { servers: [{ host: '127.0.0.1', port: icp.port }], connections: 1, reconnect: false, recordBytes: 64 },
    () => {},
    { warn() {}, info() {} },
  );
  try {
    await ch.connect();
    assert.equal(ch.carriesIpv6, false);
    ch.addClient(CLIENT, 54758, SERVER, 8080);
    ch.addClient(parseIpv4('198.18.1.5'), 40000, parseIpv4('198.18.20.2'), 8080);
    ch.flush();
    await until(() => icp.stats().routes === 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(icp.stats().routes, 1);
    assert.equal(icp.stats().badMessages, 0, 'nothing unparsable reached the 1.x intercept');
    assert.equal(ch.stats().dropped, 1);
    assert.equal(ch.stats().bytesSent, 28, 'hello + one 14-byte CLIENT_ADD');
  } finally {
    await ch.close();
    await icp.stop();
  }
});

test('IPv6 messages carry the payload flag and a cap class in the high byte unchanged (caps.ts)', () => {
  const hello = Buffer.alloc(14);
  encodeHello(hello, 0, CHANNEL_VERSION_V2);
  const m = Buffer.alloc(46);
  const type = payloadAddType(capClass(4096)); // cap class 8: 0x0101 | 8 << 9
  encodeClientMsg6(m, 0, type, C, 40000, T, 8080);
  assert.equal(m.readUInt16BE(6), type | 0x0010, 'the IPv6 bit in the low byte, the high byte as for IPv4');
  const { h, ev } = recorder();
  const d = new ClientMsgDecoder(h, 16, true);
  assert.equal(d.feed(Buffer.concat([hello, m])), 'ok');
  assert.deepEqual(ev, [
    ['hello', 7],
    ['client', 1, '2001:2:1::5', 40000, '2001:2:20::2', 8080, type >> 8],
  ]);
});
