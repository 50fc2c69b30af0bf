/**
 * The engine with IPv6 sessions (issue 16): a whole connection with exact segments (IPv6
 * checksums verified by the script), MSS from the IPv6 MTU and -M splitting, -c IPv6 exact
 * addresses and prefixes, -H for ::1, -n variants, and dual stack (each family to the target of
 * its own transfer, no translation between them).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseClientIpList, mapClientIp } from '../../../src/core/client-map';
import { parseIpv6 } from '../../../src/core/wire/ipv6';
import { parseIp } from '../../../src/core/wire/segment';
import { balanced, GET_A, Script } from './script';
import { lineModule } from './line-module';

const V6 = { client: '2001:2:0:1::1:2', online: '2001:2::1', target: '2001:2::2' };
const REQ = 'GET /a HTTP/1.1\r\nHost: x\r\n\r\n';

function specs(text: string): ReturnType<typeof parseClientIpList> & { ok: true } {
  const r = parseClientIpList(text);
  assert.ok(r.ok, text);
  return r;
}

test('an IPv6 keep-alive connection: SYN (MSS capped at 1440), handshake, two requests, FIN both ways', () => {
  const t = new Script({}, V6);
  t.clientSends({ seq: 1000, flags: 'S', mss: 1460, wscale: 7 });
  t.expectEmitted([
    { src: V6.client, dst: V6.target, sport: 40000, dport: 8080, seq: 1000, flags: 'S', mss: 1440, wscale: 7 },
  ]);
  assert.deepEqual(t.added, [`${V6.client}:40000>${V6.target}:8080`]);
  t.clientSends({ seq: 1001, ack: 5001, flags: 'A' });
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA', mss: 1440, wscale: 7 });
  t.expectEmitted([{ seq: 1001, ack: 90001, flags: 'A' }]);
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: REQ });
  t.expectEmitted([{ src: V6.client, seq: 1001, ack: 90001, flags: 'PA', data: REQ }]);
  t.targetReplies({ seq: 90001, ack: 1001 + REQ.length, flags: 'PA', len: 300 });
  t.expectEmitted([{ seq: 1001 + REQ.length, ack: 90301, flags: 'A' }]);
  t.clientSends({ seq: 1001 + REQ.length, ack: 5301, flags: 'PA', data: GET_A });
  t.expectEmitted([{ seq: 1001 + REQ.length, ack: 90301, flags: 'PA', data: GET_A }]);
  const end = 1001 + REQ.length + GET_A.length;
  t.targetReplies({ seq: 90301, ack: end, flags: 'PA', len: 100 });
  t.clientSends({ seq: end, ack: 5401, flags: 'FA' });
  t.expectEmitted([
    { seq: end, ack: 90401, flags: 'A' },
    { seq: end, ack: 90401, flags: 'FA' },
  ]);
  t.targetReplies({ seq: 90401, ack: end + 1, flags: 'FA' });
  t.expectEmitted([{ seq: end + 1, ack: 90402, flags: 'A' }]);
  assert.equal(t.engine.stats.outcomes.completed, 1);
  assert.deepEqual(t.removed, t.added);
  assert.equal(balanced(t).replayed, 2);
});

test('IPv6 segments are split at the MSS the MTU allows (-M 1280: 1280 - 60 - 12 bytes with timestamps)', () => {
  const t = new Script({ mtu: 1280 }, V6);
  t.clientSends({ seq: 1000, flags: 'S', mss: 1460, tsVal: 10 });
  t.expectEmitted([{ flags: 'S', mss: 1220 }]);
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA', mss: 1440, tsVal: 7, tsEcr: 10 });
  t.take();
  const big = 'x'.repeat(3000);
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: big, tsVal: 11 });
  const got = t.take();
  assert.deepEqual(
    got.map((g) => g.len),
    [1208, 1208, 584],
  );
  for (const g of got) assert.ok(g.len + 32 + 40 <= 1280);
  // a synthesized SYN (mid-stream session) announces the IPv6 MSS too
  const m = new Script({}, V6);
  m.clientSends({ seq: 1, ack: 5001, flags: 'PA', data: REQ });
  m.expectEmitted([{ flags: 'S', mss: 1440 }]);
  // -D below the IPv6 limit is kept
  const d = new Script({ mss: 1200 }, V6);
  d.clientSends({ seq: 1000, flags: 'S', mss: 1460 });
  d.expectEmitted([{ flags: 'S', mss: 1200 }]);
});

test('-c with an IPv6 prefix keeps the interface identifier; an exact IPv6 address replaces it', () => {
  const t = new Script({ clientIps: specs('2001:2:5::/64').specs }, V6);
  t.clientSends({ seq: 1000, flags: 'S' });
  t.expectEmitted([{ src: '2001:2:5:0:0:0:1:2'.replace(/(:0)+:/, '::'), flags: 'S' }]);
  assert.deepEqual(t.added, ['2001:2:5::1:2:40000>2001:2::2:8080']);
  const x = new Script({ clientIps: specs('2001:2:7::9').specs }, V6);
  x.clientSends({ seq: 1000, flags: 'S' });
  x.expectEmitted([{ src: '2001:2:7::9' }]);
  // prefixes of other lengths: /48 keeps 80 low bits, /112 keeps 16
  const c = parseIp('2001:2:0:1:aaaa:bbbb:cccc:dddd');
  assert.equal(mapClientIp(specs('2001:2:9::/48').specs, c), parseIp('2001:2:9:1:aaaa:bbbb:cccc:dddd'));
  assert.equal(mapClientIp(specs('2001:2:9::/112').specs, c), parseIp('2001:2:9::dddd'));
  // mixed lists: each family is rewritten by its own items only
  const mixed = specs('198.18.5.x,2001:2:5::/64').specs;
  assert.equal(mapClientIp(mixed, parseIp('198.19.1.7')), parseIp('198.18.5.7'));
  assert.equal(mapClientIp(mixed, c), parseIp('2001:2:5:0:aaaa:bbbb:cccc:dddd'));
  assert.equal(mapClientIp(specs('198.18.5.x').specs, c), c);
  assert.equal(mapClientIp(specs('2001:2:5::/64').specs, parseIp('198.19.1.7')), parseIp('198.19.1.7'));
  for (const bad of ['2001:2::/8', '2001:2::/129', '2001:2::/x', 'zz::1', '2001:2::/64/1']) {
    assert.equal(parseClientIpList(bad).ok, false, bad);
  }
});

test('-H replaces ::1 clients with its IPv6 item', () => {
  const t = new Script({ localhostIp6: parseIpv6('2001:2:0:7::9') }, { ...V6, client: '::1', online: '::1' });
  t.clientSends({ seq: 1000, flags: 'S' });
  t.expectEmitted([{ src: '2001:2:0:7::9', dst: V6.target, flags: 'S' }]);
  const off = new Script({}, { ...V6, client: '::1', online: '::1' });
  off.clientSends({ seq: 1000, flags: 'S' });
  off.expectEmitted([{ src: '::1' }]);
});

test('-n 2: two IPv6 variants on distinct client ports', () => {
  const t = new Script({ replicas: 2 }, V6);
  t.clientSends({ seq: 1000, flags: 'S' });
  const got = t.take();
  assert.equal(got.length, 2);
  assert.deepEqual(
    got.map((g) => g.src),
    [V6.client, V6.client],
  );
  assert.notEqual(got[0]?.sport, got[1]?.sport);
});

test('dual stack: each family goes to the target of its transfer; no transfer of its family = not ours', () => {
  const v4t = parseIp('198.18.0.2');
  const v6t = parseIp(V6.target);
  const both = [
    { onlineIp: 0, onlinePort: 80, targetIp: v4t, targetPort: 8080 },
    { onlineIp: 0, onlinePort: 80, targetIp: v6t, targetPort: 8080 },
  ];
  const t6 = new Script({}, V6, both);
  t6.clientSends({ seq: 1000, flags: 'S' });
  t6.expectEmitted([{ src: V6.client, dst: V6.target }]);
  const t4 = new Script({}, {}, both);
  t4.clientSends({ seq: 1000, flags: 'S' });
  t4.expectEmitted([{ src: '198.18.1.2', dst: '198.18.0.2' }]);
  // only an IPv6 transfer: IPv4 traffic to the port is not copied (no silent translation)
  const only6 = new Script({}, {}, [{ onlineIp: 0, onlinePort: 80, targetIp: v6t, targetPort: 8080 }]);
  only6.clientSends({ seq: 1000, flags: 'S' });
  only6.expectNothing();
  assert.equal(only6.engine.stats.clientPackets, 0);
  // an online IPv6 address selects that server's traffic only
  const sel = new Script({}, V6, [
    { onlineIp: parseIp('2001:2::99'), onlinePort: 80, targetIp: v6t, targetPort: 8080 },
  ]);
  sel.clientSends({ seq: 1000, flags: 'S' });
  sel.expectNothing();
  sel.clientSends({ seq: 1000, flags: 'S', dst: '2001:2::99' });
  sel.expectEmitted([{ flags: 'S', dst: V6.target }]);
});

test('a module is told IPv6 addresses as RFC 5952 text in SessionStart', () => {
  const mod = lineModule();
  const t = new Script({ module: mod, clientIps: specs('2001:2:5::/64').specs }, { ...V6, online: '2001:2::1' });
  t.clientSends({ seq: 1000, flags: 'S' });
  t.take();
  const st = mod.sessions[0]?.start;
  assert.ok(st !== undefined);
  assert.equal(st.clientIp, V6.client, 'the captured client address, before -c');
  assert.equal(st.serverIp, '2001:2::1');
  assert.equal(st.targetIp, V6.target);
  assert.equal(st.clientPort, 40000);
  assert.equal(st.targetPort, 8080);
});

test('over a 1.x channel (ipv6Channel false) IPv6 connections are not replayed: counted, requests lost as noIpv6Channel', () => {
  const v4t = parseIp('198.18.0.2');
  const v6t = parseIp(V6.target);
  const both = [
    { onlineIp: 0, onlinePort: 80, targetIp: v4t, targetPort: 8080 },
    { onlineIp: 0, onlinePort: 80, targetIp: v6t, targetPort: 8080 },
  ];
  const t = new Script({ ipv6Channel: false, replicas: 2 }, V6, both);
  t.clientSends({ seq: 1000, flags: 'S' });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'A' });
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: REQ });
  t.clientSends({ seq: 1001 + REQ.length, ack: 5301, flags: 'PA', data: GET_A });
  t.expectNothing();
  assert.deepEqual(t.added, [], 'nothing registered with intercept');
  const st = t.engine.stats;
  assert.equal(st.sessionsNoIpv6Channel, 2, 'once per connection and -n variant');
  assert.equal(st.requestsNoIpv6Channel, 4, 'two requests, two variants');
  assert.equal(st.sessionsCreated, 0);
  const acc = balanced(t);
  assert.equal(acc.lost['noIpv6Channel'], 4);
  assert.equal(acc.replayed, 0);
  // IPv4 in the same engine is replayed as before
  const t4 = new Script({ ipv6Channel: false }, {}, both);
  t4.clientSends({ seq: 1000, flags: 'S' });
  t4.expectEmitted([{ src: '198.18.1.2', dst: '198.18.0.2', flags: 'S' }]);
  assert.equal(t4.engine.stats.sessionsNoIpv6Channel, 0);
});
