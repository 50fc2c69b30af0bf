/** --compare and the --compare-* options parsed into the frozen config; `tcpcopy compare-report DIR`. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseTcpcopyArgs } from '../../../src/cli/tcpcopy-config';
import { runCompareReport } from '../../../src/cli/compare-report';
import { COMPARE_DEFAULTS } from '../../../src/compare/config';
import { Comparison } from '../../../src/compare/comparison';
import { CompareOut } from '../../../src/compare/out-files';
import { TcpcopyError } from '../../../src/core/errors';
import { conversation } from '../compare/fixtures';

const BASE = ['-x', '80-198.18.0.2:8080', '-s', '198.18.0.3', '--secret-file', '/tmp/secret'];
const TWO = ['-x', '80-198.18.0.4:8080,80-198.18.0.2:8080', '-s', '198.18.0.3', '--secret-file', '/tmp/secret'];

function err(argv: string[]): string {
  try {
    parseTcpcopyArgs(argv);
  } catch (e) {
    assert.ok(e instanceof TcpcopyError, String(e));
    return `${e.code}: ${e.message}`;
  }
  return 'no error';
}

test('no --compare: null; a --compare-* option alone names --compare', () => {
  assert.equal(parseTcpcopyArgs(BASE).compare, null);
  assert.match(
    err([...BASE, '--compare-out', '/tmp/x']),
    /ERR_BAD_OPTION: --compare-out \/tmp\/x: needs --compare http or --compare bytes/,
  );
  assert.match(err([...BASE, '--compare-replicas']), /--compare-replicas : needs --compare/);
});

test('--compare http: the defaults, the rules with the default ignored headers, frozen', () => {
  const c = parseTcpcopyArgs([...BASE, '--compare', 'http']).compare;
  assert.ok(c !== null);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.settings));
  assert.equal(c.settings.mode, 'http');
  assert.equal(c.settings.noise, 'off');
  assert.equal(c.outDir, null);
  assert.equal(c.diffsMax, 100_000);
  for (const k of [
    'bodyMax',
    'sessionMax',
    'memoryMax',
    'keepBodies',
    'relativeThreshold',
    'absoluteThreshold',
  ] as const)
    assert.equal(c.settings[k], COMPARE_DEFAULTS[k], k);
  assert.ok(c.settings.rules.ignoreHeaders.some((r) => r.text === 'date'));
  const all = parseTcpcopyArgs([...BASE, '--compare', 'http', '--compare-all-headers']).compare;
  assert.equal(all?.settings.rules.ignoreHeaders.length, 0);
});

test('every --compare-* option lands in the config in its unit', () => {
  const c = parseTcpcopyArgs([
    ...BASE,
    '--compare',
    'http',
    '--compare-out',
    '/tmp/cmp',
    '--compare-ignore-header',
    'X-Trace',
    '--compare-ignore-header',
    'Vary=^Accept',
    '--compare-ignore-path',
    '$.meta.time',
    '--compare-endpoint',
    '^/api/v[0-9]+/items=/api/:v/items',
    '--compare-relative',
    '10',
    '--compare-absolute',
    '0.5',
    '--compare-body-max',
    '131072',
    '--compare-session-max',
    '2097152',
    '--compare-memory-max',
    '32',
    '--compare-keep-bodies',
    '0',
    '--compare-diffs-max',
    '50',
  ]).compare;
  assert.ok(c !== null);
  assert.equal(c.outDir, '/tmp/cmp');
  assert.equal(c.diffsMax, 50);
  const s = c.settings;
  assert.deepEqual(
    [s.relativeThreshold, s.absoluteThreshold, s.bodyMax, s.sessionMax, s.memoryMax, s.keepBodies],
    [10, 0.5, 131072, 2097152, 32 << 20, 0],
  );
  assert.deepEqual(
    s.rules.ignoreHeaders.slice(-2).map((r) => r.text),
    ['X-Trace', 'Vary=^Accept'],
  );
  assert.deepEqual(
    s.rules.ignorePaths.map((r) => r.text),
    ['$.meta.time'],
  );
  assert.equal(s.rules.endpoints[0]?.name, '/api/:v/items');
});

test('bad values and combinations are usage errors that name the option and the fix', () => {
  assert.match(err([...BASE, '--compare', 'html']), /--compare html: expected http or bytes/);
  assert.match(
    err(['-x', '80-198.18.0.2:8080', '-s', '198.18.0.3', '--compare', 'http']),
    /--compare http: needs channel v2 .*--secret-file FILE here and on intercept \(with --payload-max 65535 there\)/,
  );
  assert.match(
    err([...BASE, '--compare', 'http', '--module', 'redis']),
    /--compare http: --module redis speaks the redis protocol, not HTTP: use --compare bytes/,
  );
  // beside a protocol module (composed, src/compare/module.ts withCompare): accepted
  const both = parseTcpcopyArgs([...BASE, '--compare', 'bytes', '--module', 'mysql', '--mysql-user', 'u:p']);
  assert.equal(both.compare?.settings.mode, 'bytes');
  assert.equal(both.module?.spec, 'mysql');
  assert.equal(parseTcpcopyArgs([...BASE, '--compare', 'http', '--module', './m.js']).compare?.settings.mode, 'http');
  assert.match(err([...BASE, '--compare', 'bytes', '--compare-ignore-path', '$.a']), /needs --compare http/);
  assert.match(
    err([...BASE, '--compare', 'http', '--compare-ignore-path', 'a.b']),
    /ERR_BAD_OPTION: --compare-ignore-path a.b: a JSONPath starts with \$/,
  );
  assert.match(
    err([...BASE, '--compare', 'http', '--compare-ignore-header', 'X=(']),
    /ERR_BAD_OPTION: .*bad regular expression/,
  );
  assert.match(err([...BASE, '--compare', 'http', '--compare-endpoint', 'noname']), /expected REGEX=NAME/);
  assert.match(
    err([...BASE, '--compare', 'http', '--compare-relative', '150']),
    /--compare-relative 150: expected a number 0..100/,
  );
  assert.match(
    err([...BASE, '--compare', 'http', '--compare-body-max', '0']),
    /--compare-body-max 0: expected an integer/,
  );
  assert.match(err([...BASE, '--compare', 'http', '--compare-out', '']), /--compare-out '': expected a directory/);
  assert.match(err([...BASE, '--compare', 'http', '--compare-replicas']), /needs -n 2 or more.*-n is 1/);
  assert.equal(
    parseTcpcopyArgs([...BASE, '-n', '2', '--compare', 'http', '--compare-replicas']).compare?.settings.noise,
    'replicas',
  );
});

test('--compare-reference: one of two -x targets of the same online port', () => {
  const c = parseTcpcopyArgs([...TWO, '--compare', 'http', '--compare-reference', '198.18.0.4:8080']).compare;
  assert.equal(c?.settings.noise, 'reference');
  assert.equal(c?.settings.reference, '198.18.0.4:8080');
  assert.match(
    err([...TWO, '--compare', 'http', '--compare-reference', 'old:8080']),
    /expected IP:PORT of one of the -x targets/,
  );
  assert.match(err([...TWO, '--compare', 'http', '--compare-reference', '198.18.0.9:8080']), /is not a -x target/);
  assert.match(
    err([...BASE, '--compare', 'http', '--compare-reference', '198.18.0.2:8080']),
    /needs another -x target for online port 80/,
  );
  assert.match(
    err([...TWO, '-n', '2', '--compare', 'http', '--compare-reference', '198.18.0.4:8080', '--compare-replicas']),
    /two noise sources/,
  );
});

/** Writes a comparison's files to a temporary directory (one differing exchange of the nginx fixtures). */
async function outDir(): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cmp-report-'));
  const { buildRules } = await import('../../../src/compare/rules');
  const { compareConfig } = await import('../../../src/compare/config');
  const out = new CompareOut(dir);
  const cmp = new Comparison(compareConfig('http', buildRules()), out.line);
  const obs = cmp.openSession({
    clientIp: '198.18.0.10',
    clientPort: 40000,
    serverIp: '198.18.1.1',
    serverPort: 80,
    targetIp: '198.18.2.1',
    targetPort: 8080,
  });
  for (const e of conversation('nginx-conn-1')) if (e.dir === 'c') obs.clientBytes(e.data, e.t);
  for (const e of conversation('nginx-conn-1')) if (e.dir === 's') obs.onlineBytes(e.data, 0, e.t);
  for (const e of conversation('nginx-target-conn-1')) if (e.dir === 's') obs.targetBytes(e.data, 0, e.t + 1);
  obs.end(100);
  cmp.finish();
  await out.finish(cmp.summary());
  return dir;
}

test('tcpcopy compare-report DIR: renders report.html again and prints the section; usage and missing files', async () => {
  const dir = await outDir();
  const html = path.join(dir, 'report.html');
  fs.rmSync(html);
  let text = '';
  const sink = { write: (s: string) => ((text += s), true) } as unknown as NodeJS.WritableStream;
  assert.equal(runCompareReport([dir], sink), 0);
  assert.ok(fs.existsSync(html));
  assert.match(fs.readFileSync(html, 'utf8'), /<svg/);
  assert.match(text, /comparison \(http\)\n {2}exchanges \d+ = compared \d+ \+ skipped \d+/);
  assert.match(text, new RegExp(`wrote ${html.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  text = '';
  assert.equal(runCompareReport([], sink), 2);
  assert.match(text, /expected one directory/);
  text = '';
  assert.equal(runCompareReport([path.join(dir, 'nope')], sink), 1);
  assert.match(text, /summary.json not found \(not a --compare-out directory\?\)/);
  fs.rmSync(dir, { recursive: true });
});
