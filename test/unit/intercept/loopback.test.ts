import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { once } from 'node:events';
import { Intercept } from '../../../src/intercept/intercept';
import { nullLogger } from '../../../src/intercept/types';
import { ChannelClient, type ChannelDownEvent } from '../../../src/io/channel-client';
import type { PacketReceiver, PacketSource, SourceStats } from '../../../src/io/types';
import { parseIpv4Tcp } from '../../../src/core/wire/decode';
import { newSegment, parseIpv4, type TcpSegment } from '../../../src/core/wire/segment';
import { TcpcopyError } from '../../../src/core/errors';
import { readPcap } from '../channel/fixtures';

const pcap = readPcap('replies.pcap');
const CLIENT = parseIpv4('198.18.20.1');
const TARGET = parseIpv4('198.18.20.2');

/** A PacketSource the test drives by hand. */
class FakeSource implements PacketSource {
  rx: PacketReceiver | null = null;
  received = 0;
  async start(rx: PacketReceiver): Promise<void> {
    this.rx = rx;
  }
  async stop(): Promise<void> {
    this.rx = null;
  }
  stats(): SourceStats {
    return { received: this.received, dropped: 0 };
  }
  /** Delivers pcap frames as one batch (copied into one reused block, like a ring). */
  batch(indices: number[]): void {
    const block = Buffer.alloc(4096);
    for (const i of indices) {
      const f = pcap.frames[i] as Buffer;
      f.copy(block, 100);
      this.rx?.packet(pcap.linkType, block, 100, f.length, f.length, Date.now());
      block.fill(0xcc); // bytes are only valid during the call
      this.received++;
    }
    this.rx?.batchEnd(Date.now());
  }
}

const quiet = { warn() {}, info() {} };

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

function collector(): { segs: TcpSegment[]; onRecord: (b: Buffer, off: number, len: number) => void } {
  const segs: TcpSegment[] = [];
  return {
    segs,
    onRecord: (b, off, len) => {
      const s = newSegment();
      assert.equal(parseIpv4Tcp(Buffer.from(b.subarray(off, off + len)), 0, len, s, true), 'ok');
      segs.push(s);
    },
  };
}

test('tcpcopy side receives the records of its registered clients over real sockets', async () => {
  const src = new FakeSource();
  const icp = new Intercept({ host: '127.0.0.1', port: 0 }, src, nullLogger);
  await icp.start();
  const a = collector();
  const b = collector();
  const ca = new ChannelClient(
    { servers: [{ host: '127.0.0.1', port: icp.port }], connections: 2, reconnect: false, recordBytes: 64 },
    a.onRecord,
    quiet,
  );
  const cb = new ChannelClient(
    { servers: [{ host: '127.0.0.1', port: icp.port }], connections: 1, reconnect: false, recordBytes: 64 },
    b.onRecord,
    quiet,
  );
  try {
    await ca.connect();
    await cb.connect();
    assert.equal(ca.up, true);
    for (let port = 40001; port <= 40004; port++) ca.addClient(CLIENT, port, TARGET, 8080);
    cb.addClient(CLIENT, 40005, TARGET, 8080);
    await until(() => icp.stats().routesAdded === 5);
    const all = pcap.frames.map((_f, i) => i);
    src.batch(all);
    const want = (lo: number, hi: number): number =>
      pcap.frames.filter((f) => {
        const p = f.readUInt16BE(14 + 22);
        return p >= lo && p <= hi;
      }).length;
    await until(() => a.segs.length === want(40001, 40004) && b.segs.length === want(40005, 40005));
    assert.ok(
      a.segs.every((s) => s.dstPort >= 40001 && s.dstPort <= 40004 && s.srcPort === 8080 && s.dstIp === CLIENT),
    );
    assert.ok(b.segs.every((s) => s.dstPort === 40005));
    const st = icp.stats();
    assert.equal(st.peers, 3);
    assert.equal(st.routed, want(40001, 40005));
    assert.equal(st.capture.received, pcap.frames.length);
    const cs = ca.stats();
    assert.equal(cs.connected, 2);
    assert.equal(cs.recordsReceived, a.segs.length);
    assert.ok(cs.framesReceived >= 1);
    assert.equal(cs.bytesSent, 2 * 14 + 4 * 14);
  } finally {
    await ca.close();
    await cb.close();
    await icp.stop();
  }
});

test('a SYN-ACK captured before CLIENT_ADD arrives is delivered once it does', async () => {
  const src = new FakeSource();
  const icp = new Intercept({ host: '127.0.0.1', port: 0 }, src, nullLogger);
  await icp.start();
  const a = collector();
  const ca = new ChannelClient(
    { servers: [{ host: '127.0.0.1', port: icp.port }], connections: 1, reconnect: false, recordBytes: 64 },
    a.onRecord,
    quiet,
  );
  try {
    await ca.connect();
    const i = pcap.frames.findIndex((f) => f[14 + 33] === 0x12);
    src.batch([i]);
    assert.equal(icp.stats().held, 1);
    ca.addClient(CLIENT, (pcap.frames[i] as Buffer).readUInt16BE(14 + 22), TARGET, 8080);
    await until(() => a.segs.length === 1);
    assert.equal(a.segs[0]!.flags, 0x12);
    assert.equal(icp.stats().heldDelivered, 1);
  } finally {
    await ca.close();
    await icp.stop();
  }
});

test('unreachable intercept: ERR_INTERCEPT_UNREACHABLE naming the address', async () => {
  const s = net.createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  const c = new ChannelClient(
    { servers: [{ host: '127.0.0.1', port }], connections: 1, reconnect: false, recordBytes: 64 },
    () => {},
    quiet,
  );
  await assert.rejects(
    c.connect(),
    (e: unknown) =>
      e instanceof TcpcopyError && e.code === 'ERR_INTERCEPT_UNREACHABLE' && e.message.includes(`127.0.0.1:${port}`),
  );
});

test('bad -C is refused', () => {
  assert.throws(
    () =>
      new ChannelClient(
        { servers: [{ host: '127.0.0.1', port: 1 }], connections: 12, reconnect: false, recordBytes: 64 },
        () => {},
        quiet,
      ),
    /-C 12/,
  );
});

test('lost intercept: onDown fires, the client reconnects with -L and works again', async () => {
  const src = new FakeSource();
  let icp = new Intercept({ host: '127.0.0.1', port: 0 }, src, nullLogger);
  await icp.start();
  const port = icp.port;
  const a = collector();
  const warns: string[] = [];
  const ca = new ChannelClient(
    { servers: [{ host: '127.0.0.1', port }], connections: 1, reconnect: true, recordBytes: 64 },
    a.onRecord,
    { warn: (m) => warns.push(m), info() {} },
  );
  const downs: ChannelDownEvent[] = [];
  ca.onDown = (e) => downs.push(e);
  const ups: string[] = [];
  ca.onReconnect = (s) => ups.push(s);
  try {
    await ca.connect();
    await icp.stop();
    await until(() => downs.length === 1);
    assert.equal(downs[0]!.willReconnect, true);
    assert.equal(downs[0]!.serverDown, true);
    assert.equal(ca.up, false);
    assert.match(warns[0]!, /connection lost/);
    ca.addClient(CLIENT, 40001, TARGET, 8080);
    await new Promise((r) => setImmediate(r));
    assert.equal(ca.stats().dropped, 1, 'messages while down are counted');
    icp = new Intercept({ host: '127.0.0.1', port }, src, nullLogger);
    await icp.start();
    await until(() => ca.up, 6000);
    assert.equal(ca.stats().reconnects, 1);
    assert.deepEqual(ups, [`127.0.0.1:${port}`]);
    ca.addClient(CLIENT, 40001, TARGET, 8080);
    await until(() => icp.stats().routesAdded === 1);
    src.batch([0]);
    await until(() => a.segs.length === 1);
  } finally {
    await ca.close();
    await icp.stop();
  }
});

test('without -L a lost intercept is reported and not retried', async () => {
  const icp = new Intercept({ host: '127.0.0.1', port: 0 }, new FakeSource(), nullLogger);
  await icp.start();
  const warns: string[] = [];
  const ca = new ChannelClient(
    { servers: [{ host: '127.0.0.1', port: icp.port }], connections: 1, reconnect: false, recordBytes: 64 },
    () => {},
    { warn: (m) => warns.push(m), info() {} },
  );
  const downs: ChannelDownEvent[] = [];
  ca.onDown = (e) => downs.push(e);
  await ca.connect();
  await icp.stop();
  await until(() => downs.length === 1);
  assert.equal(downs[0]!.willReconnect, false);
  assert.match(warns[0]!, /-L not given/);
  assert.equal(ca.stats().disconnects, 1);
  await ca.close();
});

test('a frame count above the limit is a protocol error: counted, connection dropped', async () => {
  const server = net.createServer((s) => {
    s.once('data', () => {
      const b = Buffer.alloc(2 + 17 * 64);
      b.writeUInt16BE(17, 0);
      s.write(b);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const ca = new ChannelClient(
    { servers: [{ host: '127.0.0.1', port }], connections: 1, reconnect: false, recordBytes: 64 },
    () => assert.fail('no record'),
    quiet,
  );
  const downs: ChannelDownEvent[] = [];
  ca.onDown = (e) => downs.push(e);
  try {
    await ca.connect();
    await until(() => downs.length === 1);
    assert.match(downs[0]!.reason, /protocol error/);
    assert.equal(ca.stats().protocolErrors, 1);
  } finally {
    await ca.close();
    server.close();
  }
});

test('intercept rejects a tcpcopy that does not say hello and keeps serving', async () => {
  const icp = new Intercept({ host: '127.0.0.1', port: 0 }, new FakeSource(), nullLogger);
  await icp.start();
  try {
    const s = net.connect(icp.port, '127.0.0.1');
    await once(s, 'connect');
    const m = Buffer.alloc(14, 1);
    s.write(m);
    await once(s, 'close');
    assert.equal(icp.stats().badHello, 1);
    const ca = new ChannelClient(
      { servers: [{ host: '127.0.0.1', port: icp.port }], connections: 1, reconnect: false, recordBytes: 64 },
      () => {},
      quiet,
    );
    await ca.connect();
    ca.addClient(CLIENT, 1, TARGET, 2);
    await until(() => icp.stats().routesAdded === 1);
    await ca.close();
  } finally {
    await icp.stop();
  }
});
