import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AccessRecord } from '../../../src/lab/access-log';
import { expectationFromArgs, verifyDemo } from '../../../src/lab/demo-verify';

const clients = ['198.18.1.2', '198.18.1.3'];

function rec(path: string, addr = '198.18.1.2'): AccessRecord {
  return {
    remoteAddr: addr,
    remotePort: 40000,
    method: 'GET',
    path,
    url: path,
    status: 200,
    bytesSent: 3,
    requestLength: 80,
    msec: 0,
  };
}

const report = (captured: number, replayed: number, sampledOut = 0) => ({
  accounting: { captured, replayed, lost: { sampledOut }, balanced: true },
});

test('demo verdict: OK when the target logged every request from the original clients', () => {
  const on = [rec('/'), rec('/bytes/100', '198.18.1.3')];
  const v = verifyDemo(on, [...on], report(2, 2), expectationFromArgs([], clients));
  assert.equal(v.ok, true);
  assert.equal(v.verdictLine, 'demo: OK: the target received 2 of 2 requests (100.0%)');
});

test('demo verdict: MISMATCH on a missing request, an extra one, or a foreign client address', () => {
  const on = [rec('/'), rec('/'), rec('/bytes/100')];
  const missing = verifyDemo(on, on.slice(0, 2), report(3, 2), expectationFromArgs([], clients));
  assert.equal(missing.ok, false);
  assert.match(missing.verdictLine, /^demo: MISMATCH: the target received 2 of 3 requests \(66\.7%\)/);
  assert.ok(missing.lines.some((l) => /GET \/bytes\/100 .* <- missing 1/.test(l)));
  assert.equal(verifyDemo(on, [...on, rec('/')], report(3, 3), expectationFromArgs([], clients)).ok, false);
  const foreign = verifyDemo(
    on,
    [rec('/'), rec('/'), rec('/bytes/100', '198.18.0.1')],
    report(3, 3),
    expectationFromArgs([], clients),
  );
  assert.equal(foreign.ok, false);
  assert.match(foreign.verdictLine, /outside the lab's client range/);
  assert.equal(verifyDemo(on, [...on], null, expectationFromArgs([], clients)).ok, false);
});

test('demo expectation follows -n, -r and -c', () => {
  assert.deepEqual(expectationFromArgs(['-n', '3'], clients), {
    replicas: 3,
    rewritesClients: false,
    samples: false,
    clientAddresses: clients,
  });
  assert.equal(expectationFromArgs(['--replicas=2'], clients).replicas, 2);
  assert.equal(expectationFromArgs(['-r', '50'], clients).samples, true);
  assert.equal(expectationFromArgs(['-r', '100'], clients).samples, false);
  assert.equal(expectationFromArgs(['-c', '198.18.1.x'], clients).rewritesClients, true);
  const on = [rec('/'), rec('/bytes/100')];
  const twice = verifyDemo(on, [...on, ...on], report(4, 4), expectationFromArgs(['-n', '2'], clients));
  assert.equal(twice.ok, true);
  assert.equal(twice.expected, 4);
  // -r: the expectation is tcpcopy's own (captured - sampled out)
  const half = verifyDemo([...on, ...on], on, report(4, 2, 2), expectationFromArgs(['-r', '50'], clients));
  assert.equal(half.expected, 2);
  assert.equal(half.ok, true);
});
