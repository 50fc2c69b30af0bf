import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { ChannelClient } from '../../../src/io/channel-client';
import { TcpcopyError } from '../../../src/core/errors';
import { CLIENT_MSG_BYTES } from '../../../src/channel/constants';
import { V2_CHALLENGE, V2_OK, serverMsg } from '../../../src/channel/v2';

/**
 * Issue 18 item 9: intercept's challenge and its result arrive in one read. The result must be
 * parsed then (here a TCOK with a bad proof), not left to the connect timeout.
 */

const quiet = { warn() {}, info() {} };

/** A fake intercept that answers the hello with the challenge and a TCOK (zero proof) in one write. */
async function withEagerServer(fn: (port: number) => Promise<void>): Promise<void> {
  const socks: net.Socket[] = [];
  const srv = net.createServer((s) => {
    socks.push(s);
    let got = 0;
    s.on('data', (d: Buffer) => {
      const before = got;
      got += d.length;
      if (before < CLIENT_MSG_BYTES && got >= CLIENT_MSG_BYTES)
        s.write(Buffer.concat([serverMsg(V2_CHALLENGE, Buffer.alloc(32, 7)), serverMsg(V2_OK, null)]));
    });
    s.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  try {
    await fn((srv.address() as net.AddressInfo).port);
  } finally {
    for (const s of socks) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  }
}

test('v2 handshake: challenge and TCOK in one read: the bad proof is reported, not a timeout', async () => {
  await withEagerServer(async (port) => {
    const c = new ChannelClient(
      {
        servers: [{ host: '127.0.0.1', port }],
        connections: 1,
        reconnect: false,
        recordBytes: 64,
        secret: Buffer.from('0123456789abcdef-the-secret'),
        connectTimeoutMs: 2000,
      },
      () => {},
      quiet,
    );
    const e = await c.connect().then(
      () => assert.fail('connect must be refused'),
      (err: unknown) => err,
    );
    assert.ok(e instanceof TcpcopyError, String(e));
    assert.equal(e.code, 'ERR_CHANNEL_AUTH');
    assert.match(e.message, /could not prove the shared secret/);
    assert.doesNotMatch(e.message, /within \d+ ms/);
    await c.close();
  });
});
