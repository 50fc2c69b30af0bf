/**
 * IPv6 forms of tcpcopy's options (issue 16): -x with [v6]:port, family mixes refused with a
 * clear message, -c IPv6 addresses and prefixes (unusable ones refused), -H with an IPv6 item.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTcpcopyArgs } from '../../../src/cli/tcpcopy-config';
import { parseTransferList } from '../../../src/cli/transfer';
import { TcpcopyError } from '../../../src/core/errors';
import { clientIpSpecText } from '../../../src/core/client-map';
import { ipToString, parseIp } from '../../../src/core/wire/segment';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof TcpcopyError, String(e));
    return `${e.code}: ${e.message}`;
  }
  return 'no error';
}
const args = (...more: string[]): string[] => ['-x', '80-[2001:2::2]:8080', '-s', '198.18.0.3', ...more];

test('-x: [IPv6]:port on either side, with @mac, and dual-stack lists', () => {
  const [a, b, c] = parseTransferList(
    '[2001:db8::1]:80-[2001:db8::2]:8080,80-[2001:2::2]:8080@02:00:00:00:00:01,80-198.18.0.2:8080',
  );
  assert.deepEqual(
    [a?.onlineIp, a?.onlinePort, a?.targetIp, a?.targetPort],
    [parseIp('2001:db8::1'), 80, parseIp('2001:db8::2'), 8080],
  );
  assert.deepEqual([b?.onlineIp, ipToString(b?.targetIp ?? 0), b?.targetMac], [0, '2001:2::2', '02:00:00:00:00:01']);
  assert.equal(ipToString(c?.targetIp ?? 0), '198.18.0.2');
});

test('-x: an IPv4 online address copied to an IPv6 target (or the reverse) is refused, never translated', () => {
  assert.match(
    code(() => parseTransferList('198.18.0.1:80-[2001:2::2]:8080')),
    /ERR_BAD_TRANSFER: -x 198\.18\.0\.1:80-\[2001:2::2\]:8080: the online address 198\.18\.0\.1 is IPv4 but the target 2001:2::2 is IPv6; tcpcopy does not translate between IPv4 and IPv6/,
  );
  assert.match(
    code(() => parseTransferList('[2001:2::1]:80-198.18.0.2:8080')),
    /is IPv6 but the target 198\.18\.0\.2 is IPv4/,
  );
  assert.match(
    code(() => parseTransferList('80-2001:2::2:8080')),
    /"2001:2::2" is not an IPv4 address; write it in brackets: \[2001:2::2\]:8080/,
  );
  assert.match(
    code(() => parseTransferList('80-[2001:2::zz]:8080')),
    /"2001:2::zz" is not an IPv6 address/,
  );
  assert.match(
    code(() => parseTransferList('80-[2001:2::2]8080')),
    /is not \[IPv6\]:port/,
  );
  assert.match(
    code(() => parseTransferList('80-[2001:2::2]:99999')),
    /target port 99999 is out of range/,
  );
});

test('-c: IPv6 addresses and prefixes; loopback, unspecified and multicast refused', () => {
  const c = parseTcpcopyArgs(args('-c', '2001:2:5::/64,198.18.5.x,2001:2:6::7'));
  assert.equal(clientIpSpecText(c.clientIps), '2001:2:5::/64,198.18.5.x,2001:2:6::7');
  for (const [bad, why] of [
    ['::1', 'is a loopback address|is the loopback address'],
    ['::', 'is the unspecified address'],
    ['ff02::1', 'is a multicast address'],
    ['2001:2::/200', 'is not an IPv6 prefix'],
  ] as const) {
    assert.match(
      code(() => parseTcpcopyArgs(args('-c', bad))),
      new RegExp(`ERR_BAD_CLIENT_IP: -c ${bad.replace(/[/.]/g, '\\$&')}: .*(${why})`),
    );
  }
});

test('-H: an IPv4 item, an IPv6 item, or one of each', () => {
  const c = parseTcpcopyArgs(args('-H', '198.18.1.9,2001:2::9'));
  assert.equal(ipToString(c.localhostIp), '198.18.1.9');
  assert.equal(ipToString(c.localhostIp6), '2001:2::9');
  const d = parseTcpcopyArgs(args('-H', '2001:2::9'));
  assert.deepEqual([d.localhostIp, ipToString(d.localhostIp6)], [0, '2001:2::9']);
  assert.equal(parseTcpcopyArgs(args()).localhostIp6, 0);
  for (const bad of ['::1', '::', '2001:2::1,2001:2::2', '127.0.0.5', '198.18.1.9,198.18.1.10', 'x']) {
    assert.match(
      code(() => parseTcpcopyArgs(args('-H', bad))),
      /-H/,
      bad,
    );
  }
});
