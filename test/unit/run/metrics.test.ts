import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { newEngineStats, recordLag } from '../../../src/core/stats';
import { escapeLabelValue, interceptMetrics, PromText, tcpcopyMetrics } from '../../../src/run/metrics';
import type { ReplayReport } from '../../../src/run/report';
import { parseMetricsAddress, startMetricsServer } from '../../../src/io/metrics-server';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}
interface Parsed {
  help: Map<string, string>;
  type: Map<string, string>;
  samples: Sample[];
}

/** A strict reader of the text format: every sample belongs to a family declared by HELP and TYPE before it. */
function parseProm(text: string): Parsed {
  const p: Parsed = { help: new Map(), type: new Map(), samples: [] };
  assert.ok(text.endsWith('\n'));
  for (const line of text.slice(0, -1).split('\n')) {
    let m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m !== null) {
      (m[1] === 'HELP' ? p.help : p.type).set(m[2] as string, m[3] as string);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m !== null, `bad line: ${line}`);
    const labels: Record<string, string> = {};
    const ls = m[2] ?? '';
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy;
    let lm: RegExpExecArray | null;
    let consumed = 0;
    while (consumed < ls.length && (lm = re.exec(ls)) !== null) {
      labels[lm[1] as string] = (lm[2] as string).replace(/\\(.)/g, (_x, c: string) => (c === 'n' ? '\n' : c));
      consumed = re.lastIndex;
    }
    assert.equal(consumed, ls.length, `bad labels: ${line}`);
    const name = m[1] as string;
    const family = name.replace(/_(bucket|sum|count)$/, '');
    assert.ok(p.type.has(name) || p.type.get(family) === 'histogram', `sample before its TYPE: ${line}`);
    p.samples.push({ name, labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return p;
}

function get(p: Parsed, name: string, labels: Record<string, string> = {}): number | undefined {
  return p.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

function report(): ReplayReport {
  const e = newEngineStats();
  e.sessionsCreated = 10;
  e.outcomes.completed = 8;
  e.outcomes.targetReset = 1;
  e.outcomes.channelDown = 1;
  e.requestsCaptured = 20;
  e.requestsSampledOut = 5;
  e.requestsReplayed = 17;
  e.requestsLost.targetReset = 2;
  e.requestsLost.channelDown = 1;
  e.packetsSent = 99;
  e.retransFast = 3;
  for (const lag of [0.5, 3, 3, 100, 5_000_000_000]) recordLag(e, lag);
  return {
    mode: 'offline',
    durationS: 1,
    capture: { frames: 200, decode: { ok: 200 }, notForTransfers: 0, dropped: 0, damaged: 0, fatal: null },
    engine: e,
    requestsInFlight: 0,
    channel: {},
    sender: { sent: 99, failed: 0, retried: 0, lastError: '' },
    lag: { p50: 4, p90: 128, p99: 128, samples: 5 },
    process: { cpuUserS: 1, cpuSystemS: 0.5, maxRssMB: 50 },
  };
}

test('tcpcopy metrics parse back: HELP/TYPE, outcome and reason labels, the accounting identity', () => {
  const p = parseProm(tcpcopyMetrics(report(), true));
  assert.equal(p.type.get('tcpcopy_sessions_total'), 'counter');
  assert.equal(p.type.get('tcpcopy_replay_lag_ms'), 'histogram');
  assert.equal(p.type.get('tcpcopy_sessions_active'), 'gauge');
  for (const [name] of p.type) assert.ok(p.help.has(name), `HELP for ${name}`);
  assert.equal(get(p, 'tcpcopy_sessions_total', { outcome: 'completed' }), 8);
  assert.equal(get(p, 'tcpcopy_sessions_total', { outcome: 'channelDown' }), 1);
  assert.equal(get(p, 'tcpcopy_packets_sent_total'), 99);
  assert.equal(get(p, 'tcpcopy_retransmissions_total', { kind: 'fast' }), 3);
  assert.equal(get(p, 'tcpcopy_channel_up'), 1);
  const captured = get(p, 'tcpcopy_requests_captured_total') as number;
  const replayed = get(p, 'tcpcopy_requests_replayed_total') as number;
  const lost = p.samples.filter((s) => s.name === 'tcpcopy_requests_lost_total');
  assert.equal(get(p, 'tcpcopy_requests_lost_total', { reason: 'sampledOut' }), 5);
  assert.equal(get(p, 'tcpcopy_requests_lost_total', { reason: 'targetReset' }), 2);
  assert.equal(new Set(lost.map((s) => s.labels['reason'])).size, lost.length, 'one sample per reason');
  assert.equal(captured, 25);
  assert.equal(captured, replayed + lost.reduce((a, s) => a + s.value, 0));
  assert.equal(get(p, 'tcpcopy_requests_balanced'), 1);
  assert.equal(get(p, 'tcpcopy_requests_unexplained'), 0);
});

test('tcpcopy metrics: requests in open sessions are in flight; a remainder they do not explain is unexplained', () => {
  const live = report();
  live.engine.requestsCaptured += 4;
  live.requestsInFlight = 4;
  const p = parseProm(tcpcopyMetrics(live, true));
  assert.equal(get(p, 'tcpcopy_requests_lost_total', { reason: 'inFlight' }), 4);
  assert.equal(get(p, 'tcpcopy_requests_balanced'), 1);
  assert.equal(get(p, 'tcpcopy_requests_unexplained'), 0);
  // 63 captured requests that no session holds and no reason explains
  const bad = report();
  bad.engine.requestsCaptured += 63;
  const q = parseProm(tcpcopyMetrics(bad, true));
  assert.equal(get(q, 'tcpcopy_requests_balanced'), 0);
  assert.equal(get(q, 'tcpcopy_requests_unexplained'), 63);
  assert.equal(get(q, 'tcpcopy_requests_lost_total', { reason: 'inFlight' }), undefined, 'not hidden as in flight');
  const captured = get(q, 'tcpcopy_requests_captured_total') as number;
  const replayed = get(q, 'tcpcopy_requests_replayed_total') as number;
  const lost = q.samples.filter((s) => s.name === 'tcpcopy_requests_lost_total').reduce((a, s) => a + s.value, 0);
  assert.equal(captured - replayed - lost, 63);
});

test('lag histogram: cumulative le buckets from the log2 histogram, +Inf = count, sum', () => {
  const p = parseProm(tcpcopyMetrics(report(), false));
  const buckets = p.samples.filter((s) => s.name === 'tcpcopy_replay_lag_ms_bucket');
  const les = buckets.map((b) => b.labels['le']);
  assert.equal(les[0], '1');
  assert.equal(les[1], '2');
  assert.equal(les.at(-1), '+Inf');
  for (let i = 1; i < buckets.length; i++)
    assert.ok((buckets[i]?.value as number) >= (buckets[i - 1]?.value as number), 'cumulative');
  assert.equal(get(p, 'tcpcopy_replay_lag_ms_bucket', { le: '1' }), 1); // 0.5 ms
  assert.equal(get(p, 'tcpcopy_replay_lag_ms_bucket', { le: '4' }), 3); // 3 ms twice
  assert.equal(get(p, 'tcpcopy_replay_lag_ms_bucket', { le: '128' }), 4);
  assert.equal(get(p, 'tcpcopy_replay_lag_ms_bucket', { le: String(2 ** 22) }), 4); // the huge one only in +Inf
  assert.equal(get(p, 'tcpcopy_replay_lag_ms_bucket', { le: '+Inf' }), 5);
  assert.equal(get(p, 'tcpcopy_replay_lag_ms_count'), 5);
  assert.equal(get(p, 'tcpcopy_replay_lag_ms_sum'), 0.5 + 3 + 3 + 100 + 5_000_000_000);
  assert.equal(get(p, 'tcpcopy_channel_up'), 0);
});

test('label values are escaped and read back', () => {
  assert.equal(escapeLabelValue('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
  const t = new PromText('x').family('y_total', 'counter', 'h').sample('y_total', 1, { peer: 'a"b\\c\nd' }).toString();
  assert.deepEqual(parseProm(t).samples[0]?.labels, { peer: 'a"b\\c\nd' });
});

test('intercept metrics: replies, no-route, frames and per-peer labels', () => {
  const peer = {
    peer: '198.18.0.1:40000',
    clientAdds: 5,
    clientDels: 4,
    routesRefused: 0,
    records: 30,
    frames: 7,
    bytes: 2000,
    dropped: 0,
  };
  const text = interceptMetrics({
    captured: 40,
    undecodable: 1,
    routed: 30,
    noRoute: 9,
    held: 2,
    heldDelivered: 2,
    heldExpired: 0,
    holdFull: 0,
    routesAdded: 5,
    routesUpdated: 0,
    routesDeleted: 4,
    routesExpired: 3,
    routesRefused: 0,
    routesRefusedQuota: 0,
    routesRefusedOwned: 0,
    routes: 2,
    framesSent: 7,
    recordsSent: 30,
    bytesSent: 2000,
    recordsDropped: 0,
    peers: 1,
    peersTotal: 2,
    badHello: 0,
    badMessages: 0,
    badPeers: 0,
    authOk: 0,
    authRefused: 0,
    notAllowed: 0,
    fdExhausted: 0,
    payloadRoutes: 0,
    payloadBytesSent: 0,
    payloadTruncated: 0,
    stampRoutes: 0,
    stampsSent: 0,
    capsAnswered: 0,
    perPeer: [peer],
    pastPeers: [],
    capture: { received: 41, dropped: 0 },
  });
  const p = parseProm(text);
  assert.equal(get(p, 'intercept_replies_total'), 40);
  assert.equal(get(p, 'intercept_replies_no_route_total'), 9);
  assert.equal(get(p, 'intercept_frames_sent_total'), 7);
  assert.equal(get(p, 'intercept_peer_frames_sent_total', { peer: peer.peer }), 7);
  assert.equal(get(p, 'intercept_route_events_total', { event: 'expired' }), 3);
});

test('--metrics address parsing and the HTTP endpoint on loopback', async () => {
  assert.deepEqual(parseMetricsAddress('127.0.0.1:9101'), { host: '127.0.0.1', port: 9101 });
  assert.throws(() => parseMetricsAddress('9101'), { code: 'ERR_BAD_OPTION' });
  assert.throws(() => parseMetricsAddress('example.com:80'), { code: 'ERR_BAD_OPTION' });
  const srv = await startMetricsServer({ host: '127.0.0.1', port: 0 }, () => tcpcopyMetrics(report(), true));
  try {
    const fetchText = (path: string) =>
      new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port: srv.address.port, path }, (res) => {
            let body = '';
            res
              .setEncoding('utf8')
              .on('data', (c: string) => (body += c))
              .on('end', () =>
                resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }),
              );
          })
          .on('error', reject);
      });
    const r = await fetchText('/metrics');
    assert.equal(r.status, 200);
    assert.match(r.type, /^text\/plain; version=0\.0\.4/);
    assert.equal(get(parseProm(r.body), 'tcpcopy_packets_sent_total'), 99);
    assert.equal((await fetchText('/nope')).status, 404);
  } finally {
    await srv.close();
  }
});

test('tcpcopy metrics: the memory budget and what the governor did, only when a budget is in force', () => {
  const none = parseProm(tcpcopyMetrics(report(), true));
  assert.equal(get(none, 'tcpcopy_memory_budget_bytes'), undefined);
  const r = report();
  r.memoryBudget = {
    budgetMB: 120,
    overBudget: 2,
    collections: 5,
    sessionsShed: 1,
    sessionsIdleEnded: 0,
    closedMs: 3500,
  };
  r.engine.outcomes.overload = 7;
  r.engine.requestsLost.overload = 9;
  r.engine.requestsCaptured += 9;
  const p = parseProm(tcpcopyMetrics(r, true));
  assert.equal(get(p, 'tcpcopy_memory_budget_bytes'), 120 * 1048576);
  assert.equal(get(p, 'tcpcopy_memory_over_budget_total'), 2);
  assert.equal(get(p, 'tcpcopy_memory_refusing_seconds_total'), 3.5);
  assert.equal(get(p, 'tcpcopy_memory_sessions_shed_total'), 1);
  assert.equal(get(p, 'tcpcopy_memory_collections_total'), 5);
  assert.equal(get(p, 'tcpcopy_sessions_total', { outcome: 'overload' }), 7);
  assert.equal(get(p, 'tcpcopy_requests_lost_total', { reason: 'overload' }), 9);
  assert.equal(get(p, 'tcpcopy_requests_balanced'), 1);
});
