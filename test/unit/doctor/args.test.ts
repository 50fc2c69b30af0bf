import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pickProbeClient, splitDoctorArgs } from '../../../src/doctor/tcpcopy-doctor';
import { listeningPorts, parseInterceptDoctorArgs } from '../../../src/doctor/intercept-doctor';
import { parseTcpcopyArgs } from '../../../src/cli/tcpcopy-config';
import { ipToString } from '../../../src/core/wire/segment';
import { TcpcopyError } from '../../../src/core/errors';

const ADDRS = [
  { dev: 'lo', addr: '127.0.0.1', bits: 8 },
  { dev: 'on-cl', addr: '198.18.1.1', bits: 24 },
  { dev: 'on-sw', addr: '198.18.0.1', bits: 24 },
];

test('tcpcopy doctor: own options are split from the replay options', () => {
  const s = splitDoctorArgs([
    '-x',
    '80-198.18.0.2:8080',
    '--client',
    '198.18.1.9',
    '-s',
    '198.18.0.3',
    '--json',
    '--wait=500',
    '--all',
  ]);
  assert.deepEqual(s.rest, ['-x', '80-198.18.0.2:8080', '-s', '198.18.0.3']);
  assert.deepEqual(s.opts, { client: '198.18.1.9', waitMs: 500, all: true, json: true });
  assert.throws(
    () => splitDoctorArgs(['--client', 'nope']),
    (e: unknown) => e instanceof TcpcopyError && e.code === 'ERR_BAD_OPTION',
  );
  assert.throws(() => splitDoctorArgs(['--wait']), TcpcopyError);
  assert.equal(splitDoctorArgs(['--help']).help, true);
});

test('probe client: --client, then -c, then the client-side network of this host', () => {
  const cfg = parseTcpcopyArgs(['-x', '80-198.18.0.2:8080', '-s', '198.18.0.3']);
  const base = { client: null, waitMs: 2000, all: false, json: false };
  const lan = new Set(['on-sw']);
  const derived = pickProbeClient(base, cfg, ADDRS, lan);
  assert.equal(derived && ipToString(derived.ip), '198.18.1.254');
  assert.equal(derived?.net, '198.18.1.0/24');
  assert.equal(pickProbeClient(base, cfg, ADDRS, new Set(['on-sw', 'on-cl'])), null);
  const c = pickProbeClient(
    base,
    parseTcpcopyArgs(['-x', '80-198.18.0.2:8080', '-s', '198.18.0.3', '-c', '198.18.5.0/24']),
    ADDRS,
    lan,
  );
  assert.equal(c && ipToString(c.ip), '198.18.5.1');
  assert.equal(c?.net, '198.18.5.0/24');
  const given = pickProbeClient({ ...base, client: '198.18.1.7' }, cfg, ADDRS, lan);
  assert.equal(given && ipToString(given.ip), '198.18.1.7');
});

test('intercept doctor options and /proc/net/tcp listeners', () => {
  const a = parseInterceptDoctorArgs([]);
  assert.ok(a !== 'help' && !a.target && a.channelPort === 36524 && a.device === 'any');
  const t = parseInterceptDoctorArgs([
    '--target',
    '--client-net',
    '198.18.1.0/24',
    '--assistant',
    '198.18.0.3',
    '--port',
    '8080',
  ]);
  assert.ok(t !== 'help' && t.target && t.port === 8080 && t.clientNet?.bits === 24);
  assert.throws(() => parseInterceptDoctorArgs(['--target']), /--client-net/);
  assert.throws(() => parseInterceptDoctorArgs(['--client-net', 'x']), TcpcopyError);
  assert.throws(() => parseInterceptDoctorArgs(['--bogus']), TcpcopyError);
  assert.equal(parseInterceptDoctorArgs(['-h']), 'help');
  const proc =
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n' +
    '   0: 00000000:8EAC 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n' +
    '   1: 0200A8C0:8EAC 0100A8C0:D431 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1\n';
  assert.deepEqual([...listeningPorts(proc)], [36524]);
});
