/** The agent stream: hello, STATUS, PACKETS chains, the decoder fed in arbitrary chunks, pcap streams, v2 auth. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { V2ClientHandshake } from '../../../src/channel/v2';
import {
  buildChain,
  decodeHello,
  encodeHello,
  encodeStatus,
  FRAME_HEADER_BYTES,
  FRAME_PACKETS,
  HELLO_AUTH,
  HELLO_QUERY,
  writeFrameHeader,
} from '../../../src/agent/stream-format';
import { StreamDecoder, type StreamEvents, type StreamKind } from '../../../src/agent/stream-decoder';
import type { AgentHello, AgentStatus } from '../../../src/agent/stream-format';

const SECRET = Buffer.from('0123456789abcdef0123456789abcdef');
const NONCE_S = Buffer.alloc(32, 7);

/** A frame of `n` distinct bytes (its content says which one it is). */
function frame(i: number, len = 60): Buffer {
  const b = Buffer.alloc(len);
  b.writeUInt32BE(i, 0);
  for (let k = 4; k < len; k++) b[k] = (i * 31 + k) & 0xff;
  return b;
}

function packetsFrame(frames: Buffer[], tsMs: number, seq: number, link = 1): Buffer {
  const body = buildChain(frames.map((data, i) => ({ data, tsMs: tsMs + i })));
  const h = Buffer.alloc(FRAME_HEADER_BYTES);
  writeFrameHeader(h, 0, FRAME_PACKETS, link, body.length, frames.length, seq);
  return Buffer.concat([h, body]);
}

interface Seen {
  kind: StreamKind | null;
  hello: AgentHello | null;
  packets: Array<{ link: number; data: string; ts: number }>;
  statuses: AgentStatus[];
  writes: Buffer[];
  queries: number;
  fail: string | null;
  batches: number;
}

function decoder(secret: Buffer | null = null): { dec: StreamDecoder; seen: Seen } {
  const seen: Seen = {
    kind: null,
    hello: null,
    packets: [],
    statuses: [],
    writes: [],
    queries: 0,
    fail: null,
    batches: 0,
  };
  const ev: StreamEvents = {
    write: (b) => seen.writes.push(Buffer.from(b)),
    identified: (k, h) => {
      seen.kind = k;
      seen.hello = h;
    },
    packet: (link, b, off, cap, _orig, ts) => seen.packets.push({ link, data: b.toString('hex', off, off + cap), ts }),
    batchEnd: () => seen.batches++,
    status: (s) => seen.statuses.push(s),
    query: () => seen.queries++,
    fail: (r) => (seen.fail = r),
  };
  return { dec: new StreamDecoder({ secret, nonce: () => NONCE_S, name: 'test' }, ev), seen };
}

function feedChunked(dec: StreamDecoder, bytes: Buffer, sizes: number[]): void {
  let off = 0;
  let i = 0;
  while (off < bytes.length) {
    const n = Math.max(1, sizes[i++ % sizes.length] as number);
    dec.feed(bytes.subarray(off, off + n));
    off += n;
  }
}

const hello = (flags = 0): Buffer =>
  encodeHello({
    flags,
    littleEndian: true,
    agentId: 0xdeadbeef,
    shard: 1,
    shards: 2,
    name: 'online-host-with-a-long-name',
  });

test('hello round trip; the name is cut to 16 bytes; a bad magic or version is a reason', () => {
  const h = decodeHello(hello(HELLO_AUTH), 0);
  assert.notEqual(typeof h, 'string');
  const v = h as AgentHello;
  assert.deepEqual(
    { id: v.agentId, shard: v.shard, shards: v.shards, name: v.name, le: v.littleEndian, flags: v.flags },
    { id: 0xdeadbeef, shard: 1, shards: 2, name: 'online-host-with', le: true, flags: HELLO_AUTH },
  );
  const bad = hello();
  bad[4] = 9;
  assert.match(decodeHello(bad, 0) as string, /version 9/);
  assert.equal(decodeHello(Buffer.alloc(32), 0), 'not an agent hello');
});

test('agent stream in every chunking: packets in order with timestamps, STATUS, one batch per frame', () => {
  const f1 = [frame(1), frame(2, 1514), frame(3)];
  const f2 = [frame(4, 100)];
  const status: AgentStatus = {
    nowMs: 1.7e12,
    droppedFrames: 2,
    droppedPackets: 9,
    droppedData: 4,
    kernelDropped: 1,
    sentPackets: 44,
  };
  const stream = Buffer.concat([
    hello(),
    packetsFrame(f1, 1000, 0),
    encodeStatus(status, 1),
    packetsFrame(f2, 2000, 2),
  ]);
  for (const sizes of [[stream.length], [1], [3, 17, 5], [31, 64, 1000]]) {
    const { dec, seen } = decoder();
    feedChunked(dec, stream, sizes);
    assert.equal(seen.fail, null);
    assert.equal(seen.kind, 'agent');
    assert.equal(seen.hello?.agentId, 0xdeadbeef);
    assert.deepEqual(
      seen.packets.map((p) => p.data),
      [...f1, ...f2].map((b) => b.toString('hex')),
    );
    assert.deepEqual(
      seen.packets.map((p) => Math.round(p.ts)),
      [1000, 1001, 1002, 2000],
    );
    assert.deepEqual(seen.statuses, [status]);
    assert.equal(seen.batches, 2);
    assert.equal(dec.stats.damaged, 0);
  }
});

test('a chain that claims more packets than it holds delivers what fits and counts the rest damaged', () => {
  const { dec, seen } = decoder();
  const f = packetsFrame([frame(1), frame(2)], 0, 0);
  f.writeUInt32BE(5, 8); // count 5, two present
  dec.feed(Buffer.concat([hello(), f]));
  assert.equal(seen.packets.length, 2);
  assert.equal(dec.stats.damaged, 3);
  // an entry whose frame runs past the body ends the walk
  const { dec: d2, seen: s2 } = decoder();
  const g = packetsFrame([frame(1), frame(2)], 0, 0);
  g.writeUInt32LE(100000, FRAME_HEADER_BYTES + 144 + 12); // second entry (at 144: 80 + 60 aligned to 16) snaplen
  d2.feed(Buffer.concat([hello(), g]));
  assert.equal(s2.packets.length, 1);
  assert.equal(d2.stats.damaged, 1);
  assert.equal(s2.fail, null);
});

test('a frame longer than the limit, or garbage instead of a hello, fails the stream (no throw)', () => {
  const { dec, seen } = decoder();
  const h = Buffer.alloc(FRAME_HEADER_BYTES);
  writeFrameHeader(h, 0, FRAME_PACKETS, 1, 0xffffffff, 1, 0);
  dec.feed(Buffer.concat([hello(), h]));
  assert.match(seen.fail ?? '', /frame of 4294967295 bytes/);
  const { dec: d2, seen: s2 } = decoder();
  d2.feed(Buffer.from('GET / HTTP/1.1\r\n'));
  assert.match(s2.fail ?? '', /not an agent stream, pcap or pcapng/);
});

/** A classic pcap stream (microsecond, little-endian) of raw-IP frames. */
function pcapStream(frames: Buffer[]): Buffer {
  const hdr = Buffer.alloc(24);
  hdr.writeUInt32LE(0xa1b2c3d4, 0);
  hdr.writeUInt16LE(2, 4);
  hdr.writeUInt16LE(4, 6);
  hdr.writeUInt32LE(65535, 16);
  hdr.writeUInt32LE(101, 20);
  const recs = frames.map((f, i) => {
    const r = Buffer.alloc(16);
    r.writeUInt32LE(100 + i, 0);
    r.writeUInt32LE(250000, 4);
    r.writeUInt32LE(f.length, 8);
    r.writeUInt32LE(f.length, 12);
    return Buffer.concat([r, f]);
  });
  return Buffer.concat([hdr, ...recs]);
}

test('a plain pcap stream (tcpdump -U -w -) in any chunking', () => {
  const frames = [frame(1), frame(2, 400), frame(3)];
  const bytes = pcapStream(frames);
  for (const sizes of [[bytes.length], [1], [7, 23]]) {
    const { dec, seen } = decoder();
    feedChunked(dec, bytes, sizes);
    assert.equal(seen.fail, null);
    assert.equal(seen.kind, 'pcap');
    assert.deepEqual(
      seen.packets.map((p) => [p.link, p.data, p.ts]),
      frames.map((f, i) => [101, f.toString('hex'), (100 + i) * 1000 + 250]),
    );
  }
});

test('with a secret: a pcap stream and an agent without --secret-file are refused', () => {
  const { dec, seen } = decoder(SECRET);
  dec.feed(pcapStream([frame(1)]));
  assert.match(seen.fail ?? '', /plain pcap stream refused/);
  assert.equal(seen.packets.length, 0);
  const { dec: d2, seen: s2 } = decoder(SECRET);
  d2.feed(Buffer.concat([hello(), packetsFrame([frame(1)], 0, 0)]));
  assert.match(s2.fail ?? '', /requires one/);
  assert.equal(s2.writes[0]?.subarray(0, 4).toString(), 'TCNO');
  assert.equal(s2.packets.length, 0);
});

/** Runs the agent's side of the handshake against a decoder; returns the decoder's events. */
function handshake(
  agentSecret: Buffer,
  replayerSecret: Buffer | null,
  flags = HELLO_AUTH,
): { seen: Seen; ok: boolean; dec: StreamDecoder } {
  const { dec, seen } = decoder(replayerSecret);
  const hs = new V2ClientHandshake(agentSecret, Buffer.alloc(32, 9));
  dec.feed(hello(flags));
  let ok = false;
  for (let i = 0; i < seen.writes.length && i < 4; i++) {
    const step = hs.feed(seen.writes[i] as Buffer);
    if (step.kind === 'send') dec.feed(step.bytes);
    if (step.kind === 'ok') ok = true;
    if (step.kind === 'fail') break;
  }
  return { seen, ok, dec };
}

test('channel v2 auth: the same secret streams, a different one is refused before any packet', () => {
  const good = handshake(SECRET, SECRET);
  assert.equal(good.ok, true);
  assert.equal(good.seen.kind, 'agent');
  good.dec.feed(packetsFrame([frame(5)], 0, 0));
  assert.equal(good.seen.packets.length, 1);

  const bad = handshake(Buffer.from('another secret, also long enough'), SECRET);
  assert.equal(bad.ok, false);
  assert.match(bad.seen.fail ?? '', /wrong shared secret/);
  assert.equal(bad.seen.kind, null);
  bad.dec.feed(packetsFrame([frame(5)], 0, 0));
  assert.equal(bad.seen.packets.length, 0);

  const none = handshake(SECRET, null);
  assert.equal(none.ok, false);
  assert.match(none.seen.fail ?? '', /has none/);
});

test('a query (doctor) is answered after the handshake, not before', () => {
  const q = handshake(SECRET, SECRET, HELLO_AUTH | HELLO_QUERY);
  assert.equal(q.ok, true);
  assert.equal(q.seen.queries, 1);
  const { dec, seen } = decoder(SECRET);
  dec.feed(hello(HELLO_QUERY));
  assert.equal(seen.queries, 0);
});
