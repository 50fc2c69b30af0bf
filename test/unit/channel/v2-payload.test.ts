/**
 * Channel v2 reply payloads (issue 13 part 1, v2): a session asks with MSG_FLAG_PAYLOAD on its
 * CLIENT_ADD, intercept sends each reply's payload capped at --payload-max with a truncated
 * flag; other sessions get headers only. Codec, intercept core, and both real sides over
 * loopback sockets, with the real replies of test/fixtures/channel/replies.pcap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientMsgDecoder } from '../../../src/channel/client-msg';
import { encodeClientMsg, encodeHello } from '../../../src/channel/client-msg';
import { MSG_CLIENT_ADD, MSG_CLIENT_DEL, MSG_FLAG_PAYLOAD } from '../../../src/channel/constants';
import { FrameDecoder, FrameEncoder } from '../../../src/channel/frame';
import {
  CHANNEL_VERSION_V2,
  V2_REC_PAYLOAD,
  V2_REC_TRUNCATED,
  V2_RECORD_BYTES,
  v2PayloadBytes,
  v2TailLength,
  v2ToV1,
  writeRecordV2,
  writeRecordV2Payload,
} from '../../../src/channel/v2';
import { decodeFrame, parseIpv4Tcp } from '../../../src/core/wire/decode';
import { newSegment, parseIpv4, type TcpSegment } from '../../../src/core/wire/segment';
import { InterceptCore, type Peer } from '../../../src/intercept/core';
import { Intercept } from '../../../src/intercept/intercept';
import { nullLogger } from '../../../src/intercept/types';
import { ChannelClient } from '../../../src/io/channel-client';
import type { PacketReceiver, PacketSource, SourceStats } from '../../../src/io/types';
import { decodedFrames, payloadOf, readPcap } from './fixtures';

const pcap = readPcap('replies.pcap');
const CLIENT = parseIpv4('198.18.20.1');
const TARGET = parseIpv4('198.18.20.2');
const SEGS = decodedFrames(pcap);

test('CLIENT_ADD with the payload flag: accepted by a v2 decoder, an unknown type for a 1.x one', () => {
  const b = Buffer.alloc(14 * 4);
  encodeHello(b, 0, CHANNEL_VERSION_V2);
  encodeClientMsg(b, 14, MSG_CLIENT_ADD | MSG_FLAG_PAYLOAD, CLIENT, 40001, TARGET, 8080);
  encodeClientMsg(b, 28, MSG_CLIENT_ADD, CLIENT, 40002, TARGET, 8080);
  encodeClientMsg(b, 42, MSG_CLIENT_DEL | MSG_FLAG_PAYLOAD, CLIENT, 40002, TARGET, 8080);
  assert.equal(b.subarray(14 + 6, 14 + 8).toString('hex'), '0101', 'type field 0x0101');
  for (const v2 of [true, false]) {
    const ev: unknown[] = [];
    const d = new ClientMsgDecoder(
      {
        hello: () => {},
        client: (t, _a, port, _c, _d, flags) => ev.push([t, port, flags]),
        bad: (t) => ev.push(['bad', t]),
      },
      16,
      v2,
    );
    assert.equal(d.feed(b), 'ok');
    assert.deepEqual(
      ev,
      v2
        ? [
            [MSG_CLIENT_ADD, 40001, 1],
            [MSG_CLIENT_ADD, 40002, 0],
            ['bad', 0x0102],
          ]
        : [
            ['bad', 0x0101],
            [MSG_CLIENT_ADD, 40002, 0],
            ['bad', 0x0102],
          ],
    );
  }
});

test('v2 payload record: header as without payload, flags, length, the payload bytes after it', () => {
  const big = SEGS.find((s) => s.payloadLen > 128) as TcpSegment;
  const none = SEGS.find((s) => s.payloadLen === 0) as TcpSegment;
  for (const [s, max, n, trunc] of [
    [big, 1024, big.payloadLen, false],
    [big, 100, 100, true],
    [big, 0, 0, true],
    [none, 1024, 0, false],
  ] as const) {
    assert.equal(v2PayloadBytes(s, max), n);
    const plain = Buffer.alloc(V2_RECORD_BYTES);
    writeRecordV2(s, plain, 0);
    const r = Buffer.alloc(V2_RECORD_BYTES + n + 2, 0xee);
    writeRecordV2Payload(s, r, 1, n);
    assert.equal(r[0], 0xee);
    assert.equal(r[1 + V2_RECORD_BYTES + n], 0xee);
    assert.equal(r[2], V2_REC_PAYLOAD | (trunc ? V2_REC_TRUNCATED : 0));
    assert.equal(r.readUInt16BE(3), n);
    assert.equal(v2TailLength(r, 1), n);
    // apart from flags and length, the 88 bytes are those of the headers-only record
    const hdr = Buffer.from(r.subarray(1, 1 + V2_RECORD_BYTES));
    hdr.fill(0, 1, 4);
    assert.deepEqual(hdr, plain);
    assert.deepEqual(r.subarray(1 + V2_RECORD_BYTES, 1 + V2_RECORD_BYTES + n), payloadOf(s).subarray(0, n));
  }
  assert.equal(v2TailLength(Buffer.alloc(V2_RECORD_BYTES), 0), 0);
  // a reply the snaplen cut: what was captured, flagged truncated
  const f = pcap.frames[SEGS.indexOf(big)] as Buffer;
  const cut = newSegment();
  assert.equal(decodeFrame(pcap.linkType, f, 0, big.payloadOff + 50, cut), 'ok');
  assert.equal(v2PayloadBytes(cut, 1024), 50);
  const r = Buffer.alloc(V2_RECORD_BYTES + 50);
  writeRecordV2Payload(cut, r, 0, 50);
  assert.equal(r[1], V2_REC_PAYLOAD | V2_REC_TRUNCATED);
});

test('v2 frames with payload tails: encoded, then decoded split at every point', () => {
  const enc = new FrameEncoder(V2_RECORD_BYTES);
  const want: { hdr: string; pay: string | null }[] = [];
  SEGS.slice(0, 20).forEach((s, i) => {
    const withPay = i % 3 !== 1;
    const n = withPay ? v2PayloadBytes(s, 64) : 0;
    const at = enc.reserve(V2_RECORD_BYTES + n);
    if (withPay) writeRecordV2Payload(s, enc.buffer, at, n);
    else writeRecordV2(s, enc.buffer, at);
    want.push({
      hdr: enc.buffer.subarray(at + 4, at + V2_RECORD_BYTES).toString('hex'),
      pay: withPay ? payloadOf(s).subarray(0, n).toString('hex') : null,
    });
  });
  assert.equal(enc.pendingRecords, 20);
  assert.equal(enc.pendingFrames, 2);
  const bytes = enc.take() as Buffer;
  assert.equal(bytes.readUInt16BE(0), 16);
  const decode = (cuts: number[]): { hdr: string; pay: string | null }[] => {
    const got: { hdr: string; pay: string | null }[] = [];
    const d = new FrameDecoder(
      V2_RECORD_BYTES,
      (b, o, l) => {
        const withPay = ((b[o + 1] as number) & V2_REC_PAYLOAD) !== 0;
        assert.equal(l, V2_RECORD_BYTES + (withPay ? b.readUInt16BE(o + 2) : 0));
        got.push({
          hdr: b.subarray(o + 4, o + V2_RECORD_BYTES).toString('hex'),
          pay: withPay ? b.subarray(o + V2_RECORD_BYTES, o + l).toString('hex') : null,
        });
      },
      v2TailLength,
    );
    let p = 0;
    for (const c of [...cuts, bytes.length]) {
      assert.equal(d.feed(bytes.subarray(p, c)), 'ok');
      p = c;
    }
    return got;
  };
  assert.deepEqual(decode([]), want);
  for (let i = 0; i <= bytes.length; i += 3) assert.deepEqual(decode([i]), want, `cut at ${i}`);
  const ones: number[] = [];
  for (let i = 1; i < bytes.length; i++) ones.push(i);
  assert.deepEqual(decode(ones), want, 'one byte at a time');
});

function core(payloadMax?: number): { core: InterceptCore; peer: Peer; out: Buffer[] } {
  const out: Buffer[] = [];
  const c = new InterceptCore(
    payloadMax === undefined ? {} : { payloadMax },
    (_p, b) => {
      out.push(b);
      return true;
    },
    nullLogger,
  );
  const peer = c.addPeer('p', true);
  return { core: c, peer, out };
}

function register(c: InterceptCore, p: Peer, ...m: [number, number][]): void {
  const b = Buffer.alloc(14 * (m.length + 1));
  encodeHello(b, 0, CHANNEL_VERSION_V2);
  m.forEach(([type, port], i) => encodeClientMsg(b, 14 * (i + 1), type, CLIENT, port, TARGET, 8080));
  assert.equal(c.clientBytes(p, b, 0), 'ok');
}

/** Decodes v2 frames into { port, payload hex or null, truncated }. */
function records(out: Buffer[]): { port: number; pay: string | null; truncated: boolean; payloadLen: number }[] {
  const res: { port: number; pay: string | null; truncated: boolean; payloadLen: number }[] = [];
  const v1 = Buffer.alloc(64);
  const s = newSegment();
  const d = new FrameDecoder(
    V2_RECORD_BYTES,
    (b, o, l) => {
      assert.equal(v2ToV1(b, o, v1, 0), 4);
      assert.equal(parseIpv4Tcp(v1, 0, 64, s, true), 'ok');
      const f = b[o + 1] as number;
      res.push({
        port: s.dstPort,
        pay: (f & V2_REC_PAYLOAD) !== 0 ? b.subarray(o + V2_RECORD_BYTES, o + l).toString('hex') : null,
        truncated: (f & V2_REC_TRUNCATED) !== 0,
        payloadLen: s.payloadLen,
      });
    },
    v2TailLength,
  );
  for (const b of out) assert.equal(d.feed(b), 'ok');
  return res;
}

test('intercept core: payload only for the session that asked, capped, truncated flagged, counted', () => {
  const { core: c, peer, out } = core(100);
  register(c, peer, [MSG_CLIENT_ADD | MSG_FLAG_PAYLOAD, 40001], [MSG_CLIENT_ADD, 40002]);
  const replies = SEGS.filter((s) => s.dstPort === 40001 || s.dstPort === 40002);
  for (const s of replies) c.reply(s, 1);
  c.flush();
  const got = records(out);
  assert.equal(got.length, replies.length);
  let sent = 0;
  let truncated = 0;
  replies.forEach((s, i) => {
    const g = got[i] as (typeof got)[number];
    assert.equal(g.port, s.dstPort);
    assert.equal(g.payloadLen, s.payloadLen);
    if (s.dstPort === 40002) {
      assert.equal(g.pay, null, 'did not ask: headers only');
      return;
    }
    const n = Math.min(100, s.payloadLen);
    assert.equal(g.pay, payloadOf(s).subarray(0, n).toString('hex'));
    assert.equal(g.truncated, s.payloadLen > 100);
    sent += n;
    if (s.payloadLen > 100) truncated++;
  });
  assert.ok(truncated > 0 && sent > 0);
  const st = c.stats();
  assert.equal(st.payloadRoutes, 1);
  assert.equal(st.payloadBytesSent, sent);
  assert.equal(st.payloadTruncated, truncated);
  assert.equal(st.recordsSent, replies.length);
  assert.equal(st.framesSent, Math.ceil(replies.length / 16));
});

test('intercept core: a re-registration without the flag stops the payload; a held SYN-ACK to a payload route is flagged', () => {
  const { core: c, peer, out } = core();
  const synack = SEGS.find((s) => s.dstPort === 40003 && (s.flags & 0x12) === 0x12) as TcpSegment;
  c.reply(synack, 0); // before its CLIENT_ADD: held
  register(c, peer, [MSG_CLIENT_ADD | MSG_FLAG_PAYLOAD, 40003]);
  const data = SEGS.find((s) => s.dstPort === 40003 && s.payloadLen > 0) as TcpSegment;
  c.reply(data, 1);
  register(c, peer, [MSG_CLIENT_ADD, 40003]);
  c.reply(data, 2);
  c.flush();
  const got = records(out);
  assert.deepEqual(
    got.map((g) => [g.pay === null ? null : g.pay.length / 2, g.truncated]),
    [
      [0, false],
      [data.payloadLen, false],
      [null, false],
    ],
  );
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

test('both real sides over loopback: our tcpcopy asks for one session, gets its payloads as ReplyPayload', async () => {
  const secret = Buffer.from('a shared secret of the payload test');
  const src = new FakeSource();
  const icp = new Intercept({ host: '127.0.0.1', port: 0, secret, payloadMax: 150 }, src, nullLogger);
  await icp.start();
  const got: { port: number; pay: string | null; truncated: boolean }[] = [];
  const s = newSegment();
  const ch = new ChannelClient(
    { servers: [{ host: '127.0.0.1', port: icp.port }], connections: 1, reconnect: false, recordBytes: 64, secret },
    (b, o, l, pay) => {
      assert.equal(parseIpv4Tcp(b, o, l, s, true), 'ok');
      got.push({
        port: s.dstPort,
        pay: pay === null ? null : pay.buf.subarray(pay.off, pay.off + pay.len).toString('hex'),
        truncated: pay?.truncated ?? false,
      });
    },
    { warn() {}, info() {} },
  );
  try {
    await ch.connect();
    ch.addClient(CLIENT, 40004, TARGET, 8080, true);
    ch.addClient(CLIENT, 40005, TARGET, 8080);
    ch.flush();
    const want = SEGS.map((x, i) => [x, i] as const).filter(([x]) => x.dstPort === 40004 || x.dstPort === 40005);
    const end = Date.now() + 3000;
    while (icp.stats().routes < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    assert.equal(icp.stats().payloadRoutes, 1, JSON.stringify(icp.stats()));
    src.replay(want.map(([, i]) => i));
    while (got.length < want.length && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(
      got,
      want.map(([x]) => ({
        port: x.dstPort,
        pay: x.dstPort === 40004 ? payloadOf(x).subarray(0, 150).toString('hex') : null,
        truncated: x.dstPort === 40004 && x.payloadLen > 150,
      })),
    );
    assert.ok(got.some((g) => g.truncated) && got.some((g) => g.pay !== null && g.pay.length > 0));
  } finally {
    await ch.close();
    await icp.stop();
  }
});
