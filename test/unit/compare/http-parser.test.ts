import { test } from 'node:test';
import assert from 'node:assert/strict';
import { gunzipSync } from 'node:zlib';
import { headerValue, HttpStreamParser, type HttpMessage } from '../../../src/compare/http-parser';
import { chunks, conversation, stream } from './fixtures';

function parse(
  role: 'request' | 'response',
  parts: Buffer[],
  methods: string[] = [],
  bodyMax?: number,
): { msgs: HttpMessage[]; p: HttpStreamParser } {
  const msgs: HttpMessage[] = [];
  const p = new HttpStreamParser(role, (m) => msgs.push(m), bodyMax === undefined ? {} : { bodyMax });
  for (const m of methods) p.expect(m);
  let t = 0;
  for (const c of parts) p.feed(c, t++);
  p.finish(t);
  return { msgs, p };
}

test('pipelined requests of the captured nginx connection, in order, any cut', () => {
  const c = stream(conversation('nginx-conn-1'), 'c');
  for (const seed of [1, 7, 1234]) {
    const { msgs, p } = parse('request', chunks(c, seed));
    assert.equal(p.broken, false);
    assert.deepEqual(
      msgs.map((m) => `${m.method} ${m.target}`),
      [
        'GET /users/123',
        'HEAD /static/big.txt',
        'GET /static/big.txt',
        'GET /static/data.json',
        'GET /empty',
        'GET /missing',
        'GET /static/data.json',
      ],
    );
  }
});

test("nginx's pipelined responses: Content-Length, HEAD without body, chunked gzip, 304, 204, 404", () => {
  const ev = conversation('nginx-conn-1');
  const methods = ['GET', 'HEAD', 'GET', 'GET', 'GET', 'GET', 'GET'];
  for (const seed of [3, 99]) {
    const { msgs, p } = parse('response', chunks(stream(ev, 's'), seed, 300), methods);
    assert.equal(p.broken, false, p.brokenReason);
    assert.deepEqual(
      msgs.map((m) => m.status),
      [200, 200, 200, 304, 204, 404, 200],
    );
    const [users, head, big, notMod, empty] = msgs as [HttpMessage, HttpMessage, HttpMessage, HttpMessage, HttpMessage];
    assert.equal(JSON.parse(users.body.toString()).items[1].price, 12.5);
    assert.equal(head.body.length, 0);
    assert.equal(headerValue(head.headers, 'content-length'), '3492');
    assert.equal(headerValue(big.headers, 'transfer-encoding'), 'chunked');
    const text = gunzipSync(big.body).toString();
    assert.equal(text.length, 3492);
    assert.ok(text.startsWith('line 1\nline 2\n'));
    assert.equal(notMod.body.length, 0);
    assert.equal(empty.body.length, 0);
    assert.equal(msgs[6]?.method, 'GET');
  }
});

test('100 Continue is skipped; the final responses follow', () => {
  const { msgs, p } = parse('response', [stream(conversation('nginx-conn-3'), 's')], ['POST', 'GET']);
  assert.equal(p.skipped1xx, 1);
  assert.deepEqual(
    msgs.map((m) => m.status),
    [201, 200],
  );
  assert.equal(msgs[0]?.body.toString(), 'created\n');
  const rq = parse('request', chunks(stream(conversation('nginx-conn-3'), 'c'), 5, 10));
  assert.deepEqual(
    rq.msgs.map((m) => m.method),
    ['POST', 'GET'],
  );
});

test('close-delimited body ends with the stream; a truncated body is flagged and counted', () => {
  const resp = Buffer.from('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello world, until the close');
  const { msgs } = parse('response', chunks(resp, 2, 5), ['GET']);
  assert.equal(msgs.length, 1);
  assert.equal(msgs[0]?.body.toString(), 'hello world, until the close');
  const cut = parse('response', [resp], ['GET'], 5);
  assert.equal(cut.msgs[0]?.body.toString(), 'hello');
  assert.equal(cut.msgs[0]?.bodyBytes, 28);
  assert.equal(cut.msgs[0]?.truncated, true);
});

test('bytes not delivered inside a Content-Length body truncate it; elsewhere the stream breaks', () => {
  const msgs: HttpMessage[] = [];
  const p = new HttpStreamParser('response', (m) => msgs.push(m));
  p.feed(Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123'), 0);
  p.missing(6, 1);
  p.feed(Buffer.from('HTTP/1.1 204 No Content\r\n\r\n'), 2);
  assert.deepEqual(
    msgs.map((m) => [m.status, m.truncated, m.bodyBytes]),
    [
      [200, true, 10],
      [204, false, 0],
    ],
  );
  p.missing(3, 3);
  assert.equal(p.broken, true);
});

test('101 Switching Protocols and CONNECT make the rest opaque', () => {
  const { msgs, p } = parse(
    'response',
    [Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello')],
    ['GET'],
  );
  assert.equal(msgs.length, 1);
  assert.equal(msgs[0]?.opaque, true);
  assert.equal(p.opaque, true);
  const c = parse('request', [
    Buffer.from('CONNECT db:5432 HTTP/1.1\r\nHost: db\r\n\r\n\x00\x00\x00\x08garbage GET / HTTP/1.1\r\n\r\n'),
  ]);
  assert.equal(c.msgs.length, 1);
  assert.equal(c.p.opaque, true);
});

test('hostile bytes break the stream with a reason, never throw', () => {
  for (const bad of [
    'NOT HTTP\r\n\r\n',
    'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n',
    'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
    'HTTP/1.1 200 OK\r\nno colon\r\n\r\n',
  ]) {
    const { p } = parse('response', [Buffer.from(bad)], ['GET']);
    assert.equal(p.broken, true, bad);
    assert.notEqual(p.brokenReason, '');
  }
  const big = parse('response', [Buffer.alloc(70 * 1024, 0x41)], ['GET']);
  assert.equal(big.p.broken, true);
  assert.equal(big.p.brokenReason, 'head too large');
});
