import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNginxLine } from '../../../src/lab/access-log';

test('nginx lab log lines: with and without $server_port', () => {
  const a = parseNginxLine('198.18.2.7 40112 [1763700000.123] "GET /bytes/100?x=1 HTTP/1.1" 200 100 87 0.000 5 3 81');
  assert.ok(a);
  assert.equal(a.remoteAddr, '198.18.2.7');
  assert.equal(a.remotePort, 40112);
  assert.equal(a.msec, 1763700000123);
  assert.equal(a.path, '/bytes/100');
  assert.equal(a.url, '/bytes/100?x=1');
  assert.equal(a.connectionRequests, 3);
  assert.equal(a.serverPort, 81);
  const b = parseNginxLine('198.18.2.7 40112 [1763700000.123] "GET / HTTP/1.1" 200 0 70 0.000 5 1');
  assert.ok(b);
  assert.equal(b.serverPort, undefined);
  assert.equal(parseNginxLine('garbage'), null);
});
