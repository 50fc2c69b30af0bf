import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseTcpcopyArgs } from '../../../src/cli/tcpcopy-config';
import { helpText, TCPCOPY_OPTIONS } from '../../../src/cli/tcpcopy-options';
import { parseTransferList } from '../../../src/cli/transfer';
import { resolveInput } from '../../../src/run/input';
import { TcpcopyError } from '../../../src/core/errors';
import { type ClientIpSpec, mapClientIp, parseClientIpList } from '../../../src/core/client-map';

/** The specs of a valid -c list. */
function specsOf(text: string): ClientIpSpec[] {
  const r = parseClientIpList(text);
  assert.ok(r.ok, text);
  return r.specs;
}
import { parseIpv4, ipToString } from '../../../src/core/wire/segment';

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof TcpcopyError, String(e));
    return `${e.code}: ${e.message}`;
  }
  return 'no error';
}

test('-x: the original forms parse; malformed ones name the text and the expected form', () => {
  const [a, b] = parseTransferList('80-198.18.0.2:8080,198.18.0.1:443-198.18.0.3:8443');
  assert.deepEqual(
    { ...a },
    {
      onlineIp: 0,
      onlinePort: 80,
      targetIp: parseIpv4('198.18.0.2'),
      targetPort: 8080,
      onlineMac: null,
      targetMac: null,
    },
  );
  assert.equal(b?.onlineIp, parseIpv4('198.18.0.1'));
  const m = parseTransferList('80@02:00:00:00:00:01-198.18.0.2:8080@02:AA:00:00:00:02')[0];
  assert.equal(m?.onlineMac, '02:00:00:00:00:01');
  assert.equal(m?.targetMac, '02:aa:00:00:00:02');
  assert.match(
    code(() => parseTransferList('80-198.18.0.2')),
    /ERR_BAD_TRANSFER: -x 80-198.18.0.2: target "198.18.0.2" has no ":port"; expected \[onlineIP:\]onlinePort/,
  );
  assert.match(
    code(() => parseTransferList('80:198.18.0.2:8080')),
    /ERR_BAD_TRANSFER: .*no "-"/,
  );
  assert.match(
    code(() => parseTransferList('99999-198.18.0.2:80')),
    /port 99999 is out of range/,
  );
  assert.match(
    code(() => parseTransferList('80-198.18.0.300:80')),
    /"198.18.0.300" is not an IPv4 address/,
  );
});

test('original command lines parse into a frozen config (short, glued and long forms)', () => {
  const c = parseTcpcopyArgs([
    '-x',
    '80-198.18.0.2:8080',
    '-s198.18.0.3',
    '-n',
    '3',
    '-r30',
    '-c',
    '198.18.9.x',
    '-t',
    '60',
    '-W',
    '-O',
    '--mtu',
    '1400',
  ]);
  assert.ok(Object.isFrozen(c));
  assert.equal(c.replicas, 3);
  assert.equal(c.samplePercent, 30);
  assert.equal(c.sessionTimeoutMs, 60_000);
  assert.equal(c.noWait, true);
  assert.equal(c.onlySyn, true);
  assert.equal(c.mtu, 1400);
  assert.deepEqual(c.intercepts, [{ host: '198.18.0.3', port: 36524 }]);
  assert.equal(c.input, null);
  assert.deepEqual(resolveInput(c), { kind: 'live', devices: [] });
  const p = parseTcpcopyArgs(['-x', '80-198.18.0.2:8080', '-s', '198.18.0.3:4000,198.18.0.4', '-p', '5000', '-C', '4']);
  assert.deepEqual(p.intercepts, [
    { host: '198.18.0.3', port: 4000 },
    { host: '198.18.0.4', port: 5000 },
  ]);
  assert.equal(p.connections, 4);
});

test('-i: the parser keeps the text; the runner decides: an existing file means offline, anything else a device', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tccfg-'));
  const f = path.join(dir, 'capture-without-extension');
  const x = ['-x', '80-198.18.0.2:8080', '-s', '198.18.0.3'];
  const c = parseTcpcopyArgs([...x, '-i', f, '-a', '2', '-T', '3', '-I', '500']);
  assert.equal(c.input, f);
  assert.deepEqual(c.offlineOptions, ['-a', '-T', '-I']);
  // the parser reads no file: the same argv parses the same before and after the file exists
  assert.throws(() => resolveInput(c), /-a\/-T\/-I apply to offline replay; -i .* is not an existing capture file/);
  fs.writeFileSync(f, '');
  assert.deepEqual(parseTcpcopyArgs([...x, '-i', f, '-a', '2', '-T', '3', '-I', '500']), c);
  assert.deepEqual(resolveInput(c), { kind: 'offline', file: f });
  assert.deepEqual(resolveInput(parseTcpcopyArgs([...x, '-i', '/nonexistent/x.pcap'])), {
    kind: 'offline',
    file: '/nonexistent/x.pcap',
  });
  assert.deepEqual(resolveInput(parseTcpcopyArgs([...x, '--offline', '/nonexistent/y'])), {
    kind: 'offline',
    file: '/nonexistent/y',
  });
  assert.deepEqual(resolveInput(parseTcpcopyArgs([...x, '-i', 'eth0,eth1'])), {
    kind: 'live',
    devices: ['eth0', 'eth1'],
  });
  assert.match(
    code(() => resolveInput(parseTcpcopyArgs([...x, '-i', 'eth0', '-a', '2']))),
    /ERR_BAD_OPTION: -a applies to offline replay/,
  );
  fs.rmSync(dir, { recursive: true });
});

test('bad values name the option, the value and what is expected', () => {
  const base = ['-x', '80-198.18.0.2:8080', '-s', '198.18.0.3'];
  assert.match(
    code(() => parseTcpcopyArgs([...base, '-n', '2000'])),
    /ERR_BAD_OPTION: -n 2000: expected an integer 1\.\.1023/,
  );
  assert.match(
    code(() => parseTcpcopyArgs([...base, '-r', '0'])),
    /-r 0: expected an integer 1\.\.100/,
  );
  assert.match(
    code(() => parseTcpcopyArgs([...base, '-C', '12'])),
    /-C 12: expected an integer 1\.\.11/,
  );
  assert.match(
    code(() => parseTcpcopyArgs(['-s', '198.18.0.3'])),
    /ERR_BAD_OPTION: -x is required/,
  );
  assert.match(
    code(() => parseTcpcopyArgs(['-x', '80-198.18.0.2:8080'])),
    /-s is required/,
  );
  assert.match(
    code(() => parseTcpcopyArgs([...base, '--bogus'])),
    /ERR_BAD_OPTION: Unknown option '--bogus'/,
  );
  assert.match(
    code(() => parseTcpcopyArgs([...base, '-o', 'eth0'])),
    /-o eth0: every -x transfer needs the next-hop MAC/,
  );
  assert.match(
    code(() => parseTcpcopyArgs([...base, '-c', '198.18.300.x'])),
    /ERR_BAD_CLIENT_IP/,
  );
});

test('help lists every option with its letter, long name and default', () => {
  const h = helpText('1.2.3');
  for (const o of TCPCOPY_OPTIONS) {
    assert.ok(h.includes(`--${o.long}`), o.long);
    if (o.short !== undefined) assert.ok(h.includes(`-${o.short}, --${o.long}`), o.long);
    if (o.def !== undefined) assert.ok(h.includes(`(default: ${o.def})`), o.long);
  }
});

test('-c maps clients: exact, x wildcard keeps the last octet, CIDR stays inside the block', () => {
  const specs = specsOf('198.18.9.x');
  assert.equal(ipToString(mapClientIp(specs, parseIpv4('198.18.1.77'))), '198.18.9.77');
  const cidr = specsOf('198.18.64.0/26');
  const seen = new Set<string>();
  for (let i = 0; i < 500; i++) {
    const ip = ipToString(mapClientIp(cidr, parseIpv4(`198.18.1.${i % 250}`) + i * 65536));
    assert.match(ip, /^198\.18\.64\.(\d+)$/);
    const last = Number(ip.split('.')[3]);
    assert.ok(last >= 1 && last <= 62, ip);
    seen.add(ip);
  }
  assert.ok(seen.size > 40);
  assert.equal(ipToString(mapClientIp(specsOf('198.18.5.1'), parseIpv4('198.18.1.2'))), '198.18.5.1');
});

test('--capture-delay: default 10 ms, 1..1000, errors name the option', () => {
  const base = ['-x', '80-198.18.0.2:8080', '-s', '198.18.0.3'];
  assert.equal(parseTcpcopyArgs(base).captureDelayMs, 10);
  assert.equal(parseTcpcopyArgs([...base, '--capture-delay', '40']).captureDelayMs, 40);
  assert.match(
    code(() => parseTcpcopyArgs([...base, '--capture-delay', '0'])),
    /--capture-delay.*1\.\.1000/,
  );
  assert.match(
    code(() => parseTcpcopyArgs([...base, '--capture-delay', 'x'])),
    /--capture-delay/,
  );
});
