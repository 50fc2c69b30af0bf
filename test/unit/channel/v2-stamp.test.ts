/**
 * Channel v2 capture time stamps (issue 15 part 6): a payload session may also ask, with
 * MSG_FLAG_STAMP (0x0020 in its CLIENT_ADD type's low byte), for intercept's capture time of
 * each reply; intercept advertises it (CAPS_STAMP) and then puts 8 bytes (u32 seconds, u32
 * nanoseconds) between the 88-byte record and the payload (V2_REC_STAMP). Sessions that did
 * not ask, and peers that never saw CAPS_STAMP, stay byte-identical. Byte-exact layouts,
 * the intercept core, the offset estimate, and both real sides over loopback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { payloadAddType } from '../../../src/channel/caps';
import {
  ClientMsgDecoder,
  FLAGS_STAMP,
  encodeClientMsg,
  encodeClientMsg6,
  encodeHello,
} from '../../../src/channel/client-msg';
import { ClockOffset } from '../../../src/channel/clock-offset';
import { MSG_CLIENT_ADD, MSG_FLAG_PAYLOAD, MSG_FLAG_STAMP } from '../../../src/channel/constants';
import { FrameDecoder } from '../../../src/channel/frame';
import {
  CHANNEL_VERSION_V2,
  V2_REC_PAYLOAD,
  V2_REC_STAMP,
  V2_RECORD_BYTES,
  readStampMs,
  v2PayloadBytes,
  v2TailLength,
  writeRecordV2Payload,
  writeStamp,
} from '../../../src/channel/v2';
import { parseIpv4, type TcpSegment } from '../../../src/core/wire/segment';
import { internIpv6 } from '../../../src/core/wire/ipv6';
import { InterceptCore } from '../../../src/intercept/core';
import { Intercept } from '../../../src/intercept/intercept';
import { nullLogger } from '../../../src/intercept/types';
import { ChannelClient } from '../../../src/io/channel-client';
import { clock } from '../../../src/io/system-clock';
import type { PacketReceiver, PacketSource, SourceStats } from '../../../src/io/types';
import { decodedFrames, payloadOf, readPcap } from './fixtures';

const pcap = readPcap('replies.pcap');
const CLIENT = parseIpv4('198.18.20.1');
const TARGET = parseIpv4('198.18.20.2');
const SEGS = decodedFrames(pcap);

test('CLIENT_ADD asking for stamps: type 0x0121 (0xff21 with cap class 127, 0x0131 IPv6); flags bit 8 on v2, unknown on 1.x', () => {
  const b = Buffer.alloc(14 * 4 + 46);
  encodeHello(b, 0, CHANNEL_VERSION_V2);
  encodeClientMsg(b, 14, MSG_CLIENT_ADD | MSG_FLAG_PAYLOAD | MSG_FLAG_STAMP, CLIENT, 40001, TARGET, 8080);
  encodeClientMsg(b, 28, payloadAddType(127) | MSG_FLAG_STAMP, CLIENT, 40002, TARGET, 8080);
  // the flag alone (without the payload flag) is not a request for stamps
  encodeClientMsg(b, 42, MSG_CLIENT_ADD | MSG_FLAG_STAMP, CLIENT, 40003, TARGET, 8080);
  const c6 = internIpv6(Buffer.from('20010002001000000000000000000001', 'hex'), 0);
  const t6 = internIpv6(Buffer.from('20010002002000000000000000000002', 'hex'), 0);
  encodeClientMsg6(b, 56, MSG_CLIENT_ADD | MSG_FLAG_PAYLOAD | MSG_FLAG_STAMP, c6, 40004, t6, 8080);
  assert.equal(b.subarray(14, 28).toString('hex'), 'c6121401' + '9c41' + '0121' + 'c6121402' + '1f90');
  assert.equal(b.subarray(28 + 6, 28 + 8).toString('hex'), 'ff21');
  assert.equal(b.subarray(42 + 6, 42 + 8).toString('hex'), '0021');
  assert.equal(b.subarray(56 + 6, 56 + 8).toString('hex'), '0131');
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
    assert.equal(d.feed(v2 ? b : b.subarray(0, 56)), 'ok');
    assert.deepEqual(
      ev,
      v2
        ? [
            [MSG_CLIENT_ADD, 40001, 0x101],
            [MSG_CLIENT_ADD, 40002, 0x1ff],
            ['bad', 0x0021],
            [MSG_CLIENT_ADD, 40004, 0x101],
          ]
        : [
            ['bad', 0x0121],
            ['bad', 0xff21],
            ['bad', 0x0021],
          ],
    );
  }
  assert.equal(FLAGS_STAMP, 0x100);
});

test('stamped v2 record: flags 0x05, the stamp at [88, 96), the payload at 96; otherwise the unstamped record', () => {
  const s = SEGS.find((x) => x.payloadLen > 40) as TcpSegment;
  const n = v2PayloadBytes(s, 40);
  assert.equal(n, 40);
  const plain = Buffer.alloc(V2_RECORD_BYTES + n, 0xee);
  writeRecordV2Payload(s, plain, 0, n);
  const r = Buffer.alloc(1 + V2_RECORD_BYTES + 8 + n + 1, 0xee);
  writeRecordV2Payload(s, r, 1, n, true);
  writeStamp(r, 1 + V2_RECORD_BYTES, 0x6a2b3c4d, 123_456_789);
  assert.equal(r[0], 0xee);
  assert.equal(r[r.length - 1], 0xee, 'nothing written past the payload');
  assert.equal(r.subarray(1, 5).toString('hex'), '04' + '07' + '0028', 'v4, PAYLOAD|TRUNCATED|STAMP, 40 bytes');
  assert.equal(r[2], V2_REC_PAYLOAD | 0x02 | V2_REC_STAMP);
  assert.equal(r.subarray(1 + 88, 1 + 96).toString('hex'), '6a2b3c4d' + '075bcd15');
  assert.equal(readStampMs(r, 1 + 88), 0x6a2b3c4d * 1000 + 123.456789);
  assert.deepEqual(r.subarray(1 + 96, 1 + 96 + n), payloadOf(s).subarray(0, n));
  assert.equal(v2TailLength(r, 1), n + 8);
  assert.equal(v2TailLength(plain, 0), n);
  // header bytes (version, length, network and TCP headers) equal the unstamped record's
  const a = Buffer.from(r.subarray(1, 1 + V2_RECORD_BYTES));
  a[1] = 0;
  const p = Buffer.from(plain.subarray(0, V2_RECORD_BYTES));
  p[1] = 0;
  assert.deepEqual(a, p);
  assert.equal(plain[1], V2_REC_PAYLOAD | 0x02, 'unstamped: no STAMP bit');
});

test('intercept core: stamps only for the session that asked; the others byte-identical to a core without stamps', () => {
  const run = (stampAsk: boolean): { bytes: Buffer; stats: ReturnType<InterceptCore['stats']> } => {
    const out: Buffer[] = [];
    let calls = 0;
    const c = new InterceptCore(
      {
        payloadMax: 64,
        stamp: (o, off) => {
          calls++;
          writeStamp(o, off, 1_800_000_000 + calls, calls * 1000);
        },
      },
      (_p, b) => {
        out.push(b);
        return true;
      },
      nullLogger,
    );
    const peer = c.addPeer('p', true);
    const m = Buffer.alloc(14 * 4);
    encodeHello(m, 0, CHANNEL_VERSION_V2);
    encodeClientMsg(
      m,
      14,
      MSG_CLIENT_ADD | MSG_FLAG_PAYLOAD | (stampAsk ? MSG_FLAG_STAMP : 0),
      CLIENT,
      40001,
      TARGET,
      8080,
    );
    encodeClientMsg(m, 28, MSG_CLIENT_ADD | MSG_FLAG_PAYLOAD, CLIENT, 40002, TARGET, 8080);
    encodeClientMsg(m, 42, MSG_CLIENT_ADD, CLIENT, 40003, TARGET, 8080);
    assert.equal(c.clientBytes(peer, m, 0), 'ok');
    for (const s of SEGS) if (s.dstPort >= 40001 && s.dstPort <= 40003) c.reply(s, 5);
    c.flush();
    return { bytes: Buffer.concat(out), stats: c.stats() };
  };
  const off = run(false);
  const on = run(true);
  const split = (b: Buffer): { port: number; rec: string }[] => {
    const res: { port: number; rec: string }[] = [];
    const d = new FrameDecoder(
      V2_RECORD_BYTES,
      (x, o, l) => res.push({ port: x.readUInt16BE(o + 44 + 2), rec: x.subarray(o, o + l).toString('hex') }),
      v2TailLength,
    );
    assert.equal(d.feed(b), 'ok');
    return res;
  };
  const a = split(off.bytes);
  const b = split(on.bytes);
  assert.equal(a.length, b.length);
  let stamped = 0;
  a.forEach((x, i) => {
    const y = b[i] as (typeof b)[number];
    assert.equal(y.port, x.port);
    if (x.port !== 40001) {
      assert.equal(y.rec, x.rec, 'a session that did not ask: the same bytes');
      return;
    }
    stamped++;
    const yb = Buffer.from(y.rec, 'hex');
    const xb = Buffer.from(x.rec, 'hex');
    assert.equal(yb[1], (xb[1] as number) | V2_REC_STAMP);
    assert.equal(yb.length, xb.length + 8);
    assert.equal(yb.readUInt32BE(88), 1_800_000_000 + stamped, "the stamper wrote this record's time");
    assert.equal(yb.readUInt32BE(92), stamped * 1000);
    assert.deepEqual(yb.subarray(96), xb.subarray(88), 'the payload follows the stamp');
  });
  assert.ok(stamped > 2);
  assert.equal(on.stats.stampRoutes, 1);
  assert.equal(on.stats.stampsSent, stamped);
  assert.equal(off.stats.stampsSent, 0);
});

test('intercept core: without a stamper the stamp is the `now` given to reply()', () => {
  const out: Buffer[] = [];
  const c = new InterceptCore({}, (_p, b) => (out.push(b), true), nullLogger);
  const peer = c.addPeer('p', true);
  const m = Buffer.alloc(28);
  encodeHello(m, 0, CHANNEL_VERSION_V2);
  encodeClientMsg(m, 14, MSG_CLIENT_ADD | MSG_FLAG_PAYLOAD | MSG_FLAG_STAMP, CLIENT, 40001, TARGET, 8080);
  c.clientBytes(peer, m, 0);
  c.reply(SEGS.find((s) => s.dstPort === 40001) as TcpSegment, 1_700_000_000_250.5);
  c.flush();
  const b = Buffer.concat(out);
  assert.equal(
    b.subarray(2 + 88, 2 + 96).toString('hex'),
    (1_700_000_000).toString(16).padStart(8, '0') + (250_500_000).toString(16).padStart(8, '0'),
  );
});

test('ClockOffset: the largest remote - local seen; a stamp moved with it is never early, late by the fastest delivery', () => {
  const o = new ClockOffset(10_000);
  assert.ok(Number.isNaN(o.offsetMs));
  // intercept's clock is 5000 ms ahead; deliveries take 3, 0.5, 7 ms
  const theta = 5000;
  for (const [cap, delay] of [
    [1000, 3],
    [1010, 0.5],
    [1020, 7],
  ] as const) {
    o.observe(cap + theta, cap + delay);
    assert.ok(o.toLocal(cap + theta) >= cap, 'never before the true capture');
    assert.ok(o.toLocal(cap + theta) <= cap + delay, 'never after it was read');
  }
  assert.equal(o.offsetMs, theta - 0.5);
  assert.equal(o.toLocal(1020 + theta), 1020.5);
  // the clocks step by -200 ms: followed within two half-windows
  for (let t = 2000; t < 40_000; t += 1000) o.observe(t + theta - 200 + 0, t + 1);
  assert.equal(o.offsetMs, theta - 200 - 1);
});

class StampSource implements PacketSource {
  rx: PacketReceiver | null = null;
  /** The local time each packet was "captured", in order. */
  readonly captured: number[] = [];
  private cur = 0;
  constructor(private readonly aheadMs: number) {}
  async start(rx: PacketReceiver): Promise<void> {
    this.rx = rx;
  }
  async stop(): Promise<void> {
    this.rx = null;
  }
  stats(): SourceStats {
    return { received: 0, dropped: 0 };
  }
  writeStamp(out: Buffer, off: number): void {
    const ms = this.cur + this.aheadMs;
    writeStamp(out, off, Math.floor(ms / 1000), Math.round((ms % 1000) * 1e6) % 1e9);
  }
  replay(indexes: number[]): void {
    for (const i of indexes) {
      const f = pcap.frames[i] as Buffer;
      this.cur = clock();
      this.captured.push(this.cur);
      this.rx?.packet(pcap.linkType, f, 0, f.length, f.length, 0);
    }
    this.rx?.batchEnd(Date.now());
  }
}

test("both real sides over loopback: stamps asked with --compare, moved onto tcpcopy's clock (between capture and read)", async () => {
  const secret = Buffer.from('a shared secret of the stamp test');
  // intercept's clock one hour ahead: the estimate must take that out
  const src = new StampSource(3_600_000);
  const icp = new Intercept({ host: '127.0.0.1', port: 0, secret, payloadMax: 2000 }, src, nullLogger);
  await icp.start();
  const got: { port: number; at: number; readAt: number; pay: string }[] = [];
  const ch = new ChannelClient(
    {
      servers: [{ host: '127.0.0.1', port: icp.port }],
      connections: 1,
      reconnect: false,
      recordBytes: 64,
      secret,
      stamps: true,
    },
    (b, o, l, pay) => {
      assert.equal(l, 64);
      got.push({
        port: b.readUInt16BE(o + 22),
        at: pay?.atMs ?? -1,
        readAt: clock(),
        pay: pay === null ? '' : pay.buf.subarray(pay.off, pay.off + pay.len).toString('hex'),
      });
    },
    { warn() {}, info() {} },
  );
  try {
    await ch.connect();
    const end = Date.now() + 3000;
    // the caps answer comes first: only then do CLIENT_ADDs carry the flag
    while (ch.payloadCeilings()[0]?.ceiling !== 2000 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    ch.addClient(CLIENT, 40004, TARGET, 8080, true);
    ch.addClient(CLIENT, 40005, TARGET, 8080, true);
    ch.flush();
    while (icp.stats().routes < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    assert.equal(icp.stats().stampRoutes, 2, JSON.stringify(icp.stats()));
    const want = SEGS.map((x, i) => [x, i] as const).filter(([x]) => x.dstPort === 40004 || x.dstPort === 40005);
    src.replay(want.map(([, i]) => i));
    while (got.length < want.length && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    assert.equal(got.length, want.length);
    got.forEach((g, i) => {
      const [x] = want[i] as (typeof want)[number];
      assert.equal(g.port, x.dstPort);
      assert.equal(g.pay, payloadOf(x).toString('hex'), 'the payload after the stamp');
      const cap = src.captured[i] as number;
      // the offset estimate never puts a capture before it happened nor after it was read
      assert.ok(g.at >= cap - 0.001, `record ${i}: ${g.at} before its capture ${cap}`);
      assert.ok(g.at <= g.readAt + 0.001, `record ${i}: ${g.at} after it was read ${g.readAt}`);
    });
    assert.equal(icp.stats().stampsSent, want.length);
  } finally {
    await ch.close();
    await icp.stop();
  }
});
