import { test } from 'node:test';
import assert from 'node:assert/strict';
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import { decodeBody } from '../../../src/compare/decode';
import { diffBytes } from '../../../src/compare/bytes-diff';
import { diffJson, fieldKey, type JsonFieldDiff } from '../../../src/compare/json-diff';
import { buildRules, CompareRuleError, endpointName, ignored } from '../../../src/compare/rules';
import { compareResponses } from '../../../src/compare/compare-http';
import type { HttpMessage } from '../../../src/compare/http-parser';

test('JSON differences with paths: missing, extra, type, value; arrays by index', () => {
  const out: JsonFieldDiff[] = [];
  diffJson(
    { a: 1, items: [{ price: 1 }, { price: 2 }, 3], 'x y': true, gone: null },
    { a: '1', items: [{ price: 1 }, { price: 5 }], 'x y': false, added: [1] },
    out,
  );
  assert.deepEqual(out, [
    { path: '$.a', kind: 'type', a: '1', b: '"1"' },
    { path: '$.items[1].price', kind: 'value', a: '2', b: '5' },
    { path: '$.items[2]', kind: 'missing', a: '3' },
    { path: '$["x y"]', kind: 'value', a: 'true', b: 'false' },
    { path: '$.gone', kind: 'missing', a: 'null' },
    { path: '$.added', kind: 'extra', b: '[1]' },
  ]);
  assert.equal(fieldKey('$.items[12].tags[0]'), '$.items[*].tags[*]');
  const capped: JsonFieldDiff[] = [];
  diffJson(
    Array.from({ length: 500 }, (_, i) => i),
    [],
    capped,
    10,
  );
  assert.equal(capped.length, 10);
});

test('endpoint names collapse numeric and uuid segments, drop the query; rules override', () => {
  const r = buildRules({ endpoints: ['^/api/v[0-9]+/=/api/:v/*'] });
  assert.equal(endpointName('GET', '/users/123?x=1', r), 'GET /users/:id');
  assert.equal(endpointName('DELETE', '/o/3f2b8c1e-1d2a-4c3b-9a8f-0123456789ab/items/7', r), 'DELETE /o/:id/items/:id');
  assert.equal(endpointName('GET', '/api/v2/things', r), 'GET /api/:v/*');
  assert.equal(endpointName('GET', 'http://h:8/x/9', r), 'GET /x/:id');
  assert.equal(endpointName('GET', '/abc123', r), 'GET /abc123');
});

test('ignore rules: defaults, NAME=REGEX on both values, JSONPath with [*]; bad rules say the fix', () => {
  const r = buildRules({ ignoreHeaders: ['X-Trace=^[0-9a-f]+$'], ignorePaths: ['$.meta', '$.items[*].ts=^\\d+$'] });
  assert.ok(ignored(r.ignoreHeaders, 'date', 'a', 'b'));
  assert.ok(ignored(r.ignoreHeaders, 'x-trace', 'ab12', 'ff'));
  assert.ok(!ignored(r.ignoreHeaders, 'x-trace', 'ab12', 'zz'));
  assert.ok(!ignored(r.ignoreHeaders, 'x-version', 'v1', 'v2'));
  assert.ok(ignored(r.ignorePaths, '$.meta.id', '1', '2'));
  assert.ok(!ignored(r.ignorePaths, '$.metadata', '1', '2'));
  assert.ok(ignored(r.ignorePaths, '$.items[4].ts', '17', '18'));
  assert.ok(!ignored(r.ignorePaths, '$.items[4].ts', '"x"', '18'));
  assert.throws(() => buildRules({ ignorePaths: ['items'] }), CompareRuleError);
  assert.throws(() => buildRules({ ignoreHeaders: ['X=('] }), /bad regular expression/);
  assert.throws(() => buildRules({ endpoints: ['nope'] }), /REGEX=NAME/);
  assert.equal(buildRules({ noDefaultIgnores: true }).ignoreHeaders.length, 0);
});

test('bodies decode from gzip, deflate (zlib and raw) and br before comparison', () => {
  const text = Buffer.from('{"a":1}'.repeat(50));
  for (const [ce, enc] of [
    ['gzip', gzipSync(text)],
    ['deflate', deflateSync(text)],
    ['deflate', deflateRawSync(text)],
    ['br', brotliCompressSync(text)],
  ] as const) {
    const d = decodeBody([['Content-Encoding', ce]], enc, 1 << 20);
    assert.ok(d.ok && d.body.equals(text), ce);
  }
  assert.equal(decodeBody([['Content-Encoding', 'gzip']], Buffer.from('not gzip'), 100).ok, false);
  assert.equal(decodeBody([['Content-Encoding', 'zstd']], Buffer.from('x'), 100).ok, false);
  assert.equal(decodeBody([['Content-Encoding', 'gzip']], gzipSync(Buffer.alloc(10000)), 100).ok, false);
});

function msg(status: number, headers: [string, string][], body: string | Buffer): HttpMessage {
  const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
  return {
    method: 'GET',
    target: '/',
    status,
    version: 'HTTP/1.1',
    headers,
    body: b,
    bodyBytes: b.length,
    truncated: false,
    opaque: false,
    start: 0,
    end: 0,
  };
}

test('responses: headers case-insensitive with repeated values sorted; gzip vs plain bodies compare equal', () => {
  const r = buildRules();
  const a = msg(
    200,
    [
      ['Vary', 'b'],
      ['vary', 'a'],
      ['Content-Type', 'text/plain'],
      ['Date', 'x'],
    ],
    'hello',
  );
  const b = msg(
    200,
    [
      ['VARY', 'a'],
      ['Vary', 'b'],
      ['content-type', 'text/plain'],
      ['Date', 'y'],
      ['Content-Encoding', 'gzip'],
    ],
    gzipSync('hello'),
  );
  const v = compareResponses(a, b, r, 1 << 16);
  assert.ok('diffs' in v);
  assert.deepEqual(
    v.diffs.map((d) => [d.field, d.kind]),
    [['header:content-encoding', 'extra']],
  );
  const t = compareResponses({ ...a, truncated: true }, b, r, 1 << 16);
  assert.deepEqual(t, { skipped: 'truncated', detail: 'body over 65536 bytes or not delivered in full' });
});

test('opaque bodies: first differing offset with hex and text context', () => {
  const d = diffBytes(Buffer.from('abcdefghij-1234567890'), Buffer.from('abcdefghij-1234X'));
  assert.ok(d);
  assert.equal(d.offset, 15);
  assert.equal(d.textA, '1234567890');
  assert.equal(d.textB, '1234X');
  assert.equal(d.hexB, Buffer.from('1234X').toString('hex'));
  assert.equal(d.lenA, 21);
  assert.equal(diffBytes(Buffer.from('x'), Buffer.from('x')), null);
});
