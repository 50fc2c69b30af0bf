/**
 * The PostgreSQL module after the login, on the real capture (test/fixtures/postgres): a
 * CancelRequest rewritten with the target's backend key, sessions picked up mid-stream logged
 * in, their statements whose Parse was not captured dropped as lost; the options.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModuleDriver } from '../driver';
import { definition } from '../../../../src/modules/postgres/index';
import type { PgSession } from '../../../../src/modules/postgres/module';
import { BackendFramer, parseUntyped } from '../../../../src/modules/postgres/wire';
import { CANCEL_GRACE_MS } from '../../../../src/modules/postgres/tables';
import { LEARN_WAIT_MS } from '../../../../src/modules/postgres/catalog';
import type { ProtocolModule } from '../../../../src/modules/api';
import { clientMessages, connections, serverMessages, stream, type Conn } from './capture';
import { ScramServer, authMsg, loginTail } from './scram-server';

const CONNS = connections();
const [SCRAM_PSQL, , CLEAR, , SLEEPER, CANCEL, NODE_PG, , PGBENCH] = CONNS;
const USERS = ['scram_u:scrampw', 'md5_u:md5pw', 'clear_u:clearpw'];

function pg(extra: Record<string, string[]> = {}): ProtocolModule<PgSession> {
  return definition.createModule({ 'pg-user': USERS, ...extra }) as ProtocolModule<PgSession>;
}

/** Drives a captured connection to the captured server (as online) and a target answering with `targetKey`. */
function loginWithTargetKey(mod: ProtocolModule<PgSession>, c: Conn, pid: number, secret: number, now = 0) {
  const d = new ModuleDriver(mod, { clientPort: c.clientPort, now });
  const cm = clientMessages(stream(c, true));
  d.online(stream(c, false), 0, now);
  d.client(cm[0] as Buffer, now);
  const srv = new ScramServer('scrampw');
  d.target(srv.start(), 0, now);
  d.client(cm[1] as Buffer, now);
  const fin = srv.final(
    (() => {
      d.target(srv.first(d.log.sent[1] as Buffer), 0, now);
      return d.log.sent[2] as Buffer;
    })(),
  );
  assert.ok(fin);
  d.target(Buffer.concat([fin, loginTail({}, pid, secret)]), 0, now);
  for (const m of cm.slice(2)) d.client(m, now);
  return d;
}

test("a CancelRequest carries the target's backend key (production's came in its replies)", () => {
  const mod = pg();
  const sleeper = loginWithTargetKey(mod, SLEEPER as Conn, 777, 0xabcdef);
  assert.equal(sleeper.log.ended, null);
  const captured = stream(CANCEL as Conn, true);
  const orig = parseUntyped(captured);
  assert.equal(orig.kind, 'cancel');
  const d = new ModuleDriver(mod, { clientPort: (CANCEL as Conn).clientPort });
  d.client(captured, 5);
  assert.equal(d.log.counters['cancelsMapped'], 1);
  assert.deepEqual(parseUntyped(d.sentBytes()), { kind: 'cancel', pid: 777, secret: 0xabcdef });
  // after its session ended, the key is kept a while, then forgotten
  mod.endSession?.(sleeper.st, 100);
  const late = new ModuleDriver(mod);
  late.client(captured, 100 + CANCEL_GRACE_MS + 1);
  assert.deepEqual(
    late.log.dropped.map((x) => x.reason),
    ['cancelUnknownKey'],
  );
});

test('a CancelRequest for an unknown key is dropped as cancelUnknownKey', () => {
  const d = new ModuleDriver(pg());
  d.client(stream(CANCEL as Conn, true));
  assert.deepEqual(
    d.log.dropped.map((x) => x.reason),
    ['cancelUnknownKey'],
  );
  assert.equal(d.sentBytes().length, 0);
});

/** The client messages of `c` after its login (from its first message after the last 'p'). */
function afterLogin(c: Conn): Buffer[] {
  const cm = clientMessages(stream(c, true));
  const last = cm.map((m) => m[0]).lastIndexOf(0x70);
  return cm.slice(last + 1);
}

test('mid-stream: the stored login of the same client is inserted, the first message held until ready', () => {
  const mod = pg();
  replay(mod, NODE_PG as Conn); // a captured login of this client (stored)
  const d = new ModuleDriver(mod, { origin: 'midstream', clientPort: 50001 });
  const msgs = afterLogin(NODE_PG as Conn);
  d.client(msgs[0] as Buffer);
  const start = parseUntyped(d.log.sent[0] as Buffer);
  assert.equal(start.kind, 'startup');
  if (start.kind === 'startup') {
    assert.equal(start.params.get('user'), 'scram_u');
    assert.equal(start.params.get('database'), 'fx');
  }
  assert.equal(d.log.sent.length, 1, 'the first message waits for the login');
  const srv = new ScramServer('scrampw');
  d.target(srv.start());
  d.target(srv.first(d.log.sent[1] as Buffer));
  const fin = srv.final(d.log.sent[2] as Buffer);
  assert.ok(fin, 'the login with a derived nonce verifies');
  d.target(Buffer.concat([fin, loginTail({})]));
  for (const m of msgs.slice(1)) d.client(m);
  assert.equal(d.log.ended, null);
  assert.equal(d.log.counters['midstreamLogins'], 1);
  assert.deepEqual(Buffer.concat(d.log.sent.slice(3)), Buffer.concat(msgs));
});

function replay(mod: ProtocolModule<PgSession>, c: Conn): ModuleDriver<PgSession> {
  const d = new ModuleDriver(mod, { clientPort: c.clientPort });
  for (const s of c.segments) {
    if (s.fromClient) d.client(s.bytes);
    else {
      d.online(s.bytes);
      d.target(s.bytes);
    }
  }
  return d;
}

test('mid-stream with no stored login: noLogin; with --pg-login: that user (md5 target)', () => {
  const msgs = afterLogin(CLEAR as Conn);
  const a = new ModuleDriver(pg(), { origin: 'midstream' });
  a.client(msgs[0] as Buffer);
  assert.equal(a.log.ended, 'noLogin');
  const b = new ModuleDriver(pg({ 'pg-login': ['md5_u@fx'] }), { origin: 'midstream' });
  for (const m of msgs) b.client(m);
  const start = parseUntyped(b.log.sent[0] as Buffer);
  assert.ok(start.kind === 'startup' && start.params.get('user') === 'md5_u');
  b.target(authMsg(5, Buffer.from([1, 2, 3, 4])));
  b.target(loginTail({}));
  assert.equal(b.log.ended, null);
  assert.equal(b.log.counters['md5'], 1);
  assert.deepEqual(Buffer.concat(b.log.sent.slice(2)), Buffer.concat(msgs));
});

test('mid-stream pgbench -M prepared, nobody taught its statements: it waits LEARN_WAIT_MS once, then they are lost', () => {
  const c = PGBENCH as Conn;
  const msgs = afterLogin(c);
  // pick up after the first transaction (pgbench parses each statement on its first use)
  const lastParse = msgs.map((m) => m[0]).lastIndexOf(0x50);
  const seen = msgs.slice(msgs.findIndex((m, i) => i > lastParse && m[0] === 0x53) + 1);
  const types = seen.map((m) => String.fromCharCode(m[0] as number)).join('');
  assert.ok(!types.includes('P'), `no Parse after the pickup: ${types}`);
  assert.equal(seen[0]?.[0], 0x42, 'the pickup starts with a Bind');
  const d = new ModuleDriver(pg({ 'pg-login': ['scram_u@fx'] }), { origin: 'midstream' });
  for (const m of seen) d.client(m);
  assert.equal(d.log.sent.length, 0, 'the first Bind waits for a session to teach its statement');
  assert.equal(d.holdDeadline(), LEARN_WAIT_MS);
  d.tick(LEARN_WAIT_MS - 1);
  assert.equal(d.log.sent.length, 0);
  d.tick(LEARN_WAIT_MS);
  // the first batch is lost without a login (its Bind untaught, the rest its tail); the next Bind logs in
  const srv = new ScramServer('scrampw');
  d.target(srv.start(), 0, LEARN_WAIT_MS);
  d.target(srv.first(d.log.sent[1] as Buffer), 0, LEARN_WAIT_MS);
  d.target(Buffer.concat([srv.final(d.log.sent[2] as Buffer) as Buffer, loginTail({})]), 0, LEARN_WAIT_MS);
  assert.equal(d.log.ended, null);
  assert.equal(d.log.counters['learnWaits'], 1);
  const lost = d.log.dropped.filter((x) => x.reason !== '');
  const expectLost = seen.filter((m) => 'BDE'.includes(String.fromCharCode(m[0] as number))).length;
  assert.ok(expectLost > 0);
  assert.equal(lost.length, expectLost);
  assert.ok(lost.every((x) => ['unknownStatement', 'unknownPortal'].includes(x.reason)));
  assert.equal(d.log.counters['statementsLost'], expectLost);
  // Sync and Terminate still pass (but the first batch's, sent before any login)
  const passed = d.log.sent.slice(3).map((m) => String.fromCharCode(m[0] as number));
  assert.ok(
    passed.every((t) => 'SX'.includes(t)),
    passed.join(''),
  );
});

test('mid-stream with the Parse seen: nothing is lost', () => {
  const c = PGBENCH as Conn;
  const msgs = afterLogin(c);
  const d = new ModuleDriver(pg({ 'pg-login': ['scram_u@fx'] }), { origin: 'midstream' });
  d.client(msgs[0] as Buffer);
  d.target(authMsg(3));
  d.target(loginTail({}));
  for (const m of msgs.slice(1)) d.client(m);
  assert.equal(d.log.ended, null);
  assert.deepEqual(d.log.dropped, []);
  assert.deepEqual(Buffer.concat(d.log.sent.slice(2)), Buffer.concat(msgs));
});

test('mid-stream inside a message: unframed', () => {
  const msgs = afterLogin(SCRAM_PSQL as Conn);
  const d = new ModuleDriver(pg({ 'pg-login': ['scram_u@fx'] }), { origin: 'midstream' });
  d.client((msgs[0] as Buffer).subarray(7));
  assert.equal(d.log.ended, 'unframed');
});

test('the backend framer skips a message cut by the payload cap and keeps the framing', () => {
  const sm = serverMessages(stream(SCRAM_PSQL as Conn, false));
  const big = sm.find((m) => m.length > 30) as Buffer;
  const next = sm[sm.indexOf(big) + 1] as Buffer;
  const f = new BackendFramer();
  const got: string[] = [];
  f.feed(big.subarray(0, 10), big.length - 10, (m) => got.push(m.type));
  f.feed(next, 0, (m) => got.push(m.type));
  assert.deepEqual(got, [String.fromCharCode(next[0] as number)]);
  assert.equal(f.cut, 1);
  assert.equal(f.lost, false);
  // a hole across a message boundary loses the framing
  const g = new BackendFramer();
  g.feed(big.subarray(0, 10), big.length - 10 + 3, () => undefined);
  assert.equal(g.lost, true);
});

test('options: --pg-users file text, --pg-user wins, bad values name the option', () => {
  const m = definition.createModule({
    'pg-users': ['# roles\napp:filepw\nother:o:with:colons\n'],
    'pg-user': ['app:cli'],
    'pg-login': ['app@shop:5432'],
  }) as ProtocolModule<PgSession>;
  assert.equal(m.name, 'postgres');
  assert.throws(
    () => definition.createModule({ 'pg-user': ['nopassword'] }),
    /--pg-user nopassword: expected USER:PASSWORD/,
  );
  assert.throws(() => definition.createModule({ 'pg-users': ['ok:1\nbad line\n'] }), /--pg-users line 2/);
  assert.throws(() => definition.createModule({ 'pg-login': ['x@db'] }), /no password for x/);
  assert.throws(() => definition.createModule({ 'pg-user': ['x:y'], 'pg-login': ['x'] }), /USER@DB/);
  const names = definition.options.map((o) => o.name);
  assert.deepEqual(names, ['pg-user', 'pg-users', 'pg-login']);
  assert.equal(definition.options.find((o) => o.name === 'pg-users')?.readsFile, true);
});
