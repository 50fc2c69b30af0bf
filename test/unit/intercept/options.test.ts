import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseInterceptArgs } from '../../../src/cli/intercept-options';
import { TcpcopyError } from '../../../src/core/errors';

function run(argv: string[]) {
  const c = parseInterceptArgs(argv);
  assert.equal(c.kind, 'run');
  return c.config;
}

test('defaults', () => {
  const c = run([]);
  assert.equal(c.port, 36524);
  assert.equal(c.bind, '0.0.0.0');
  assert.equal(c.device, 'any');
  assert.equal(c.filter, 'tcp and not port 36524');
  assert.equal(c.routeTimeoutS, 120);
  assert.equal(c.payload, false);
  assert.equal(c.snaplen, 160);
  assert.equal(c.payloadMax, 1024);
  assert.equal(c.daemon, false);
  const v2 = run(['--secret-file', '/tmp/s']);
  assert.equal(v2.snaplen, 160 + 1024, 'v2: room for --payload-max bytes of payload');
  const v2b = run(['--secret-file', '/tmp/s', '--payload-max', '0']);
  assert.equal(v2b.payloadMax, 0);
  assert.equal(v2b.snaplen, 160);
  assert.ok(Object.isFrozen(c));
});

test('the original short forms, attached and separate values', () => {
  const c = run([
    '-i',
    'eth0',
    '-F',
    'tcp and src port 8080',
    '-p36525',
    '-b',
    '198.18.0.1',
    '-l',
    '/tmp/x.log',
    '-P/tmp/x.pid',
    '-d',
  ]);
  assert.equal(c.device, 'eth0');
  assert.equal(c.filter, 'tcp and src port 8080');
  assert.equal(c.port, 36525);
  assert.equal(c.bind, '198.18.0.1');
  assert.equal(c.logFile, '/tmp/x.log');
  assert.equal(c.pidFile, '/tmp/x.pid');
  assert.equal(c.daemon, true);
  const p = run(['--payload', '--route-timeout', '30']);
  assert.equal(p.payload, true);
  assert.equal(p.snaplen, 320);
  assert.equal(p.routeTimeoutS, 30);
  assert.equal(parseInterceptArgs(['-h']).kind, 'help');
  assert.equal(parseInterceptArgs(['-v']).kind, 'version');
});

test('bad values name the option, the value and the fix', () => {
  const cases: [string[], RegExp][] = [
    [['-p', '70000'], /^-p 70000: expected a TCP port in 1\.\.65535/],
    [['-p', 'x'], /^-p x: /],
    [['-b', 'host'], /^-b host: expected an IPv4 address/],
    [['--route-timeout', '0'], /^--route-timeout 0/],
    [['-F', ' '], /^-F/],
    [['--log-level', 'loud'], /^--log-level loud/],
    [['--nope'], /--nope.*intercept --help/],
    [['-i', 'a b'], /^-i a b/],
  ];
  for (const [argv, re] of cases) {
    assert.throws(
      () => parseInterceptArgs(argv),
      (e: unknown) => e instanceof TcpcopyError && e.code === 'ERR_BAD_OPTION' && re.test(e.message),
      argv.join(' '),
    );
  }
});

test('issue 6 options: -s route table size, --nfqueue [NUM], -q, -x, --report, --secret-file', () => {
  const a = parseInterceptArgs([
    '-s',
    '5000',
    '--nfqueue',
    '-q',
    '4096',
    '-x',
    '198.18.1.9,198.18.1.10',
    '--report',
    '/tmp/r.json',
  ]);
  assert.equal(a.kind, 'run');
  if (a.kind !== 'run') return;
  assert.equal(a.config.maxRoutes, 5000);
  assert.equal(a.config.nfqueue, 0);
  assert.equal(a.config.queueMaxLen, 4096);
  assert.deepEqual(a.config.passList, ['198.18.1.9', '198.18.1.10']);
  const v6 = parseInterceptArgs(['--nfqueue', '-x', '198.18.1.9,2001:2::9']);
  assert.ok(v6.kind === 'run');
  assert.deepEqual(v6.config.passList, ['198.18.1.9', '2001:2::9']);
  assert.equal(a.config.reportFile, '/tmp/r.json');
  const b = parseInterceptArgs(['--nfqueue', '3', '--secret-file', '/tmp/s']);
  assert.ok(b.kind === 'run' && b.config.nfqueue === 3 && b.config.secretFile === '/tmp/s');
  const c = parseInterceptArgs(['--nfqueue=7']);
  assert.ok(
    c.kind === 'run' && c.config.nfqueue === 7 && c.config.maxRoutes === 1_000_000 && c.config.nfqueue !== null,
  );
  const d = parseInterceptArgs([]);
  assert.ok(d.kind === 'run' && d.config.nfqueue === null && d.config.secretFile === null);
  for (const [argv, re] of [
    [['-q', '10'], /-q 10: only used with --nfqueue/],
    [['--nfqueue', '-x', '1.2.3'], /-x 1\.2\.3: expected IPv4 or IPv6 addresses/],
    [['--nfqueue', '-x', '2001:2::1::2'], /-x 2001:2::1::2: expected IPv4 or IPv6 addresses/],
    [['-s', '0'], /-s 0: expected a route table size/],
    [['--secret-file', '/tmp/s', '--payload'], /--payload is the 1\.x 192-byte record variant/],
    [['--payload-max', '100'], /--payload-max 100: only channel v2 sends payload per session: add --secret-file/],
    [['--secret-file', '/tmp/s', '--payload-max', '70000'], /--payload-max 70000: expected bytes in 0\.\.65535/],
  ] as const) {
    assert.throws(
      () => parseInterceptArgs([...argv]),
      (e: unknown) => e instanceof TcpcopyError && re.test(e.message),
      argv.join(' '),
    );
  }
});

test('issue 18 options: --max-routes-per-peer and --allow CIDR[,...]', () => {
  const d = run([]);
  assert.equal(d.maxRoutesPerPeer, 250_000);
  assert.deepEqual(d.allow, []);
  const c = run(['--max-routes-per-peer', '5000', '--allow', '198.18.0.0/24,198.18.5.7', '--allow', '127.0.0.1/32']);
  assert.equal(c.maxRoutesPerPeer, 5000);
  assert.deepEqual(c.allow, [
    { base: 0xc6120000, bits: 24 },
    { base: 0xc6120507, bits: 32 },
    { base: 0x7f000001, bits: 32 },
  ]);
  assert.ok(Object.isFrozen(c.allow));
  assert.throws(() => run(['--max-routes-per-peer', '0']), /--max-routes-per-peer 0: expected a number of routes in 1/);
  assert.throws(
    () => run(['--allow', '198.18.0.0/33']),
    (e: unknown) => {
      assert.ok(e instanceof TcpcopyError);
      assert.equal(e.code, 'ERR_BAD_OPTION');
      assert.match(e.message, /--allow 198\.18\.0\.0\/33: expected IPv4 addresses or blocks/);
      return true;
    },
  );
  assert.throws(() => run(['--allow', 'example.org']), /--allow example\.org/);
});
