import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { ChannelClient } from '../../../src/io/channel-client';
import { CLIENT_MSG_BYTES, MSG_CLIENT_ADD, MSG_CLIENT_DEL } from '../../../src/channel/constants';

const quiet = { warn() {}, info() {} };
/** Resolves once `cond` holds (polled on setImmediate, which the mocked timers leave alone); bounded. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100_000; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  assert.fail(`never: ${what}`);
}

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

/**
 * What is written is read from the client's own counter (bytesSent grows when a batch is handed
 * to the socket, synchronously), so "nothing written" needs no waiting; the CLIENT_DEL timer runs
 * on mocked timers (tick), and the server's view is awaited as an event.
 */
test('autoFlush false + flushUrgent: CLIENT_ADD leaves at once, CLIENT_DEL-only batches at delFlushMs, order kept', async (t) => {
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
    t.mock.timers.enable({ apis: ['setTimeout'] });
    try {
      const hello = ch.stats().bytesSent;
      const sent = (): number => (ch.stats().bytesSent - hello) / CLIENT_MSG_BYTES;
      ch.delClient(1, 1000, 2, 80);
      ch.flushUrgent();
      assert.equal(sent(), 0, 'a DEL-only batch waits');
      ch.addClient(1, 1000, 2, 80);
      ch.flushUrgent();
      assert.equal(sent(), 2, 'the ADD is written at once, with the DEL queued before it');
      await until(() => types().length === 2, 'the server got 2 messages');
      assert.deepEqual(types(), [MSG_CLIENT_DEL, MSG_CLIENT_ADD], 'in order');
      t.mock.timers.tick(60); // the timer armed by the first DEL: nothing left to write
      assert.equal(sent(), 2);
      ch.delClient(1, 1001, 2, 80);
      ch.delClient(1, 1002, 2, 80);
      ch.flushUrgent();
      ch.flushUrgent(); // one timer for all
      t.mock.timers.tick(59);
      assert.equal(sent(), 2, 'not before delFlushMs');
      t.mock.timers.tick(1);
      assert.equal(sent(), 4, 'DELs written by the timer at delFlushMs');
      await until(() => types().length === 4, 'the server got 4 messages');
      assert.deepEqual(
        types(),
        [MSG_CLIENT_DEL, MSG_CLIENT_ADD, MSG_CLIENT_DEL, MSG_CLIENT_DEL],
        'DELs written by the timer',
      );
    } finally {
      t.mock.timers.reset();
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
      const hello = ch.stats().bytesSent;
      ch.addClient(1, 1000, 2, 80);
      assert.equal(ch.stats().bytesSent, hello, 'queued, not written');
      ch.flush();
      assert.equal(ch.stats().bytesSent - hello, CLIENT_MSG_BYTES, 'written by flush()');
      await until(() => types().length === 1, 'the server got the message');
      assert.deepEqual(types(), [MSG_CLIENT_ADD]);
    } finally {
      await ch.close();
    }
  });
});
