import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { ChannelClient } from '../../../src/io/channel-client';
import { CLIENT_MSG_BYTES, MSG_CLIENT_ADD, MSG_CLIENT_DEL } from '../../../src/channel/constants';

const quiet = { warn() {}, info() {} };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Message types received so far (the hello excluded), in order. */
async function withServer(fn: (port: number, types: () => number[]) => Promise<void>): Promise<void> {
  const chunks: Buffer[] = [];
  const socks: net.Socket[] = [];
  const srv = net.createServer((s) => {
    socks.push(s);
    s.on('data', (d: Buffer) => chunks.push(d));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  const types = (): number[] => {
    const all = Buffer.concat(chunks);
    const out: number[] = [];
    for (let o = CLIENT_MSG_BYTES; o + CLIENT_MSG_BYTES <= all.length; o += CLIENT_MSG_BYTES)
      out.push(all.readUInt16BE(o + 6));
    return out;
  };
  try {
    await fn(port, types);
  } finally {
    for (const s of socks) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  }
}

test('autoFlush false + flushUrgent: CLIENT_ADD leaves at once, CLIENT_DEL-only batches within delFlushMs, order kept', async () => {
  await withServer(async (port, types) => {
    const ch = new ChannelClient(
      {
        servers: [{ host: '127.0.0.1', port }],
        connections: 1,
        reconnect: false,
        recordBytes: 64,
        autoFlush: false,
        delFlushMs: 60,
      },
      () => {},
      quiet,
    );
    await ch.connect();
    try {
      ch.delClient(1, 1000, 2, 80);
      ch.flushUrgent();
      await sleep(25);
      assert.deepEqual(types(), [], 'a DEL-only batch waits');
      ch.addClient(1, 1000, 2, 80);
      ch.flushUrgent();
      await sleep(25);
      assert.deepEqual(types(), [MSG_CLIENT_DEL, MSG_CLIENT_ADD], 'the ADD carries the DEL queued before it, in order');
      ch.delClient(1, 1001, 2, 80);
      ch.delClient(1, 1002, 2, 80);
      ch.flushUrgent();
      await sleep(120);
      assert.deepEqual(
        types(),
        [MSG_CLIENT_DEL, MSG_CLIENT_ADD, MSG_CLIENT_DEL, MSG_CLIENT_DEL],
        'DELs written by the timer',
      );
    } finally {
      await ch.close();
    }
  });
});

test('autoFlush false: nothing is written until flush()', async () => {
  await withServer(async (port, types) => {
    const ch = new ChannelClient(
      { servers: [{ host: '127.0.0.1', port }], connections: 1, reconnect: false, recordBytes: 64, autoFlush: false },
      () => {},
      quiet,
    );
    await ch.connect();
    try {
      ch.addClient(1, 1000, 2, 80);
      await sleep(25);
      assert.deepEqual(types(), []);
      ch.flush();
      await sleep(25);
      assert.deepEqual(types(), [MSG_CLIENT_ADD]);
    } finally {
      await ch.close();
    }
  });
});
