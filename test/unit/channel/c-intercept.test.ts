/**
 * Pairs our tcpcopy's channel client with records laid out as the original C intercept built
 * --with-resp-payload lays them (the fixtures frame-payload.hex and frame-c-edge.hex, made by
 * make-fixtures.py from real and synthetic replies with plain byte slicing). A loopback server
 * plays that intercept: it checks the hello, then writes the frames in small chunks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { ChannelClient } from '../../../src/io/channel-client';
import { CLIENT_MSG_BYTES } from '../../../src/channel/constants';
import { parseIpv4Tcp } from '../../../src/core/wire/decode';
import { ipToString, newSegment } from '../../../src/core/wire/segment';
import { expected, hex } from './fixtures';

const quiet = { warn() {}, info() {} };

test('our tcpcopy decodes the frames of the original intercept --with-resp-payload: headers and payloads', async () => {
  const exp = expected();
  const frames = Buffer.concat([hex('frame-payload.hex'), hex('frame-c-edge.hex')]);
  const want = [...exp['frame-payload'], ...exp['frame-c-edge']];
  let hello: Buffer | null = null;
  const srv = net.createServer((s) => {
    let got = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (hello !== null || got.length < CLIENT_MSG_BYTES) return;
      hello = got.subarray(0, CLIENT_MSG_BYTES);
      // 37-byte chunks: records and counts split everywhere
      for (let p = 0; p < frames.length; p += 37) s.write(frames.subarray(p, p + 37));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  const got: Record<string, unknown>[] = [];
  let done: () => void = () => {};
  const all = new Promise<void>((r) => (done = r));
  const seg = newSegment();
  const ch = new ChannelClient(
    { servers: [{ host: '127.0.0.1', port }], connections: 1, reconnect: false, recordBytes: 192 },
    (buf, off, len, pay) => {
      assert.equal(len, 192);
      assert.equal(parseIpv4Tcp(buf, off, len, seg, true), 'ok');
      assert.ok(pay !== null);
      got.push({
        src: ipToString(seg.srcIp),
        dst: ipToString(seg.dstIp),
        srcPort: seg.srcPort,
        dstPort: seg.dstPort,
        seq: seg.seq,
        ack: seg.ack,
        flags: seg.flags,
        ipTotalLen: seg.ipTotalLen,
        tcpHdrLen: seg.tcpHdrLen,
        payloadLen: seg.payloadLen,
        payload: pay.buf.subarray(pay.off, pay.off + pay.len).toString('hex'),
        truncated: pay.truncated,
      });
      if (got.length === want.length) done();
    },
    quiet,
  );
  try {
    await ch.connect();
    await all;
    assert.deepEqual(hello, Buffer.from('0000000000000006000000000000', 'hex'), 'the 1.x hello, version 6');
    assert.deepEqual(
      got,
      want.map((w) => ({ ...w, truncated: w.payloadLen > 0 && w.payload === '' })),
    );
    // the fixtures do cover the cases
    assert.ok(got.some((g) => g.truncated === true && g.payloadLen === 129));
    assert.ok(got.some((g) => g.payloadLen === 128 && (g.payload as string).length === 256));
    assert.ok(got.some((g) => g.tcpHdrLen === 52 && g.payloadLen === 30 && g.payload !== ''));
    assert.equal(ch.stats().recordsReceived, want.length);
    assert.equal(ch.stats().protocolErrors, 0);
  } finally {
    await ch.close();
    await new Promise<void>((r) => srv.close(() => r()));
  }
});
