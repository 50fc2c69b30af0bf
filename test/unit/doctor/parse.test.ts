import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cidrContains,
  cidrOverlap,
  parseCidr,
  parseEthtoolFeatures,
  parseIpAddrOneline,
  parseRouteGet,
  parseSysctlInt,
} from '../../../src/doctor/parse';
import { parseIpv4 } from '../../../src/core/wire/segment';

// outputs captured from the lab namespaces (iproute2 6.1, ethtool 6.1, Debian 12)
const ROUTE_VIA = '198.18.1.5 via 198.18.0.3 dev tcxtg-sw src 198.18.0.2 uid 0 \n    cache \n';
const ROUTE_LOCAL = 'local 198.18.0.2 from 198.18.1.5 dev lo \n    cache <local> iif tcxtg-sw \n';
const ADDRS =
  '1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n' +
  '2: tcxtg-sw    inet 198.18.0.2/24 scope global tcxtg-sw\\       valid_lft forever preferred_lft forever\n';
const ETHTOOL =
  'Features for tcxas-sw:\nrx-checksumming: off\ntx-checksumming: off\n\ttx-checksum-ipv4: off [fixed]\n' +
  'tcp-segmentation-offload: off\ngeneric-segmentation-offload: off\ngeneric-receive-offload: on\nlarge-receive-offload: off [fixed]\n';

test('ip route get: gateway, device, source; errors and route types', () => {
  assert.deepEqual(parseRouteGet(ROUTE_VIA, '', 0), {
    ok: true,
    type: 'unicast',
    via: '198.18.0.3',
    dev: 'tcxtg-sw',
    src: '198.18.0.2',
    error: null,
  });
  const local = parseRouteGet(ROUTE_LOCAL, '', 0);
  assert.equal(local.type, 'local');
  assert.equal(local.dev, 'lo');
  const un = parseRouteGet('', 'RTNETLINK answers: Network is unreachable\n', 2);
  assert.equal(un.ok, false);
  assert.equal(un.error, 'RTNETLINK answers: Network is unreachable');
  assert.equal(parseRouteGet('unreachable 198.18.1.5 uid 0 \n', '', 0).type, 'unreachable');
  assert.equal(parseRouteGet('198.18.0.2 dev eth0 src 198.18.0.1 uid 0\n', '', 0).via, null);
  assert.equal(parseRouteGet('garbage', '', 0).ok, true); // never throws
});

test('ip -4 -o addr show lines', () => {
  assert.deepEqual(parseIpAddrOneline(ADDRS), [
    { dev: 'lo', addr: '127.0.0.1', bits: 8 },
    { dev: 'tcxtg-sw', addr: '198.18.0.2', bits: 24 },
  ]);
  assert.deepEqual(parseIpAddrOneline('nonsense\n\n'), []);
});

test('ethtool -k features', () => {
  const f = parseEthtoolFeatures(ETHTOOL);
  assert.deepEqual(f.get('generic-receive-offload'), { on: true, fixed: false });
  assert.deepEqual(f.get('large-receive-offload'), { on: false, fixed: true });
  assert.deepEqual(f.get('tx-checksum-ipv4'), { on: false, fixed: true });
  assert.equal(f.get('nope'), undefined);
});

test('sysctl values and CIDR helpers', () => {
  assert.equal(parseSysctlInt('1\n'), 1);
  assert.equal(parseSysctlInt(null), null);
  assert.equal(parseSysctlInt('x'), null);
  assert.deepEqual(parseCidr('198.18.1.7/24'), { base: parseIpv4('198.18.1.0'), bits: 24 });
  assert.deepEqual(parseCidr('198.18.1.7'), { base: parseIpv4('198.18.1.7'), bits: 32 });
  assert.equal(parseCidr('198.18.1.0/33'), null);
  assert.equal(parseCidr('a.b/1'), null);
  /** parseCidr that must succeed (a null would otherwise stand in for a network and pass). */
  const cidr = (text: string): NonNullable<ReturnType<typeof parseCidr>> => {
    const c = parseCidr(text);
    assert.ok(c !== null, `parseCidr(${text})`);
    return c;
  };
  const net = cidr('198.18.1.0/24');
  assert.ok(cidrContains(net, parseIpv4('198.18.1.200')));
  assert.ok(!cidrContains(net, parseIpv4('198.18.2.1')));
  assert.ok(cidrOverlap(net, cidr('198.18.0.0/16')));
  assert.ok(cidrOverlap(cidr('198.18.0.0/16'), net));
  assert.ok(!cidrOverlap(net, cidr('198.18.2.0/24')));
  assert.ok(cidrOverlap(net, cidr('0.0.0.0/0')));
  assert.ok(cidrOverlap(net, cidr('198.18.1.128/25')));
  assert.ok(!cidrOverlap(cidr('198.18.1.0/25'), cidr('198.18.1.128/25')));
});
