import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Comparison, type CompareSessionInfo } from '../../../src/compare/comparison';
import { BytesSessionObserver, type Exchange } from '../../../src/compare/session';
import { compareConfig, type CompareConfig } from '../../../src/compare/config';
import { buildRules } from '../../../src/compare/rules';
import type { DiffLine } from '../../../src/compare/summary';
import { compareReportText } from '../../../src/compare/report-text';
import { renderHtml } from '../../../src/compare/report-html';
import { chunks, conversation, stream } from './fixtures';

const INFO: CompareSessionInfo = {
  clientIp: '198.18.0.10',
  clientPort: 40000,
  serverIp: '198.18.1.1',
  serverPort: 80,
  targetIp: '198.18.2.1',
  targetPort: 8080,
};

/** Replays one captured conversation into a comparison: client + production from `online`, the target's bytes from `target`. */
function replay(cmp: Comparison, online: string, target: string, info: CompareSessionInfo = INFO, seed = 1): void {
  const obs = cmp.openSession(info);
  const on = conversation(online);
  let t = 0;
  for (const e of on) {
    if (e.dir === 'c') obs.clientBytes(e.data, e.t);
    else for (const c of chunks(e.data, seed + t++, 400)) obs.onlineBytes(c, 0, e.t);
  }
  for (const c of chunks(stream(conversation(target), 's'), seed, 500)) obs.targetBytes(c, 0, 10 + t++);
  obs.end(100);
}

function run(over: Partial<CompareConfig> = {}, rules = buildRules()): { cmp: Comparison; lines: DiffLine[] } {
  const lines: DiffLine[] = [];
  return { cmp: new Comparison(compareConfig('http', rules, over), (l) => lines.push(l)), lines };
}

test('production vs the changed nginx: exactly the deliberate differences, per endpoint; Date and Server ignored', () => {
  const { cmp, lines } = run();
  for (const i of [1, 2, 3]) replay(cmp, `nginx-conn-${i}`, `nginx-target-conn-${i}`);
  cmp.finish();
  const s = cmp.summary();
  assert.equal(s.identity, true);
  assert.equal(s.totals.exchanges, 10);
  assert.equal(s.totals.compared, 10);
  const byName = new Map(s.endpoints.map((e) => [e.endpoint, e]));
  const users = byName.get('GET /users/:id');
  assert.ok(users);
  assert.equal(users.counts.exchanges, 2);
  assert.equal(users.counts.different, 2);
  assert.deepEqual(
    users.fields.map((f) => [f.field, f.raw]),
    [
      ['body:$.items[*].price', 2],
      ['header:x-version', 2],
    ],
  );
  assert.deepEqual(users.fields[0]?.examples[0], {
    session: '198.18.0.10:40000>198.18.1.1:80',
    path: '$.items[1].price',
    a: '12.5',
    b: '13',
  });
  const missing = byName.get('GET /missing');
  assert.deepEqual(
    missing?.fields.map((f) => f.field),
    ['body', 'status'],
  );
  assert.equal(missing?.counts.different, 1);
  for (const [name, e] of byName)
    if (name !== 'GET /users/:id' && name !== 'GET /missing') assert.equal(e.counts.different, 0, name);
  assert.equal(s.totals.different, 3);
  assert.equal(s.totals.identical, 7);
  assert.deepEqual(
    s.statusMatrix.find((m) => m.online === 404),
    { online: 404, target: 410, count: 1 },
  );
  assert.equal(lines.length, 3);
  assert.deepEqual(lines.map((l) => l.request).sort(), ['GET /missing', 'GET /users/123', 'GET /users/123']);
  const miss = lines.find((l) => l.request === 'GET /missing');
  assert.deepEqual(miss?.status, [404, 410]);
  assert.equal(miss?.diffs.find((d) => d.field === 'body')?.bytes?.offset, 22); // '<html>\r\n<head><title>4' then '0' vs '1'
});

test('the same conversation against itself is identical; user rules ignore the header and the JSON path', () => {
  const same = run();
  replay(same.cmp, 'nginx-conn-1', 'nginx-conn-1');
  assert.deepEqual([same.cmp.summary().totals.identical, same.cmp.summary().totals.different], [7, 0]);
  const { cmp } = run({}, buildRules({ ignoreHeaders: ['X-Version=^v[12]$'], ignorePaths: ['$.items[*].price'] }));
  replay(cmp, 'nginx-conn-1', 'nginx-target-conn-1');
  const s = cmp.summary();
  assert.equal(s.endpoints.find((e) => e.endpoint === 'GET /users/:id')?.counts.different, 0);
  assert.equal(s.totals.different, 1); // /missing
  const strict = run({}, buildRules({ ignoreHeaders: ['X-Version=^v1$'] }));
  replay(strict.cmp, 'nginx-conn-1', 'nginx-target-conn-1');
  assert.ok(
    strict.cmp
      .summary()
      .endpoints.find((e) => e.endpoint === 'GET /users/:id')
      ?.fields.some((f) => f.field === 'header:x-version'),
  );
});

function jsonExchange(cmp: Comparison, info: CompareSessionInfo, online: object, target: object): void {
  const o = cmp.openSession(info);
  o.clientBytes(Buffer.from('GET /items/42?x=1 HTTP/1.1\r\nHost: a\r\n\r\n'), 0);
  const resp = (v: object): Buffer => {
    const b = JSON.stringify(v);
    return Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${b.length}\r\n\r\n${b}`);
  };
  o.onlineBytes(resp(online), 0, 1);
  o.targetBytes(resp(target), 0, 2);
  o.end(3);
}

test('noise cancelled with a reference target: a random field is noise, a real change is a difference', () => {
  const { cmp } = run({ noise: 'reference', reference: '198.18.3.1:8080' });
  for (let i = 0; i < 50; i++) {
    const c = { ...INFO, clientPort: 30000 + i };
    const id = (k: number): string => `r${i}-${k}`;
    jsonExchange(cmp, { ...c, targetIp: '198.18.2.1' }, { id: id(0), price: 1 }, { id: id(1), price: 2 });
    jsonExchange(cmp, { ...c, targetIp: '198.18.3.1' }, { id: id(0), price: 1 }, { id: id(2), price: 1 });
  }
  cmp.finish();
  const s = cmp.summary();
  const e = s.endpoints[0];
  assert.equal(e?.endpoint, 'GET /items/:id');
  assert.deepEqual(
    e?.fields.map((f) => [f.field, f.raw, f.noise, f.isNoise]),
    [
      ['body:$.id', 50, 50, true],
      ['body:$.price', 50, 0, false],
    ],
  );
  assert.equal(e?.counts.exchanges, 50); // the reference's exchanges are the noise pair, not counted twice
  assert.equal(e?.counts.different, 50);
  assert.equal(s.identity, true);
  // only the random field: every exchange is noise
  const n = run({ noise: 'reference', reference: '198.18.3.1:8080' });
  for (let i = 0; i < 20; i++) {
    const c = { ...INFO, clientPort: 30000 + i };
    jsonExchange(n.cmp, { ...c, targetIp: '198.18.2.1' }, { id: `a${i}` }, { id: `b${i}` });
    jsonExchange(n.cmp, { ...c, targetIp: '198.18.3.1' }, { id: `a${i}` }, { id: `c${i}` });
  }
  n.cmp.finish();
  const t = n.cmp.summary().totals;
  assert.deepEqual([t.compared, t.different, t.noise, t.identical], [20, 0, 20, 0]);
});

test('noise floor from two replicas of one target (-n 2)', () => {
  const { cmp } = run({ noise: 'replicas' });
  for (let i = 0; i < 10; i++) {
    const c = { ...INFO, clientPort: 31000 + i };
    jsonExchange(cmp, c, { id: 'x', v: 1 }, { id: `r${i}a`, v: 2 }); // replica 0
    jsonExchange(cmp, c, { id: 'x', v: 1 }, { id: `r${i}b`, v: 2 }); // replica 1 (opened after 0 ended: same ordinal)
  }
  cmp.finish();
  const f = cmp.summary().endpoints[0]?.fields;
  // sessions opened one after the other are both replica 0: no pairs, every field counts
  assert.ok(f?.every((x) => !x.isNoise));
  const p = run({ noise: 'replicas' });
  for (let i = 0; i < 10; i++) {
    const c = { ...INFO, clientPort: 32000 + i };
    const resp = (v: object): Buffer => {
      const b = JSON.stringify(v);
      return Buffer.from(
        `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${b.length}\r\n\r\n${b}`,
      );
    };
    const r0 = p.cmp.openSession(c);
    const r1 = p.cmp.openSession(c); // open together, as -n 2 does
    for (const [o, id] of [
      [r0, 'a'],
      [r1, 'b'],
    ] as const) {
      o.clientBytes(Buffer.from('GET /v HTTP/1.1\r\n\r\n'), 0);
      o.onlineBytes(resp({ id: 'x', v: 1 }), 0, 1);
      o.targetBytes(resp({ id: `${id}${i}`, v: 2 }), 0, 2);
    }
    r0.end(3);
    r1.end(3);
  }
  p.cmp.finish();
  const e = p.cmp.summary().endpoints[0];
  assert.deepEqual(
    e?.fields.map((x) => [x.field, x.isNoise]),
    [
      ['body:$.id', true],
      ['body:$.v', false],
    ],
  );
  assert.equal(e?.counts.exchanges, 10);
});

test('memory caps: exchanges over the session cap are skipped as memory, counted, identity kept', () => {
  const { cmp } = run({ sessionMax: 100 });
  replay(cmp, 'nginx-conn-1', 'nginx-target-conn-1');
  const s = cmp.summary();
  assert.ok(s.totals.skipped.memory > 0);
  assert.equal(s.totals.exchanges, 7);
  assert.equal(s.identity, true);
  assert.equal(cmp.budget.held, 0);
  assert.ok(cmp.peakHeld <= 100);
  const g = run({ memoryMax: 50 });
  replay(g.cmp, 'nginx-conn-1', 'nginx-target-conn-1');
  assert.ok(g.cmp.summary().totals.skipped.memory > 0);
  assert.ok(g.cmp.peakHeld <= 50);
});

test('no target response, truncated bodies and unparsable streams are skipped with their reasons', () => {
  const { cmp } = run({ bodyMax: 100 });
  const o = cmp.openSession(INFO);
  const on = conversation('nginx-conn-1');
  for (const e of on) {
    if (e.dir === 'c') o.clientBytes(e.data, 0);
    else o.onlineBytes(e.data, 0, 1);
  }
  o.targetBytes(stream(conversation('nginx-target-conn-1'), 's').subarray(0, 600), 0, 2);
  o.end(3);
  const s = cmp.summary();
  assert.equal(s.totals.exchanges, 7);
  assert.deepEqual([s.totals.compared, s.totals.skipped.unparsable], [2, 5]); // the target's stream ends inside its 3rd response
  assert.equal(s.identity, true);
  const tr = run({ bodyMax: 100 });
  replay(tr.cmp, 'nginx-conn-1', 'nginx-target-conn-1');
  const ts = tr.cmp.summary();
  assert.equal(ts.totals.skipped.truncated, 2); // the gzipped big.txt (775 bytes) and the 404 page (153)
  assert.equal(ts.identity, true);
  const u = run();
  const x = u.cmp.openSession(INFO);
  x.clientBytes(Buffer.from('GET / HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n'), 0);
  x.onlineBytes(
    Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'),
    0,
    1,
  );
  x.targetBytes(Buffer.from('garbage\r\n\r\n'), 0, 2);
  x.end(3);
  assert.equal(u.cmp.summary().totals.skipped.unparsable, 2);
});

test('bytes mode: exchanges cut at the turns of the conversation, compared by length and hash', () => {
  const lines: DiffLine[] = [];
  const cmp = new Comparison(compareConfig('bytes', buildRules()), (l) => lines.push(l));
  const o = cmp.openSession({ ...INFO, serverPort: 6379 });
  o.clientBytes(Buffer.from('*1\r\n$4\r\nPING\r\n'), 0);
  o.onlineBytes(Buffer.from('+PONG\r\n'), 0, 1);
  o.targetBytes(Buffer.from('+PONG\r\n'), 0, 2);
  o.clientBytes(Buffer.from('*2\r\n$3\r\nGET\r\n$1\r\nk\r\n'), 3);
  o.onlineBytes(Buffer.from('$3\r\nabc\r\n'), 0, 4);
  o.targetBytes(Buffer.from('$3\r\nabd\r\n'), 0, 5);
  o.end(6);
  const s = cmp.summary();
  assert.deepEqual([s.totals.exchanges, s.totals.identical, s.totals.different], [2, 1, 1]);
  assert.equal(s.endpoints[0]?.endpoint, ':6379');
  assert.equal(lines[0]?.diffs[0]?.bytes?.offset, 6);
  assert.equal(lines[0]?.diffs[0]?.bytes?.textA, '..abc..');
});

test('bytes mode: a long session keeps only the exchanges not handed on; each exchange keeps its index and its answers', () => {
  const got: Exchange[] = [];
  const budget = { held: 0, max: 1 << 26 };
  const o = new BytesSessionObserver({ bodyMax: 65536, sessionMax: 1 << 20 }, budget, (e) => got.push(e));
  const n = 5000;
  let kept = 0;
  for (let i = 0; i < n; i++) {
    o.clientBytes(Buffer.from('*1\r\n$4\r\nPING\r\n'), i);
    o.onlineBytes(Buffer.from(`:${i}\r\n`), 0, i);
    // every 1000th answer differs on the target
    o.targetBytes(Buffer.from(`:${i % 1000 === 999 ? i + 1 : i}\r\n`), 0, i);
    kept = Math.max(kept, o.keptExchanges);
  }
  o.end(n);
  assert.equal(got.length, n);
  assert.ok(kept <= 1025, `kept at most ${kept} exchanges`);
  assert.deepEqual(
    got.map((e) => e.index),
    Array.from({ length: n }, (_, i) => i),
  );
  assert.ok(got.every((e, i) => e.onlineBytes?.toString() === `:${i}\r\n`));
  assert.deepEqual(
    got.filter((e) => !e.onlineBytes?.equals(e.targetBytes as Buffer)).map((e) => e.index),
    [999, 1999, 2999, 3999, 4999],
  );
  assert.equal(budget.held, 0);
});

test('latency per endpoint, both sides, from the engine times', () => {
  const { cmp } = run();
  for (let i = 0; i < 100; i++) {
    const o = cmp.openSession({ ...INFO, clientPort: 20000 + i });
    o.clientBytes(Buffer.from('GET /a HTTP/1.1\r\n\r\n'), 1000);
    o.onlineBytes(Buffer.from('HTTP/1.1 204 No Content\r\n\r\n'), 0, 1000 + 1 + (i % 10));
    o.targetBytes(Buffer.from('HTTP/1.1 204 No Content\r\n\r\n'), 0, 1000 + 20 + i);
    o.end(2000);
  }
  const l = cmp.summary().endpoints[0]?.latency;
  assert.equal(l?.online.count, 100);
  assert.ok(l !== undefined && l.online.p50 >= 5 && l.online.p50 <= 7.5, String(l?.online.p50));
  assert.ok(l.target.p90 >= 108 && l.target.p90 <= 140, String(l.target.p90));
  assert.ok(l.target.p99 >= l.target.p90);
});

test('latency from capture times: production on its capture clock, the target ending at intercept stamps; counted by clock', () => {
  const { cmp, lines } = run();
  const ok = Buffer.from('HTTP/1.1 204 No Content\r\n\r\n');
  // the target answers 404, so that every exchange is a diffs line with its exact latencies
  const nf = Buffer.from('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
  const o = cmp.openSession(INFO);
  // engine time runs 500 ms after the capture clock and late by the capture block: ignored for production
  o.clientBytes(Buffer.from('GET /a HTTP/1.1\r\n\r\n'), 1000, 500);
  o.onlineBytes(ok, 0, 1050, 503);
  o.targetBytes(nf.subarray(0, 10), 0, 1030, 1020);
  o.targetBytes(nf.subarray(10), 0, 1045, 1025); // the packet that completed it: intercept's capture at 1025
  // keep-alive: the second request waits for the first response on each side
  o.clientBytes(Buffer.from('GET /b HTTP/1.1\r\n\r\n'), 1046, 501);
  o.onlineBytes(ok, 0, 1060, 530);
  o.targetBytes(nf, 0, 1100, 1090);
  o.end(1200);
  // a session without times (a 1.x channel, an input without capture times): engine time on both sides
  const p = cmp.openSession({ ...INFO, clientPort: 40001 });
  p.clientBytes(Buffer.from('GET /a HTTP/1.1\r\n\r\n'), 2000);
  p.onlineBytes(ok, 0, 2007);
  p.targetBytes(nf, 0, 2040);
  p.end(2100);
  cmp.finish();
  assert.deepEqual(
    lines.map((l) => [l.request, l.latencyMs]),
    [
      ['GET /a', [3, 25]],
      ['GET /b', [27, 44]],
      ['GET /a', [7, 40]],
    ],
  );
  const s = cmp.summary();
  assert.deepEqual(s.latencyClocks, { onlineCapture: 2, onlineEngine: 1, targetStamped: 2, targetRead: 1 });
  const text = compareReportText(s);
  assert.match(text, /production ms p50\/p90\/p99 +target ms p50\/p90\/p99/);
  assert.match(text, /intercept's capture of the packet that completed the target's response.*\[2 of 3 exchanges\]/);
  assert.match(text, /1 without intercept's stamps/);
  assert.match(renderHtml(s, lines), /<ul id="latency-legend"><li>production: from the capture/);
});

test('bytes mode latency: production from capture times, the target to the stamp of its last bytes', () => {
  const lines: DiffLine[] = [];
  const cmp = new Comparison(compareConfig('bytes', buildRules()), (l) => lines.push(l));
  const o = cmp.openSession({ ...INFO, serverPort: 6379 });
  o.clientBytes(Buffer.from('*1\r\n$4\r\nPING\r\n'), 100, 10);
  o.onlineBytes(Buffer.from('+PO'), 0, 120, 11);
  o.onlineBytes(Buffer.from('NG\r\n'), 0, 121, 14.5);
  o.targetBytes(Buffer.from('-ERR\r\n'), 0, 150, 133);
  o.end(200);
  assert.deepEqual(
    lines.map((l) => l.latencyMs),
    [[4.5, 33]],
  );
});
