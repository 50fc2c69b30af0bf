/**
 * The agent's native forwarder (native/forward.c) over a real loopback TCP connection, read back
 * with the replayer's StreamDecoder: the STATUS frames it writes itself (clock, drops since the
 * previous one, kernel drops only to destination 0) and its behaviour without a socket.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { loadNative } from '../../../src/io/native';
import { FWD_STAT_COUNT, FWD_STATS } from '../../../src/agent/agent';
import { encodeHello } from '../../../src/agent/stream-format';
import type { AgentStatus } from '../../../src/agent/stream-format';
import { StreamDecoder } from '../../../src/agent/stream-decoder';

interface Pair {
  client: net.Socket;
  statuses: AgentStatus[];
  close(): Promise<void>;
}

/** A replayer stand-in on 127.0.0.1 decoding what arrives, and a connected client socket that has sent a hello. */
async function pair(shard: number, shards: number): Promise<Pair> {
  const statuses: AgentStatus[] = [];
  const server = net.createServer((s) => {
    const dec = new StreamDecoder(
      { secret: null, nonce: () => Buffer.alloc(32), name: 'test' },
      {
        write: (b) => s.write(b),
        identified: () => undefined,
        packet: () => undefined,
        batchEnd: () => undefined,
        status: (st) => statuses.push(st),
        query: () => undefined,
        fail: (r) => assert.fail(r),
      },
    );
    s.on('data', (c: Buffer) => dec.feed(c));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const client = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((r) => client.on('connect', r));
  const hello = encodeHello({ flags: 0, littleEndian: true, agentId: 1, shard, shards, name: 't' });
  await new Promise<void>((r) => client.write(hello, () => r()));
  return {
    client,
    statuses,
    async close() {
      client.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function fdOf(s: net.Socket): number {
  const fd = (s as unknown as { _handle?: { fd?: number } })._handle?.fd;
  assert.ok(fd !== undefined && fd >= 0, 'socket descriptor');
  return fd;
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('fwdStatus: the clock, the kernel drops since the previous STATUS (destination 0 only), sent packets', async () => {
  const native = loadNative();
  const fwd = native.fwdCreate(2, 1, 65536, 0);
  const p0 = await pair(0, 2);
  const p1 = await pair(1, 2);
  try {
    native.fwdSetFd(fwd, 0, fdOf(p0.client));
    native.fwdSetFd(fwd, 1, fdOf(p1.client));
    assert.equal(native.fwdStatus(fwd, 0, 1_700_000_000_123.5, 7), true);
    assert.equal(native.fwdStatus(fwd, 1, 1_700_000_000_124, 7), true);
    assert.equal(native.fwdStatus(fwd, 0, 1_700_000_001_000, 10), true);
    // a smaller total (read before the previous one) reports nothing and does not go back
    assert.equal(native.fwdStatus(fwd, 0, 1_700_000_002_000, 9), true);
    assert.equal(native.fwdStatus(fwd, 0, 1_700_000_003_000, 12), true);
    await until(() => p0.statuses.length === 4 && p1.statuses.length === 1, 'the STATUS frames');
    assert.deepEqual(
      p0.statuses.map((s) => [
        s.nowMs,
        s.kernelDropped,
        s.droppedFrames,
        s.droppedPackets,
        s.droppedData,
        s.sentPackets,
      ]),
      [
        [1_700_000_000_123.5, 7, 0, 0, 0, 0],
        [1_700_000_001_000, 3, 0, 0, 0, 0],
        [1_700_000_002_000, 0, 0, 0, 0, 0],
        [1_700_000_003_000, 2, 0, 0, 0, 0],
      ],
    );
    assert.equal(p1.statuses[0]?.kernelDropped, 0);
    assert.equal(p1.statuses[0]?.nowMs, 1_700_000_000_124);
    const st = new Float64Array(2 * FWD_STAT_COUNT);
    native.fwdStats(fwd, st);
    assert.equal(st[FWD_STATS.indexOf('up')], 1);
    assert.equal(st[FWD_STAT_COUNT + FWD_STATS.indexOf('up')], 1);
    // down: nothing is queued, and the stats say so
    native.fwdSetFd(fwd, 1, -1);
    assert.equal(native.fwdStatus(fwd, 1, 1_700_000_004_000, 0), false);
    native.fwdStats(fwd, st);
    assert.equal(st[FWD_STAT_COUNT + FWD_STATS.indexOf('up')], 0);
    assert.throws(() => native.fwdStatus(fwd, 2, 0, 0), /no such|bad arguments/);
  } finally {
    native.fwdSetFd(fwd, 0, -1);
    native.fwdSetFd(fwd, 1, -1);
    await p0.close();
    await p1.close();
  }
});
