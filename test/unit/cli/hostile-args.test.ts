/** Regression tests for the command-line findings of issue 18 (items 3 and 11). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { parseTcpcopyArgs } from '../../../src/cli/tcpcopy-config';
import { parseInterceptArgs } from '../../../src/cli/intercept-options';
import { createLogger } from '../../../src/io/logger';
import { CaptureFileReader } from '../../../src/io/capture-file/reader';
import { EXIT, TcpcopyError } from '../../../src/core/errors';

const BASE = ['-x', '80-198.18.0.2:8080', '-s', '198.18.0.3'];
const MAIN = path.resolve(__dirname, '../../../src/cli');

function fails(fn: () => unknown): TcpcopyError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof TcpcopyError, String(e));
    return e;
  }
  assert.fail('no error');
}

test('negative numbers get the range message of their option, not "argument is ambiguous"', () => {
  for (const [argv, re] of [
    [['-n', '-5'], /^-n -5: expected an integer 1\.\.1023$/],
    [['--replicas', '-5'], /^-n -5: expected an integer 1\.\.1023$/],
    [['-t', '-1'], /^-t -1: expected a number 0\.001\.\.10000000$/],
    [['-a', '-0.5'], /^-a -0\.5: expected a number 0\.\.1000000$/],
    [['--nice', '-21'], /^--nice -21: expected an integer -20\.\.19$/],
  ] as const) {
    const e = fails(() => parseTcpcopyArgs([...BASE, ...argv]));
    assert.equal(e.code, 'ERR_BAD_OPTION');
    assert.match(e.message, re, argv.join(' '));
  }
  assert.equal(parseTcpcopyArgs([...BASE, '--nice', '-5']).nice, -5);
  assert.equal(parseTcpcopyArgs([...BASE, '--nice=-5']).nice, -5);
  const i = fails(() => parseInterceptArgs(['-p', '-1']));
  assert.match(i.message, /^-p -1: expected a TCP port in 1\.\.65535$/);
  assert.match(fails(() => parseInterceptArgs(['--route-timeout', '-3'])).message, /^--route-timeout -3: /);
});

test('-s IP:0 names the whole item and the port range', () => {
  const e = fails(() => parseTcpcopyArgs(['-x', '80-198.18.0.2:8080', '-s', '127.0.0.1:0']));
  assert.equal(e.code, 'ERR_BAD_OPTION');
  assert.match(e.message, /^-s 127\.0\.0\.1:0: the port "0" is not a TCP port 1\.\.65535/);
  assert.match(
    fails(() => parseTcpcopyArgs(['-x', '80-198.18.0.2:8080', '-s', '198.18.0.3:x'])).message,
    /^-s 198\.18\.0\.3:x: /,
  );
  assert.deepEqual(parseTcpcopyArgs(['-x', '80-198.18.0.2:8080', '-s', '198.18.0.3:65535']).intercepts, [
    { host: '198.18.0.3', port: 65535 },
  ]);
});

test('-c refuses addresses no reply can come back to: 0.0.0.0, 255.255.255.255, loopback, multicast', () => {
  for (const c of [
    '0.0.0.0',
    '255.255.255.255',
    '127.0.0.5',
    '224.0.0.1',
    '0.0.0.x',
    '240.0.0.0/8',
    '198.18.5.x,0.0.0.0',
  ]) {
    const e = fails(() => parseTcpcopyArgs([...BASE, '-c', c]));
    assert.equal(e.code, 'ERR_BAD_CLIENT_IP', c);
    assert.match(e.message, new RegExp(`^-c ${c.replace(/\./g, '\\.')}: `), c);
  }
  assert.equal(parseTcpcopyArgs([...BASE, '-c', '198.18.5.x,198.18.6.0/24,198.18.7.1']).clientIps.length, 3);
});

test('a missing capture file: the OS reason once, not "ENOENT: ENOENT:"', async () => {
  await assert.rejects(CaptureFileReader.open('/nonexistent.pcap'), (e: unknown) => {
    assert.ok(e instanceof TcpcopyError);
    assert.equal(e.code, 'ERR_CAPTURE_OPEN');
    assert.doesNotMatch(e.message, /ENOENT: ENOENT/);
    assert.match(e.message, /^cannot open capture file \/nonexistent\.pcap: ENOENT: no such file or directory/);
    return true;
  });
});

test('-l in a missing directory: ERR_LOG_FILE from createLogger and one line from both programs, no stack', () => {
  const file = '/nonexistent/dir/x.log';
  const e = fails(() => createLogger({ name: 't', file }));
  assert.equal(e.code, 'ERR_LOG_FILE');
  assert.match(e.message, /^-l \/nonexistent\/dir\/x\.log: cannot open the log file \(ENOENT: /);
  for (const [prog, argv] of [
    ['tcpcopy', [...BASE, '-l', file]],
    ['intercept', ['-l', file]],
  ] as const) {
    const r = spawnSync(process.execPath, [path.join(MAIN, `${prog}-main.js`), ...argv], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(r.status, EXIT.FAILURE, `${prog}: ${r.stderr}`);
    assert.match(
      r.stderr,
      new RegExp(`^${prog}: -l /nonexistent/dir/x\\.log: cannot open the log file .*\\[ERR_LOG_FILE\\]\\n$`),
    );
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
});

test('exit statuses: a wrong command line is EXIT.USAGE in both programs', () => {
  for (const [prog, argv] of [
    ['tcpcopy', [...BASE, '-n', '0']],
    ['tcpcopy', ['-s', '198.18.0.3']],
    ['tcpcopy', [...BASE, '-c', '0.0.0.0']],
    ['intercept', ['--bogus']],
    ['intercept', ['-p', '0']],
  ] as const) {
    const r = spawnSync(process.execPath, [path.join(MAIN, `${prog}-main.js`), ...argv], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(r.status, EXIT.USAGE, `${prog} ${argv.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /\[ERR_BAD_[A-Z_]+\]\n$/);
  }
});
