import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { once } from 'node:events';
import { Intercept } from '../../../src/intercept/intercept';
import type { Logger } from '../../../src/intercept/types';
import { ChannelClient } from '../../../src/io/channel-client';
import type { PacketReceiver, PacketSource, SourceStats } from '../../../src/io/types';
import { parseIpv4Tcp } from '../../../src/core/wire/decode';
import { emitIpv4Tcp, newTcpRepr } from '../../../src/core/wire/build';
import { LINKTYPE_RAW } from '../../../src/core/wire/link';
import { TCP_ACK, TCP_SYN, newSegment, parseIpv4, type TcpSegment } from '../../../src/core/wire/segment';
import { TcpcopyError } from '../../../src/core/errors';
import {
  CHANNEL_VERSION_V2,
  V2_NO,
  V2_RECORD_BYTES,
  V2_RESPONSE_BYTES,
  V2_SERVER_MSG_BYTES,
  v1ToV2,
  v2ToV1,
  writeRecordV2,
} from '../../../src/channel/v2';
import { encodeHello } from '../../../src/channel/client-msg';
import { writeRecord } from '../../../src/channel/record';

/**
 * Channel v2 (issue 6 part 5) and stray clients, with real sockets on loopback: the shared
 * secret handshake both ways, clear refusals, and garbage on the channel port.
 */

const CLIENT = parseIpv4('198.18.20.1');
const TARGET = parseIpv4('198.18.20.2');
const SECRET = Buffer.from('0123456789abcdef-the-secret');
const OTHER = Buffer.from('fedcba9876543210-another-one');

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
  /** One SYN-ACK from the target to CLIENT:port. */
  synAck(port: number): void {
    const r = newTcpRepr();
    Object.assign(r, {
      srcIp: TARGET,
      dstIp: CLIENT,
      srcPort: 8080,
      dstPort: port,
      seq: 1000,
      ack: 2000,
      flags: TCP_SYN | TCP_ACK,
      window: 65535,
      mss: 1460,
    });
    const b = Buffer.alloc(200);
    const n = emitIpv4Tcp(r, null, 0, 0, b, 0);
    this.rx?.packet(LINKTYPE_RAW, b, 0, n, n, Date.now());
    this.rx?.batchEnd(Date.now());
  }
}

function recLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const w = (m: string): void => {
    lines.push(m);
  };
  return { lines, debug: w, info: w, warn: w, error: w };
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function withIntercept(
  secret: Buffer | null,
  fn: (icp: Intercept, src: FakeSource, log: ReturnType<typeof recLogger>) => Promise<void>,
): Promise<void> {
  const src = new FakeSource();
  const log = recLogger();
  const icp = new Intercept(
    { host: '127.0.0.1', port: 0, helloTimeoutMs: 300, refuseGraceMs: 100, ...(secret ? { secret } : {}) },
    src,
    log,
  );
  await icp.start();
  try {
    await fn(icp, src, log);
  } finally {
    await icp.stop();
  }
}

function client(port: number, secret: Buffer | null, segs: TcpSegment[]): ChannelClient {
  return new ChannelClient(
    {
      servers: [{ host: '127.0.0.1', port }],
      connections: 1,
      reconnect: false,
      recordBytes: 64,
      connectTimeoutMs: 1000,
      ...(secret ? { secret } : {}),
    },
    (b, off, len) => {
      const s = newSegment();
      assert.equal(parseIpv4Tcp(Buffer.from(b.subarray(off, off + len)), 0, len, s, true), 'ok');
      segs.push(s);
    },
    { warn() {}, info() {} },
  );
}

async function refusal(p: Promise<void>): Promise<TcpcopyError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof TcpcopyError, String(e));
    return e;
  }
  assert.fail('connect should have been refused');
}

test('v2 record layout: IPv4 record round-trips through v2; IPv6 version is reported', () => {
  const r = newTcpRepr();
  Object.assign(r, {
    srcIp: TARGET,
    dstIp: CLIENT,
    srcPort: 8080,
    dstPort: 40000,
    seq: 7,
    ack: 9,
    flags: TCP_ACK,
    window: 100,
    hasTs: true,
    tsVal: 5,
    tsEcr: 6,
  });
  const pkt = Buffer.alloc(200);
  const n = emitIpv4Tcp(r, null, 0, 0, pkt, 0);
  const seg = newSegment();
  assert.equal(parseIpv4Tcp(pkt, 0, n, seg), 'ok');
  const v1 = Buffer.alloc(64);
  writeRecord(seg, v1, 0, 64);
  const v2 = Buffer.alloc(V2_RECORD_BYTES + 10, 0xee);
  writeRecordV2(seg, v2, 5);
  assert.equal(v2[5], 4);
  const back = Buffer.alloc(64);
  assert.equal(v2ToV1(v2, 5, back, 0), 4);
  assert.deepEqual(back, v1);
  const v2b = Buffer.alloc(V2_RECORD_BYTES);
  v1ToV2(v1, 0, v2b, 0);
  assert.deepEqual(v2b, v2.subarray(5, 5 + V2_RECORD_BYTES));
  v2b[0] = 6;
  assert.equal(v2ToV1(v2b, 0, back, 0), 6);
  v2b[0] = 9;
  assert.equal(v2ToV1(v2b, 0, back, 0), 0);
});

test('v2: the same secret on both sides authenticates and replies flow (v2 records)', async () => {
  await withIntercept(SECRET, async (icp, src) => {
    const segs: TcpSegment[] = [];
    const c = client(icp.port, SECRET, segs);
    await c.connect();
    c.addClient(CLIENT, 40000, TARGET, 8080);
    c.flush();
    await until(() => icp.stats().routes === 1);
    src.synAck(40000);
    await until(() => segs.length === 1);
    assert.equal(segs[0]?.dstPort, 40000);
    assert.equal(segs[0]?.flags, TCP_SYN | TCP_ACK);
    const st = icp.stats();
    assert.equal(st.authOk, 1);
    // one frame with the answer to tcpcopy's caps question (src/channel/caps.ts), one with the SYN-ACK
    assert.equal(st.perPeer[0]?.bytes, 2 * (2 + V2_RECORD_BYTES));
    assert.equal(st.capsAnswered, 1);
    await c.close();
  });
});

test('v2: a wrong secret is refused with a clear message on both sides', async () => {
  await withIntercept(SECRET, async (icp, _src, log) => {
    const e = await refusal(client(icp.port, OTHER, []).connect());
    assert.equal(e.code, 'ERR_CHANNEL_AUTH');
    assert.match(e.message, /refused the shared secret: --secret-file differs/);
    await until(() => icp.stats().authRefused === 1);
    assert.ok(
      log.lines.some((l) => /refused: wrong shared secret/.test(l)),
      log.lines.join('\n'),
    );
    assert.equal(icp.stats().routes, 0);
  });
});

test('v2: a refused peer that keeps its side open is closed after the grace (issue 18 item 6)', async () => {
  await withIntercept(SECRET, async (icp) => {
    // a hostile peer: half-open allowed, so it never closes by itself after intercept's FIN
    const s = net.connect({ port: icp.port, host: '127.0.0.1', allowHalfOpen: true });
    await once(s, 'connect');
    const got: Buffer[] = [];
    s.on('data', (b: Buffer) => got.push(b));
    s.on('error', () => {});
    const hello = Buffer.alloc(14);
    encodeHello(hello, 0, CHANNEL_VERSION_V2);
    s.write(hello);
    await until(() => Buffer.concat(got).length >= V2_SERVER_MSG_BYTES);
    s.write(Buffer.alloc(V2_RESPONSE_BYTES, 0x55)); // a wrong proof
    await once(s, 'end');
    const all = Buffer.concat(got);
    assert.deepEqual(all.subarray(V2_SERVER_MSG_BYTES, V2_SERVER_MSG_BYTES + 4), V2_NO);
    // keep writing: once intercept has destroyed its socket, the kernel resets ours
    const closed = new Promise((resolve) => s.once('close', resolve)); // (events.once would reject on the EPIPE)
    const tick = setInterval(() => {
      if (!s.destroyed) s.write('x', () => {});
    }, 20);
    try {
      await closed;
    } finally {
      clearInterval(tick);
    }
    assert.equal(icp.stats().authRefused, 1);
  });
});

test('v2: secret vs no secret, either way, is refused clearly', async () => {
  await withIntercept(null, async (icp, _src, log) => {
    const e = await refusal(client(icp.port, SECRET, []).connect());
    assert.equal(e.code, 'ERR_CHANNEL_AUTH');
    assert.match(e.message, /started without --secret-file/);
    assert.ok(
      log.lines.some((l) => /asks for channel v2 .* no --secret-file/.test(l)),
      log.lines.join('\n'),
    );
  });
  await withIntercept(SECRET, async (icp, _src, log) => {
    // a 1.x client cannot know before the hello: it connects, then intercept closes it
    const c = client(icp.port, null, []);
    const downs: string[] = [];
    c.onDown = (ev) => {
      downs.push(ev.reason);
    };
    await c.connect();
    await until(() => downs.length === 1);
    assert.match(downs[0] ?? '', /does it require --secret-file/);
    await c.close();
    await until(() => icp.stats().authRefused === 1);
    assert.ok(
      log.lines.some((l) => /requires channel v2: give tcpcopy the same --secret-file/.test(l)),
      log.lines.join('\n'),
    );
  });
});

test('stray clients: garbage and silence are disconnected and counted; intercept keeps serving', async () => {
  await withIntercept(null, async (icp, src) => {
    const garbage = net.connect(icp.port, '127.0.0.1');
    await once(garbage, 'connect');
    garbage.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n' + 'x'.repeat(1000));
    await once(garbage, 'close');
    const silent = net.connect(icp.port, '127.0.0.1');
    await once(silent, 'connect');
    await once(silent, 'close'); // helloTimeoutMs 300
    assert.equal(icp.stats().badHello, 2);
    const segs: TcpSegment[] = [];
    const c = client(icp.port, null, segs);
    await c.connect();
    c.addClient(CLIENT, 40001, TARGET, 8080);
    c.flush();
    await until(() => icp.stats().routes === 1);
    src.synAck(40001);
    await until(() => segs.length === 1);
    await c.close();
  });
});
