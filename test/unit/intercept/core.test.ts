import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InterceptCore, type Peer } from '../../../src/intercept/core';
import { nullLogger, type Logger } from '../../../src/intercept/types';
import { encodeClientMsg, encodeHello } from '../../../src/channel/client-msg';
import { MSG_CLIENT_ADD, MSG_CLIENT_DEL } from '../../../src/channel/constants';
import { FrameDecoder } from '../../../src/channel/frame';
import { decodeFrame, parseIpv4Tcp } from '../../../src/core/wire/decode';
import { newSegment, parseIpv4, type TcpSegment } from '../../../src/core/wire/segment';
import { readPcap } from '../channel/fixtures';

const pcap = readPcap('replies.pcap');
const CLIENT = parseIpv4('198.18.20.1');
const TARGET = parseIpv4('198.18.20.2');

/** Segment of pcap packet i (replies to 198.18.20.1:4000x from 198.18.20.2:8080). */
function seg(i: number): TcpSegment {
  const s = newSegment();
  const f = pcap.frames[i] as Buffer;
  assert.equal(decodeFrame(pcap.linkType, f, 0, f.length, s), 'ok');
  return s;
}
const SEGS = pcap.frames.map((_f, i) => seg(i));
const synacks = SEGS.filter((s) => (s.flags & 0x12) === 0x12);
const nonSyn = SEGS.filter((s) => (s.flags & 0x06) === 0);

function msgs(...m: [number, number, number][]): Buffer {
  const b = Buffer.alloc(14 * (m.length + 1));
  encodeHello(b, 0);
  m.forEach(([type, port, tport], i) => encodeClientMsg(b, 14 * (i + 1), type, CLIENT, port, TARGET, tport));
  return b;
}

function setup(
  opts = {},
  log: Logger = nullLogger,
): { core: InterceptCore; out: Map<Peer, Buffer[]>; records: (p: Peer) => TcpSegment[] } {
  const out = new Map<Peer, Buffer[]>();
  const core = new InterceptCore(
    opts,
    (p, b) => {
      const l = out.get(p) ?? [];
      l.push(b);
      out.set(p, l);
      return true;
    },
    log,
  );
  const records = (p: Peer): TcpSegment[] => {
    const res: TcpSegment[] = [];
    const d = new FrameDecoder(core.recordBytes, (b, off, len) => {
      const s = newSegment();
      assert.equal(parseIpv4Tcp(Buffer.from(b.subarray(off, off + len)), 0, len, s, true), 'ok');
      res.push(s);
    });
    for (const b of out.get(p) ?? []) assert.equal(d.feed(b), 'ok');
    return res;
  };
  return { core, out, records };
}

test('replies go to the tcpcopy that registered the client, in frames, at flush', () => {
  const { core, out, records } = setup();
  const p1 = core.addPeer('p1');
  const p2 = core.addPeer('p2');
  assert.equal(core.clientBytes(p1, msgs([MSG_CLIENT_ADD, 40001, 8080]), 0), 'ok');
  assert.equal(core.clientBytes(p2, msgs([MSG_CLIENT_ADD, 40002, 8080]), 0), 'ok');
  for (const s of SEGS) core.reply(s, 10);
  assert.equal(out.size, 0, 'nothing written before flush');
  assert.equal(core.pending, true);
  core.flush();
  const r1 = records(p1);
  const r2 = records(p2);
  assert.ok(r1.length > 0 && r1.every((s) => s.dstPort === 40001 && s.srcPort === 8080));
  assert.ok(r2.length > 0 && r2.every((s) => s.dstPort === 40002));
  const n = SEGS.filter((s) => s.dstPort <= 40002).length;
  const st = core.stats();
  assert.equal(st.captured, SEGS.length);
  assert.equal(st.routed, n);
  assert.equal(st.recordsSent, n);
  assert.equal(st.held + st.noRoute, SEGS.length - n);
  assert.equal(st.routesAdded, 2);
  assert.equal(st.peers, 2);
  assert.equal(st.perPeer.find((p) => p.peer === 'p1')?.records, r1.length);
  assert.equal(st.framesSent, out.get(p1)!.length + out.get(p2)!.length);
});

test('more than 16 records make several frames; one write per peer per flush', () => {
  const { core, out, records } = setup();
  const p = core.addPeer('p');
  core.clientBytes(p, msgs([MSG_CLIENT_ADD, 40001, 8080]), 0);
  const s = SEGS.find((x) => x.dstPort === 40001)!;
  for (let i = 0; i < 40; i++) core.reply(s, 1);
  core.flush();
  assert.equal(out.get(p)!.length, 1);
  assert.equal(records(p).length, 40);
  assert.equal(core.stats().framesSent, 3);
  assert.equal(out.get(p)![0]!.readUInt16BE(0), 16);
});

test('a SYN-ACK before its CLIENT_ADD is held and delivered when it arrives', () => {
  const { core, out, records } = setup();
  const p = core.addPeer('p');
  core.clientBytes(p, msgs(), 0);
  const sa = synacks[0]!;
  core.reply(sa, 0);
  core.reply(nonSyn[0]!, 0);
  assert.equal(core.stats().held, 1);
  assert.equal(core.stats().noRoute, 1, 'a plain ACK is not held');
  core.flush();
  assert.equal(out.size, 0);
  const add = Buffer.alloc(14);
  encodeClientMsg(add, 0, MSG_CLIENT_ADD, CLIENT, sa.dstPort, TARGET, 8080);
  core.tick(1999);
  core.clientBytes(p, add, 1999);
  const r = records(p);
  assert.equal(r.length, 1);
  assert.equal(r[0]!.seq, sa.seq);
  assert.equal(core.stats().heldDelivered, 1);
});

test('held replies expire into no-route', () => {
  const { core } = setup({ holdMs: 2000 });
  core.reply(synacks[0]!, 0);
  core.tick(1999);
  assert.equal(core.stats().noRoute, 0);
  core.tick(2000);
  assert.equal(core.stats().noRoute, 1);
  assert.equal(core.stats().heldExpired, 1, 'named as an expired hold, not only as no-route');
});

test('a SYN-ACK without route that finds the hold store full is counted as such', () => {
  const { core } = setup({ maxHeld: 1 });
  core.reply(synacks[0]!, 0);
  core.reply(synacks[1]!, 0);
  const st = core.stats();
  assert.equal(st.held, 1);
  assert.equal(st.holdFull, 1);
  assert.equal(st.noRoute, 1);
});

test('routes expire when idle; CLIENT_DEL ends a route after the grace; disconnected peers lose theirs', () => {
  const { core } = setup({ routeTimeoutMs: 5000 });
  const p = core.addPeer('p');
  core.clientBytes(
    p,
    msgs([MSG_CLIENT_ADD, 40001, 8080], [MSG_CLIENT_ADD, 40002, 8080], [MSG_CLIENT_DEL, 40002, 8080]),
    0,
  );
  assert.equal(core.stats().routesDeleted, 1);
  core.tick(2500);
  assert.equal(core.stats().routes, 1, 'deleted route gone after 2 s');
  core.tick(5000);
  assert.equal(core.stats().routes, 0);
  assert.equal(core.stats().routesExpired, 2);
  core.clientBytes(
    p,
    (() => {
      const b = Buffer.alloc(14);
      encodeClientMsg(b, 0, MSG_CLIENT_ADD, CLIENT, 40003, TARGET, 8080);
      return b;
    })(),
    6000,
  );
  core.removePeer(p);
  core.reply(
    SEGS.find((x) => x.dstPort === 40003 && (x.flags & 2) === 0)!,
    6001,
  );
  assert.equal(core.stats().noRoute, 1);
});

test('route cap refuses and counts', () => {
  const { core } = setup({ maxRoutes: 1 });
  const p = core.addPeer('p');
  core.clientBytes(p, msgs([MSG_CLIENT_ADD, 1, 80], [MSG_CLIENT_ADD, 2, 80]), 0);
  assert.equal(core.stats().routesRefused, 1);
});

test('a connection without hello or sending garbage is refused; others keep working', () => {
  const { core, records } = setup({ maxBadMessages: 3 });
  const bad = core.addPeer('bad');
  const add = Buffer.alloc(14);
  encodeClientMsg(add, 0, MSG_CLIENT_ADD, CLIENT, 40001, TARGET, 8080);
  assert.equal(core.clientBytes(bad, add, 0), 'bad-hello');
  const junk = core.addPeer('junk');
  assert.equal(core.clientBytes(junk, Buffer.concat([msgs(), Buffer.alloc(14 * 5, 0x77)]), 0), 'too-many-bad');
  const good = core.addPeer('good');
  core.clientBytes(good, msgs([MSG_CLIENT_ADD, 40001, 8080]), 0);
  for (const s of SEGS) core.reply(s, 1);
  core.flush();
  assert.ok(records(good).length > 0);
  const st = core.stats();
  assert.equal(st.badHello, 1);
  assert.equal(st.badPeers, 1);
  assert.equal(st.badMessages, 4);
  assert.equal(st.peers, 1);
  assert.equal(st.peersTotal, 3);
});

test('payload variant: 192-byte records, 6 per frame, payload right after the TCP header when 1..128 bytes', () => {
  const { core, out } = setup({ recordBytes: 192 });
  const p = core.addPeer('p');
  core.clientBytes(p, msgs([MSG_CLIENT_ADD, 40001, 8080]), 0);
  const big = SEGS.find((x) => x.dstPort === 40001 && x.payloadLen > 128)!;
  const small = SEGS.find((x) => x.dstPort === 40001 && x.payloadLen > 0 && x.payloadLen <= 128)!;
  for (let i = 0; i < 6; i++) core.reply(big, 1);
  core.reply(small, 1);
  core.flush();
  const b = out.get(p)![0]!;
  assert.equal(b.length, 2 + 6 * 192 + 2 + 192);
  assert.equal(b.readUInt16BE(0), 6);
  assert.ok(
    b.subarray(2 + 20 + big.tcpHdrLen, 2 + 192).every((x) => x === 0),
    'over 128 bytes: no payload',
  );
  const r = 2 + 6 * 192 + 2;
  const at = r + 20 + small.tcpHdrLen;
  assert.deepEqual(
    b.subarray(at, at + small.payloadLen),
    small.buf.subarray(small.payloadOff, small.payloadOff + small.payloadLen),
  );
  assert.ok(b.subarray(at + small.payloadLen, r + 192).every((x) => x === 0));
});

function recLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const w = (m: string): void => {
    lines.push(m);
  };
  return { lines, debug: w, info: w, warn: w, error: w };
}

test('1.x route hijack: another address cannot take a live route (same or made-up target); a reconnect can', () => {
  const log = recLogger();
  const { core, records } = setup({}, log);
  const honest = core.addPeer('198.18.0.1:5000', false, '198.18.0.1');
  const thief = core.addPeer('198.18.0.66:6000', false, '198.18.0.66');
  core.clientBytes(honest, msgs([MSG_CLIENT_ADD, 40001, 8080]), 0);
  core.clientBytes(thief, msgs([MSG_CLIENT_ADD, 40001, 8080], [MSG_CLIENT_ADD, 40001, 9999]), 1);
  let st = core.stats();
  assert.equal(st.routesRefusedOwned, 2);
  assert.equal(st.routes, 1);
  assert.equal(st.perPeer.find((p) => p.peer === '198.18.0.66:6000')?.routesRefused, 2);
  const warns = log.lines.filter((l) =>
    /refused: that client is routed to a live tcpcopy connection from another address/.test(l),
  );
  assert.equal(warns.length, 1, 'rate-limited: one line for the burst');
  assert.match(warns[0] ?? '', /^tcpcopy 198\.18\.0\.66:6000: CLIENT_ADD 198\.18\.20\.1:40001 -> 198\.18\.20\.2:8080/);
  for (const s of SEGS) core.reply(s, 2);
  core.flush();
  assert.ok(records(honest).some((s) => s.dstPort === 40001));
  assert.equal(records(thief).length, 0, 'the thief gets nothing');
  // the honest tcpcopy reconnects (same address, new port): it takes its route over
  core.removePeer(honest);
  const back = core.addPeer('198.18.0.1:5001', false, '198.18.0.1');
  core.clientBytes(back, msgs([MSG_CLIENT_ADD, 40001, 8080]), 3);
  st = core.stats();
  assert.equal(st.routesUpdated, 1);
  assert.equal(st.routesRefusedOwned, 2);
  for (const s of SEGS) core.reply(s, 4);
  core.flush();
  assert.ok(records(back).some((s) => s.dstPort === 40001));
});

test('per-peer route quota: one address cannot fill the table; refusals logged (rate-limited) and counted', () => {
  const log = recLogger();
  const { core } = setup({ maxRoutes: 100, maxRoutesPerPeer: 10 }, log);
  // two connections of the hog's address share its quota
  const hog1 = core.addPeer('198.18.0.66:1', false, '198.18.0.66');
  const hog2 = core.addPeer('198.18.0.66:2', false, '198.18.0.66');
  const adds = (from: number, n: number): [number, number, number][] =>
    Array.from({ length: n }, (_v, i) => [MSG_CLIENT_ADD, from + i, 80] as [number, number, number]);
  core.clientBytes(hog1, msgs(...adds(1000, 8)), 0);
  core.clientBytes(hog2, msgs(...adds(2000, 8)), 0);
  const fair = core.addPeer('198.18.0.1:1', false, '198.18.0.1');
  core.clientBytes(fair, msgs(...adds(3000, 10)), 0);
  const st = core.stats();
  assert.equal(st.routesAdded, 20);
  assert.equal(st.routesRefusedQuota, 6);
  assert.equal(st.routesRefused, 0, 'the table itself is not full');
  const warns = log.lines.filter((l) => /--max-routes-per-peer 10/.test(l));
  assert.equal(warns.length, 1, log.lines.join('\n'));
  assert.match(warns[0] ?? '', /198\.18\.0\.66 already holds 10 routes/);
  // after the period, the next refusal logs again and says how many it stands for
  core.clientBytes(hog1, msgs(...adds(4000, 1)), 20_000);
  const again = log.lines.filter((l) => /--max-routes-per-peer 10/.test(l));
  assert.equal(again.length, 2);
  assert.match(again[1] ?? '', /\(6 such events since the last such line\)/);
});

test('records pending for a peer that disconnects before the flush are counted as dropped', () => {
  const { core, out } = setup();
  const p = core.addPeer('p');
  core.clientBytes(p, msgs([MSG_CLIENT_ADD, 40001, 8080]), 0);
  const mine = SEGS.filter((s) => s.dstPort === 40001);
  assert.ok(mine.length > 0);
  for (const s of mine) core.reply(s, 10);
  core.removePeer(p);
  core.flush();
  const st = core.stats();
  assert.equal(out.size, 0, 'nothing written to a gone peer');
  assert.equal(st.routed, mine.length);
  assert.equal(st.recordsSent + st.recordsDropped, st.routed, 'every routed record is sent or counted as dropped');
  assert.equal(st.pastPeers[0]?.dropped, mine.length);
});
