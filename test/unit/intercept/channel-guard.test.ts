import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { Intercept } from '../../../src/intercept/intercept';
import type { Logger } from '../../../src/intercept/types';
import type { PacketReceiver, PacketSource, SourceStats } from '../../../src/io/types';
import { encodeClientMsg, encodeHello } from '../../../src/channel/client-msg';
import { MSG_CLIENT_ADD } from '../../../src/channel/constants';
import { parseIpv4 } from '../../../src/core/wire/segment';
import { parseCidr, type Cidr } from '../../../src/doctor/parse';

/**
 * Issue 18 item 4 over real sockets: on the unauthenticated 1.x channel, a route owned by a live
 * connection cannot be taken from another address (a reconnect from the same address can), and
 * `--allow` closes connections from other addresses at once. Loopback: 127.0.0.2 and
 * 127.0.0.3 are two "hosts".
 */

const CLIENT = parseIpv4('198.18.20.1');
const TARGET = parseIpv4('198.18.20.2');

class NoSource implements PacketSource {
  async start(_rx: PacketReceiver): Promise<void> {}
  async stop(): Promise<void> {}
  stats(): SourceStats {
    return { received: 0, dropped: 0 };
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

/** A 1.x tcpcopy from `from` that says hello and registers CLIENT:port -> TARGET:tport. */
async function peer(port: number, from: string, adds: [number, number][]): Promise<net.Socket> {
  const s = net.connect({ port, host: '127.0.0.1', localAddress: from });
  s.on('error', () => {});
  await new Promise((r, j) => {
    s.once('connect', r);
    s.once('error', j);
  });
  const b = Buffer.alloc(14 * (adds.length + 1));
  encodeHello(b, 0);
  adds.forEach(([cport, tport], i) => encodeClientMsg(b, 14 * (i + 1), MSG_CLIENT_ADD, CLIENT, cport, TARGET, tport));
  s.write(b);
  return s;
}

async function withIntercept(
  allow: Cidr[],
  fn: (icp: Intercept, log: ReturnType<typeof recLogger>) => Promise<void>,
): Promise<void> {
  const log = recLogger();
  const icp = new Intercept({ host: '127.0.0.1', port: 0, allow }, new NoSource(), log);
  await icp.start();
  try {
    await fn(icp, log);
  } finally {
    await icp.stop();
  }
}

test('1.x: another address cannot take a live route; the same address reconnecting can', async () => {
  await withIntercept([], async (icp, log) => {
    const honest = await peer(icp.port, '127.0.0.2', [[40001, 8080]]);
    await until(() => icp.stats().routesAdded === 1);
    const thief = await peer(icp.port, '127.0.0.3', [
      [40001, 8080],
      [40001, 9999],
    ]);
    await until(() => icp.stats().routesRefusedOwned === 2);
    assert.equal(icp.stats().routes, 1);
    assert.ok(
      log.lines.some((l) =>
        /^tcpcopy 127\.0\.0\.3:\d+: CLIENT_ADD 198\.18\.20\.1:40001 .* refused: .*another address/.test(l),
      ),
      log.lines.join('\n'),
    );
    // a second connection of the honest host (-C 2, or a reconnect) may re-register
    const again = await peer(icp.port, '127.0.0.2', [[40001, 8080]]);
    await until(() => icp.stats().routesUpdated === 1);
    assert.equal(icp.stats().routesRefusedOwned, 2);
    for (const s of [honest, thief, again]) s.destroy();
  });
});

test('--allow: connections from other addresses are closed at once, counted and logged', async () => {
  await withIntercept([parseCidr('127.0.0.2/32') as Cidr], async (icp, log) => {
    const out = await peer(icp.port, '127.0.0.3', [[40001, 8080]]);
    await new Promise((r) => (out.destroyed ? r(null) : out.once('close', r)));
    const out2 = await peer(icp.port, '127.0.0.1', [[40002, 8080]]);
    await new Promise((r) => (out2.destroyed ? r(null) : out2.once('close', r)));
    const ok = await peer(icp.port, '127.0.0.2', [[40003, 8080]]);
    await until(() => icp.stats().routesAdded === 1);
    const st = icp.stats();
    assert.equal(st.notAllowed, 2);
    assert.equal(st.peersTotal, 1, 'refused connections never become peers');
    const lines = log.lines.filter((l) => /not in --allow/.test(l));
    assert.equal(lines.length, 1, `rate-limited: ${log.lines.join('\n')}`);
    assert.match(lines[0] ?? '', /^channel connection from 127\.0\.0\.3 closed: not in --allow/);
    ok.destroy();
  });
});
