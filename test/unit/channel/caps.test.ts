/**
 * Channel v2 per-session payload caps (src/channel/caps.ts): the codec, intercept's core
 * (answer, caps per route, --payload-max as ceiling), compatibility with peers that predate
 * them (an intercept that never answers gets 0x0101; a tcpcopy that never asks gets no caps
 * record), and both real sides over loopback.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { ClientMsgDecoder, encodeClientMsg, encodeHello } from '../../../src/channel/client-msg';
import {
  CAP_CLASS_MAX,
  CAPS_MAGIC,
  CAPS_SESSION_CAP,
  CAPS_STAMP,
  capBytes,
  capClass,
  encodeCapsQuestion,
  isCapsQuestion,
  payloadAddType,
  readCapsRecord,
  writeCapsRecord,
} from '../../../src/channel/caps';
import { CLIENT_MSG_BYTES, MSG_CLIENT_ADD, MSG_CLIENT_DEL, MSG_FLAG_PAYLOAD } from '../../../src/channel/constants';
import { FrameDecoder } from '../../../src/channel/frame';
import {
  CHANNEL_VERSION_V2,
  V2_OK,
  V2_CHALLENGE,
  V2_REC_PAYLOAD,
  V2_REC_TRUNCATED,
  V2_RECORD_BYTES,
  serverMsg,
  serverProof,
  v2TailLength,
} from '../../../src/channel/v2';
import { decodeFrame } from '../../../src/core/wire/decode';
import { newSegment, parseIpv4, type TcpSegment } from '../../../src/core/wire/segment';
import { InterceptCore, type Peer } from '../../../src/intercept/core';
import { Intercept } from '../../../src/intercept/intercept';
import { nullLogger } from '../../../src/intercept/types';
import { ChannelClient } from '../../../src/io/channel-client';
import type { PacketReceiver, PacketSource, SourceStats } from '../../../src/io/types';
import { readPcap } from './fixtures';

const pcap = readPcap('replies.pcap');
const CLIENT = parseIpv4('198.18.20.1');
const TARGET = parseIpv4('198.18.20.2');

/** A fixture reply (its 185-byte payload) grown to `n` payload bytes of a known pattern, as a captured frame. */
function bigReply(port: number, n: number): { frame: Buffer; seg: TcpSegment } {
  const base = newSegment();
  const i = pcap.frames.findIndex((f) => {
    decodeFrame(pcap.linkType, f, 0, f.length, base);
    return base.dstPort === port && base.payloadLen > 0;
  });
  const f = pcap.frames[i] as Buffer;
  decodeFrame(pcap.linkType, f, 0, f.length, base);
  const frame = Buffer.alloc(base.payloadOff + n);
  f.copy(frame, 0, 0, base.payloadOff);
  for (let k = 0; k < n; k++) frame[base.payloadOff + k] = (k * 7 + port) & 0xff;
  frame.writeUInt16BE(base.payloadOff - base.ipOff + n, base.ipOff + 2);
  const seg = newSegment();
  assert.equal(decodeFrame(pcap.linkType, frame, 0, frame.length, seg), 'ok');
  assert.equal(seg.payloadLen, n);
  return { frame, seg };
}

test('cap classes: 512-byte steps rounded up, 127 = 65535, 0 = intercept --payload-max; never above the ceiling', () => {
  assert.equal(capClass(0), 0);
  assert.equal(capClass(-5), 0);
  assert.equal(capClass(1), 1);
  assert.equal(capClass(512), 1);
  assert.equal(capClass(513), 2);
  assert.equal(capClass(1024), 2);
  assert.equal(capClass(64 * 1024), CAP_CLASS_MAX);
  assert.equal(capClass(65535), CAP_CLASS_MAX);
  assert.equal(capBytes(0, 1024), 1024);
  assert.equal(capBytes(2, 65535), 1024);
  assert.equal(capBytes(2, 700), 700);
  assert.equal(capBytes(126, 65535), 126 * 512);
  assert.equal(capBytes(CAP_CLASS_MAX, 65535), 65535);
  for (let w = 1; w <= 65535; w += 97) assert.ok(capBytes(capClass(w), 65535) >= w, `asks at least ${w}`);
  assert.equal(payloadAddType(0), MSG_CLIENT_ADD | MSG_FLAG_PAYLOAD, 'class 0 is the pre-cap form 0x0101');
  assert.equal(payloadAddType(2), 0x0501);
  assert.equal(payloadAddType(CAP_CLASS_MAX), 0xff01);
});

test('the question is a CLIENT_DEL of 0.0.0.0:0 to "CAPS":1; the answer an 88-byte record with IP version 0', () => {
  const q = Buffer.alloc(CLIENT_MSG_BYTES);
  encodeCapsQuestion(q, 0);
  assert.equal(q.toString('hex'), '00000000' + '0000' + '0002' + '43415053' + '0001');
  assert.ok(isCapsQuestion(MSG_CLIENT_DEL, 0, 0, CAPS_MAGIC, 1));
  assert.ok(!isCapsQuestion(MSG_CLIENT_DEL, CLIENT, 0, CAPS_MAGIC, 1));
  assert.ok(!isCapsQuestion(MSG_CLIENT_ADD, 0, 0, CAPS_MAGIC, 1));
  const r = Buffer.alloc(V2_RECORD_BYTES, 0xee);
  writeCapsRecord(r, 0, 4096);
  // features 0x0003: per-session caps (0x0001) and capture time stamps (0x0002)
  assert.equal(r.subarray(0, 12).toString('hex'), '00000000' + '43415053' + '0003' + '1000');
  assert.ok(r.subarray(12).every((b) => b === 0));
  assert.equal(v2TailLength(r, 0), 0, 'no payload tail: frame readers step over it');
  assert.deepEqual(readCapsRecord(r, 0), { features: CAPS_SESSION_CAP | CAPS_STAMP, payloadMax: 4096 });
  const ip = Buffer.alloc(V2_RECORD_BYTES);
  ip[0] = 4;
  assert.equal(readCapsRecord(ip, 0), null);
  assert.equal(readCapsRecord(Buffer.alloc(V2_RECORD_BYTES), 0), null);
});

test('CLIENT_ADD with a cap class: the whole high byte reaches a v2 decoder; a 1.x decoder counts it unknown', () => {
  const b = Buffer.alloc(14 * 4);
  encodeHello(b, 0, CHANNEL_VERSION_V2);
  encodeClientMsg(b, 14, payloadAddType(2), CLIENT, 40001, TARGET, 8080);
  encodeClientMsg(b, 28, MSG_CLIENT_ADD | (2 << 9), CLIENT, 40002, TARGET, 8080); // a class without the payload flag
  encodeClientMsg(b, 42, MSG_CLIENT_DEL | MSG_FLAG_PAYLOAD | (2 << 9), CLIENT, 40003, TARGET, 8080);
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
    assert.deepEqual(ev, [v2 ? [MSG_CLIENT_ADD, 40001, 0x05] : ['bad', 0x0501], ['bad', 0x0401], ['bad', 0x0502]]);
  }
});

function core(payloadMax: number, v2 = true): { core: InterceptCore; peer: Peer; out: Buffer[] } {
  const out: Buffer[] = [];
  const c = new InterceptCore(
    { payloadMax },
    (_p, b) => {
      out.push(b);
      return true;
    },
    nullLogger,
  );
  return { core: c, peer: c.addPeer('p', v2), out };
}

/** Feeds the hello and then `msgs` (14-byte messages) to the core. */
function feed(c: InterceptCore, p: Peer, msgs: Buffer[]): void {
  const h = Buffer.alloc(14);
  encodeHello(h, 0, CHANNEL_VERSION_V2);
  assert.equal(c.clientBytes(p, Buffer.concat([h, ...msgs]), 0), 'ok');
}

function add(type: number, port: number): Buffer {
  const b = Buffer.alloc(14);
  encodeClientMsg(b, 0, type, CLIENT, port, TARGET, 8080);
  return b;
}

function question(): Buffer {
  const b = Buffer.alloc(14);
  encodeCapsQuestion(b, 0);
  return b;
}

interface Rec {
  caps: ReturnType<typeof readCapsRecord>;
  payload: number | null;
  truncated: boolean;
}

function decode(out: Buffer[]): Rec[] {
  const res: Rec[] = [];
  const d = new FrameDecoder(
    V2_RECORD_BYTES,
    (b, o, l) => {
      const f = b[o + 1] as number;
      res.push({
        caps: readCapsRecord(b, o),
        payload: (f & V2_REC_PAYLOAD) !== 0 ? l - V2_RECORD_BYTES : null,
        truncated: (f & V2_REC_TRUNCATED) !== 0,
      });
    },
    v2TailLength,
  );
  for (const b of out) assert.equal(d.feed(b), 'ok');
  return res;
}

test('intercept core: answers the question once per asking v2 peer, flushed at once; routes keep their own caps under --payload-max', () => {
  const { core: c, peer, out } = core(3000);
  feed(c, peer, [question()]);
  assert.deepEqual(decode(out), [
    { caps: { features: CAPS_SESSION_CAP | CAPS_STAMP, payloadMax: 3000 }, payload: null, truncated: false },
  ]);
  assert.equal(c.stats().capsAnswered, 1);
  assert.equal(c.stats().routesDeleted, 0, 'the question is not a route removal');
  out.length = 0;
  // 40001: class 2 (1024), 40002: class 0 (--payload-max 3000), 40003: class 127 (capped at 3000), 40004: no payload
  feed(c, peer, [
    add(payloadAddType(2), 40001),
    add(payloadAddType(0), 40002),
    add(payloadAddType(CAP_CLASS_MAX), 40003),
    add(MSG_CLIENT_ADD, 40004),
  ]);
  for (const port of [40001, 40002, 40003, 40004]) c.reply(bigReply(port, 5000).seg, 1);
  c.reply(bigReply(40001, 600).seg, 1);
  c.flush();
  assert.deepEqual(
    decode(out).map((r) => [r.payload, r.truncated]),
    [
      [1024, true],
      [3000, true],
      [3000, true],
      [null, false],
      [600, false],
    ],
  );
  assert.equal(c.stats().payloadRoutes, 3);
  // CLIENT_DEL finds a capped route too
  const del = Buffer.alloc(14);
  encodeClientMsg(del, 0, MSG_CLIENT_DEL, CLIENT, 40001, TARGET, 8080);
  feed(c, c.addPeer('q', true), []);
  assert.equal(c.clientBytes(peer, del, 2), 'ok');
  assert.equal(c.stats().routesDeleted, 1);
});

test('intercept core: a 1.x peer that sends the question gets no answer (it is a CLIENT_DEL there); a v2 peer that never asks gets no caps record', () => {
  const v1 = core(1024, false);
  const h = Buffer.alloc(14);
  encodeHello(h, 0);
  assert.equal(v1.core.clientBytes(v1.peer, Buffer.concat([h, question()]), 0), 'ok');
  v1.core.flush();
  assert.equal(v1.out.length, 0);
  assert.equal(v1.core.stats().capsAnswered, 0);
  const v2 = core(1024);
  feed(v2.core, v2.peer, [add(payloadAddType(0), 40001)]);
  v2.core.reply(bigReply(40001, 2000).seg, 0);
  v2.core.flush();
  assert.deepEqual(decode(v2.out), [{ caps: null, payload: 1024, truncated: true }]);
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
  send(frames: Buffer[]): void {
    for (const f of frames) this.rx?.packet(pcap.linkType, f, 0, f.length, f.length, Date.now());
    this.rx?.batchEnd(Date.now());
  }
}

async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('both real sides over loopback: tcpcopy asks, learns the ceiling, sessions get their own caps; a low ceiling is warned about', async () => {
  const secret = Buffer.from('a shared secret of the caps test');
  const src = new FakeSource();
  const icp = new Intercept({ host: '127.0.0.1', port: 0, secret, payloadMax: 4000 }, src, nullLogger);
  await icp.start();
  const got: { pay: number; truncated: boolean }[] = [];
  const warnings: string[] = [];
  const ch = new ChannelClient(
    {
      servers: [{ host: '127.0.0.1', port: icp.port }],
      connections: 1,
      reconnect: false,
      recordBytes: 64,
      secret,
      payloadWanted: 65535,
    },
    (_b, _o, _l, pay) => got.push({ pay: pay?.len ?? -1, truncated: pay?.truncated ?? false }),
    { warn: (m) => warnings.push(m), info() {} },
  );
  try {
    await ch.connect();
    await until(() => ch.payloadCeilings()[0]?.ceiling === 4000, 'the caps answer');
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0] as string, /at most 4000 payload bytes per reply.*--payload-max 65535/);
    ch.addClient(CLIENT, 40001, TARGET, 8080, true, 1024);
    ch.addClient(CLIENT, 40002, TARGET, 8080, true, 65535);
    ch.addClient(CLIENT, 40003, TARGET, 8080, true);
    ch.flush();
    await until(() => icp.stats().payloadRoutes === 3, 'three payload routes');
    src.send([40001, 40002, 40003].map((p) => bigReply(p, 6000).frame));
    await until(() => got.length === 3, 'three records');
    assert.deepEqual(got, [
      { pay: 1024, truncated: true },
      { pay: 4000, truncated: true },
      { pay: 4000, truncated: true },
    ]);
    assert.equal(ch.stats().recordsSkipped, 0, 'the caps record is not a skipped record');
  } finally {
    await ch.close();
    await icp.stop();
  }
});

test('an intercept that predates caps (never answers the question): CLIENT_ADDs stay 0x0101 and the question is a harmless CLIENT_DEL', async () => {
  // a minimal v2 intercept of the previous release: handshake, then it records the 14-byte messages
  const secret = Buffer.from('a shared secret of the old intercept');
  const msgs: Buffer[] = [];
  const server = net.createServer((s) => {
    let buf = Buffer.alloc(0);
    let stage = 0;
    const nonceS = Buffer.alloc(32, 7);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (stage === 0 && buf.length >= 14) {
        assert.equal(buf.readUInt16BE(6), CHANNEL_VERSION_V2);
        s.write(serverMsg(V2_CHALLENGE, nonceS));
        buf = buf.subarray(14);
        stage = 1;
      }
      if (stage === 1 && buf.length >= 64) {
        s.write(serverMsg(V2_OK, serverProof(secret, nonceS, buf.subarray(0, 32))));
        buf = buf.subarray(64);
        stage = 2;
      }
      while (stage === 2 && buf.length >= 14) {
        msgs.push(Buffer.from(buf.subarray(0, 14)));
        buf = buf.subarray(14);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const ch = new ChannelClient(
    { servers: [{ host: '127.0.0.1', port }], connections: 1, reconnect: false, recordBytes: 64, secret },
    () => {},
    { warn() {}, info() {} },
  );
  try {
    await ch.connect();
    await new Promise((r) => setTimeout(r, 50));
    ch.addClient(CLIENT, 40001, TARGET, 8080, true, 65535);
    ch.addClient(CLIENT, 40002, TARGET, 8080);
    ch.flush();
    await until(() => msgs.length === 3, 'three messages');
    assert.deepEqual(
      msgs.map((m) => m.readUInt16BE(6)),
      [MSG_CLIENT_DEL, MSG_CLIENT_ADD | MSG_FLAG_PAYLOAD, MSG_CLIENT_ADD],
    );
    assert.ok(
      isCapsQuestion(
        MSG_CLIENT_DEL,
        msgs[0]!.readUInt32BE(0),
        msgs[0]!.readUInt16BE(4),
        msgs[0]!.readUInt32BE(8),
        msgs[0]!.readUInt16BE(12),
      ),
    );
    assert.equal(ch.payloadCeilings()[0]?.ceiling, -1);
  } finally {
    await ch.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
