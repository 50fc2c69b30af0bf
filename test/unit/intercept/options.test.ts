import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseInterceptArgs } from '../../../src/cli/intercept-options';
import { TcpcopyError } from '../../../src/core/errors';

function run(argv: string[]) {
  const c = parseInterceptArgs(argv);
  assert.equal(c.kind, 'run');
  return (c as Extract<typeof c, { kind: 'run' }>).config;
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
  assert.equal(c.daemon, false);
  assert.ok(Object.isFrozen(c));
});

test('the original short forms, attached and separate values', () => {
  const c = run(['-i', 'eth0', '-F', 'tcp and src port 8080', '-p36525', '-b', '198.18.0.1', '-l', '/tmp/x.log', '-P/tmp/x.pid', '-d']);
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
    assert.throws(() => parseInterceptArgs(argv), (e: unknown) => e instanceof TcpcopyError && e.code === 'ERR_BAD_OPTION' && re.test(e.message), argv.join(' '));
  }
});
