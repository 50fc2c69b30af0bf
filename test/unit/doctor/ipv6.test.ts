/**
 * The doctor's IPv6 checks (issue 16): IPv6 client prefixes, `ip route get` of an IPv6 address,
 * IPv6 forwarding on the assistant, reverse-path rules on the target, `intercept doctor
 * --target` options of the IPv6 family.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCidr6, parseRouteGet } from '../../../src/doctor/parse';
import { checkIpv6Forward, checkRoute, checkRpFilter6, checkFirewall } from '../../../src/doctor/checks';
import { parseIptablesSave, parseNftRuleset } from '../../../src/doctor/firewall';
import { parseInterceptDoctorArgs } from '../../../src/doctor/intercept-doctor';
import { TcpcopyError } from '../../../src/core/errors';
import { pickProbeClient, pickProbeClient6, splitDoctorArgs } from '../../../src/doctor/tcpcopy-doctor';
import { buildProbePacket, ProbeWatcher } from '../../../src/doctor/probe';
import { parseTcpcopyArgs } from '../../../src/cli/tcpcopy-config';
import { ipToString, newSegment, parseIp } from '../../../src/core/wire/segment';
import { parseIpTcp } from '../../../src/core/wire/decode';
import { emitIpTcp, newTcpRepr } from '../../../src/core/wire/build';
import { verifyIpv6TcpChecksum } from '../../../src/core/wire/checksum';

test('parseCidr6: host bits cleared, the probe is the first address after the network', () => {
  assert.deepEqual(parseCidr6('2001:2:0:1::/64'), { text: '2001:2:0:1::/64', probe: '2001:2:0:1::1', bits: 64 });
  assert.deepEqual(parseCidr6('2001:2:0:1:ffff::7/48'), { text: '2001:2::/48', probe: '2001:2::1', bits: 48 });
  assert.deepEqual(parseCidr6('2001:2::9'), { text: '2001:2::9/128', probe: '2001:2::9', bits: 128 });
  for (const bad of ['198.18.1.0/24', '2001:2::/8', '2001:2::/129', '2001:2::/64/1', 'x'])
    assert.equal(parseCidr6(bad), null, bad);
});

test('ip route get of an IPv6 address: unicast via the assistant', () => {
  const line = '2001:2:0:1::1 from :: via 2001:2::3 dev tcv6tg-sw proto kernel src 2001:2::2 metric 1024 pref medium\n';
  const r = parseRouteGet(line, '', 0);
  assert.deepEqual(r, { ok: true, type: 'unicast', via: '2001:2::3', dev: 'tcv6tg-sw', src: '2001:2::2', error: null });
  assert.equal(checkRoute(r, '2001:2:0:1::1', '2001:2:0:1::/64', '2001:2::3').verdict, 'ok');
  const direct = parseRouteGet(
    '2001:2:0:1::1 from :: dev eth0 proto kernel src 2001:2::2 metric 256 pref medium',
    '',
    0,
  );
  const c = checkRoute(direct, '2001:2:0:1::1', '2001:2:0:1::/64', '2001:2::3');
  assert.equal(c.verdict, 'fail');
  assert.match(c.fix ?? '', /ip route replace 2001:2:0:1::\/64 via 2001:2::3/);
  assert.equal(parseRouteGet('unreachable 2001:2:0:1::1 from :: dev lo', '', 0).type, 'unreachable');
});

test('IPv6 forwarding on the assistant: 0 ok, 1 warns with the fix, missing skips', () => {
  assert.equal(checkIpv6Forward(0).verdict, 'ok');
  const on = checkIpv6Forward(1);
  assert.equal(on.verdict, 'warn');
  assert.match(on.fix ?? '', /net\.ipv6\.conf\.all\.forwarding=0/);
  assert.equal(checkIpv6Forward(null).verdict, 'skip');
});

test('target, IPv6: reverse-path rules found in ip6tables and nft; drops of the replies reported', () => {
  const ipt = parseIptablesSave(
    [
      '*raw',
      ':PREROUTING ACCEPT [0:0]',
      '-A PREROUTING -m rpfilter --invert -j DROP',
      'COMMIT',
      '*filter',
      ':OUTPUT ACCEPT [0:0]',
      '-A OUTPUT -d 2001:2:0:1::/64 -p tcp -m tcp --sport 8080 -j REJECT',
      'COMMIT',
    ].join('\n'),
  ).rules;
  const rp = checkRpFilter6(ipt, '2001:2:0:1::/64');
  assert.equal(rp.verdict, 'fail');
  assert.match(rp.detail, /rpfilter/);
  assert.equal(checkRpFilter6([], '2001:2:0:1::/64').verdict, 'ok');
  const nft = parseNftRuleset(
    [
      'table inet fw {',
      '  chain pre {',
      '    type filter hook prerouting priority raw; policy accept;',
      '    fib saddr . iif oif missing drop',
      '  }',
      '}',
    ].join('\n'),
  );
  assert.equal(checkRpFilter6(nft, '2001:2:0:1::/64').verdict, 'fail');
  const out = checkFirewall('firewall-replies', 'replies', ipt, {
    hooks: ['output', 'postrouting'],
    src: null,
    dst: null,
    proto: 'tcp',
    sport: 8080,
    dport: null,
  });
  assert.notEqual(out.verdict, 'ok');
  assert.match(out.detail, /--sport 8080 -j REJECT/);
  const other = checkFirewall('firewall-replies', 'replies', ipt, {
    hooks: ['output', 'postrouting'],
    src: null,
    dst: null,
    proto: 'tcp',
    sport: 9090,
    dport: null,
  });
  assert.equal(other.verdict, 'ok');
});

test('intercept doctor --target with an IPv6 client net wants an IPv6 assistant', () => {
  const o = parseInterceptDoctorArgs(['--target', '--client-net', '2001:2:0:1::/64', '--assistant', '2001:2::3']);
  assert.ok(o !== 'help');
  assert.equal(o.clientNet, null);
  assert.deepEqual(o.clientNet6, { text: '2001:2:0:1::/64', probe: '2001:2:0:1::1', bits: 64 });
  assert.throws(
    () => parseInterceptDoctorArgs(['--target', '--client-net', '2001:2:0:1::/64', '--assistant', '198.18.0.3']),
    (e: unknown) => e instanceof TcpcopyError && /--assistant 198\.18\.0\.3: expected an IPv6 address/.test(e.message),
  );
  const v4 = parseInterceptDoctorArgs(['--target', '--client-net', '198.18.1.0/24', '--assistant', '198.18.0.3']);
  assert.ok(v4 !== 'help' && v4.clientNet !== null && v4.clientNet6 === null);
  assert.throws(
    () => parseInterceptDoctorArgs(['--target', '--client-net', '2001:2::/200', '--assistant', '2001:2::3']),
    /expected a CIDR block/,
  );
});

test('tcpcopy doctor, IPv6 probe: client from an IPv6 --client or the first IPv6 -c item; the SYN is IPv6 and its SYN-ACK matches', () => {
  const base = { client: null, waitMs: 2000, all: false, json: false };
  const x = ['-x', '80-198.18.0.2:8080,80-[2001:2::2]:8080', '-s', '198.18.0.3'];
  assert.equal(pickProbeClient6(base, parseTcpcopyArgs(x)), null);
  const c = pickProbeClient6(base, parseTcpcopyArgs([...x, '-c', '198.18.5.0/24,2001:2:0:5::/64']));
  assert.equal(c && ipToString(c.ip), '2001:2:0:5::1');
  assert.equal(c?.net, '2001:2:0:5::/64');
  // the IPv4 probe client skips the IPv6 item (a prefix id is no IPv4 address)
  const c4 = pickProbeClient(base, parseTcpcopyArgs([...x, '-c', '2001:2:0:5::/64,198.18.5.0/24']), [], new Set());
  assert.equal(c4 && ipToString(c4.ip), '198.18.5.1');
  const given = pickProbeClient6({ ...base, client: '2001:2:0:1::ff' }, parseTcpcopyArgs(x));
  assert.equal(given && ipToString(given.ip), '2001:2:0:1::ff');
  assert.equal(pickProbeClient6({ ...base, client: '198.18.1.7' }, parseTcpcopyArgs(x)), null);
  assert.equal(splitDoctorArgs(['--client', '2001:2:0:1::ff']).opts.client, '2001:2:0:1::ff');

  const client = parseIp('2001:2:0:1::ff');
  const target = parseIp('2001:2::2');
  const out = Buffer.alloc(128);
  const n = buildProbePacket(out, {
    clientIp: client,
    clientPort: 40001,
    targetIp: target,
    targetPort: 8080,
    seq: 77,
    rst: false,
  });
  const s = newSegment();
  assert.equal(parseIpTcp(out, 0, n, s), 'ok');
  assert.equal((out[0] as number) >> 4, 6);
  assert.ok(verifyIpv6TcpChecksum(out, 0));
  assert.deepEqual(
    [ipToString(s.srcIp), ipToString(s.dstIp), s.flags, s.mss],
    ['2001:2:0:1::ff', '2001:2::2', 0x02, 1440],
  );
  // the target's SYN-ACK as an 84-byte IPv6 record packet reaches the watcher
  const w = new ProbeWatcher(client, 40001, target, 8080, 77);
  const r = newTcpRepr();
  Object.assign(r, {
    srcIp: target,
    dstIp: client,
    srcPort: 8080,
    dstPort: 40001,
    seq: 1,
    ack: 78,
    flags: 0x12,
    window: 100,
  });
  const rep = Buffer.alloc(128);
  const m = emitIpTcp(r, null, 0, 0, rep, 0);
  w.onRecord(rep, 0, m);
  assert.equal(w.reply, 'synack');
});
