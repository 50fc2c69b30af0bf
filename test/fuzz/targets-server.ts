/**
 * Fuzz target of intercept's channel server (src/intercept/server.ts) on loopback, 1.x and
 * v2: a hostile tcpcopy sends a hello (right, wrong version, or garbage), for v2 a response
 * with the right or a wrong proof, then client messages and hostile bytes, in small writes.
 * The server must answer exactly as the protocol says (nothing, TCNO, or TCV2 then TCOK with
 * a proof that verifies / TCNO), never crash, and close the connection once tcpcopy ends it.
 */
import assert from 'node:assert/strict';
import * as net from 'node:net';
import fc from 'fast-check';
import { encodeClientMsg } from '../../src/channel/client-msg';
import { CHANNEL_VERSION, MSG_CLIENT_ADD, MSG_CLIENT_DEL } from '../../src/channel/constants';
import {
  CHANNEL_VERSION_V2,
  clientProof,
  serverProof,
  V2_CHALLENGE,
  V2_NO,
  V2_OK,
  V2_SERVER_MSG_BYTES,
} from '../../src/channel/v2';
import { InterceptCore } from '../../src/intercept/core';
import { ChannelServer } from '../../src/intercept/server';
import { nullLogger } from '../../src/intercept/types';
import { chunkBounds, cutsArb, target, type FuzzTarget } from './target';

const SECRET = Buffer.from('fuzz-secret-0123456789abcdef');

interface Running {
  port: number;
  srv: ChannelServer;
}
let servers: Promise<{ v1: Running; v2: Running }> | null = null;

async function startOne(secret: Buffer | null): Promise<Running> {
  const srv = new ChannelServer(
    { host: '127.0.0.1', port: 0, helloTimeoutMs: 3000, ...(secret !== null ? { secret } : {}) },
    nullLogger,
  );
  const core = new InterceptCore({}, (p, b) => srv.out(p, b), nullLogger);
  const port = await srv.listen(core);
  return { port, srv };
}

/** The two servers (1.x and v2), started on first use on loopback ports chosen by the kernel. */
function getServers(): Promise<{ v1: Running; v2: Running }> {
  servers ??= (async () => ({ v1: await startOne(null), v2: await startOne(SECRET) }))();
  return servers;
}

/** Closes the servers (the unit suite and the fuzz worker call it at the end). */
export async function closeServerTargets(): Promise<void> {
  if (servers === null) return;
  const s = await servers;
  servers = null;
  await Promise.all([s.v1.srv.close(), s.v2.srv.close()]);
}

/** A loopback client that collects what the server sends and when it closes. */
class Client {
  readonly sock: net.Socket;
  got = Buffer.alloc(0);
  closed: Promise<void>;
  private waiters: (() => void)[] = [];

  constructor(port: number) {
    this.sock = net.connect({ host: '127.0.0.1', port, noDelay: true });
    this.sock.on('data', (c: Buffer) => {
      this.got = Buffer.concat([this.got, c]);
      for (const w of this.waiters.splice(0)) w();
    });
    this.sock.on('error', () => undefined); // a reset after a refusal is expected
    this.closed = new Promise((resolve) => this.sock.once('close', () => resolve()));
    void this.closed.then(() => {
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Writes `b` in the given chunks, yielding to the event loop between them. */
  async write(b: Buffer, cuts: readonly number[]): Promise<void> {
    for (const [x, y] of chunkBounds(b.length, cuts)) {
      if (this.sock.destroyed || y === x) continue;
      this.sock.write(b.subarray(x, y));
      await new Promise((r) => setImmediate(r));
    }
  }

  /** Waits until `n` bytes came or the server closed. */
  async bytes(n: number): Promise<void> {
    while (this.got.length < n && !this.sock.destroyed && this.sock.readable) {
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
}

interface ServerCase {
  v2Server: boolean;
  hello: 'v1' | 'v2' | 'other' | 'garbage';
  otherVersion: number;
  garbage: Uint8Array;
  rightSecret: boolean;
  msgs: { del: boolean; ci: number; cp: number; ti: number; tp: number }[];
  tail: Uint8Array;
  cuts: number[];
}

const serverCaseArb: fc.Arbitrary<ServerCase> = fc.record({
  v2Server: fc.boolean(),
  hello: fc.constantFrom('v1' as const, 'v2' as const, 'other' as const, 'garbage' as const),
  otherVersion: fc.nat({ max: 0xffff }).filter((v) => v !== CHANNEL_VERSION && v !== CHANNEL_VERSION_V2),
  garbage: fc
    .uint8Array({ minLength: 14, maxLength: 40 })
    .filter((b) => b.subarray(0, 14).some((x, i) => x !== 0 && (i < 6 || i > 7))),
  rightSecret: fc.boolean(),
  msgs: fc.array(
    fc.record({
      del: fc.boolean(),
      ci: fc.nat({ max: 0xffffffff }),
      cp: fc.nat({ max: 0xffff }),
      ti: fc.nat({ max: 0xffffffff }),
      tp: fc.nat({ max: 0xffff }),
    }),
    { maxLength: 8 },
  ),
  tail: fc.uint8Array({ maxLength: 120 }),
  cuts: cutsArb,
});

const interceptServer: FuzzTarget<ServerCase> = {
  name: 'intercept-server',
  says: "intercept's channel server (1.x and v2) on loopback: the protocol's answers to any hello/proof, hostile bytes after it, never a crash, closed when tcpcopy ends",
  arb: serverCaseArb,
  unitRuns: 30,
  async check(c) {
    const s = await getServers();
    const cl = new Client(c.v2Server ? s.v2.port : s.v1.port);
    try {
      const hello = Buffer.alloc(14);
      if (c.hello === 'garbage') Buffer.from(c.garbage).copy(hello, 0, 0, 14);
      else
        hello.writeUInt16BE(
          c.hello === 'v1' ? CHANNEL_VERSION : c.hello === 'v2' ? CHANNEL_VERSION_V2 : c.otherVersion,
          6,
        );
      const body = Buffer.alloc(14 * c.msgs.length);
      c.msgs.forEach((m, i) =>
        encodeClientMsg(body, i * 14, m.del ? MSG_CLIENT_DEL : MSG_CLIENT_ADD, m.ci, m.cp, m.ti, m.tp),
      );
      const rest = Buffer.concat([body, Buffer.from(c.tail)]);
      await cl.write(hello, c.cuts);
      const v2Flow = c.v2Server && c.hello === 'v2';
      if (v2Flow) {
        await cl.bytes(V2_SERVER_MSG_BYTES);
        assert.ok(cl.got.length >= V2_SERVER_MSG_BYTES, 'a v2 server answers a v2 hello');
        assert.ok(cl.got.subarray(0, 4).equals(V2_CHALLENGE), 'with a challenge');
        const nonceS = cl.got.subarray(4, 36);
        const nonceC = Buffer.alloc(32, 0x3c);
        const proof = clientProof(
          c.rightSecret ? SECRET : Buffer.from('another-secret-of-some-length'),
          nonceS,
          nonceC,
        );
        await cl.write(Buffer.concat([nonceC, proof, rest]), c.cuts);
        await cl.bytes(2 * V2_SERVER_MSG_BYTES);
        const res = cl.got.subarray(36, 72);
        if (c.rightSecret) {
          assert.ok(res.subarray(0, 4).equals(V2_OK), 'TCOK for the right secret');
          assert.ok(res.subarray(4).equals(serverProof(SECRET, nonceS, nonceC)), "the server's proof verifies");
        } else assert.ok(res.subarray(0, 4).equals(V2_NO), 'TCNO for a wrong secret');
      } else await cl.write(rest, c.cuts);
      cl.sock.end();
      await Promise.race([
        cl.closed,
        new Promise((_r, rej) =>
          setTimeout(() => rej(new Error('the server did not close within 10 s')), 10_000).unref(),
        ),
      ]);
      if (v2Flow) assert.equal(cl.got.length, 72, 'challenge and result, nothing else');
      else if (c.hello === 'v2' && !c.v2Server) {
        assert.equal(cl.got.length, 36, 'a 1.x intercept refuses a v2 hello');
        assert.ok(cl.got.subarray(0, 4).equals(V2_NO));
      } else assert.equal(cl.got.length, 0, 'no bytes without routes');
    } finally {
      cl.sock.destroy();
    }
  },
};

export const SERVER_TARGETS: FuzzTarget[] = [target(interceptServer)];
