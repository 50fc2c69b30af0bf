/**
 * Named statements of sessions picked up mid-stream, on the real pgbench -M prepared capture
 * (test/fixtures/postgres): a captured session's Parse messages teach the module's catalog, a
 * mid-stream session's Bind of a statement it never Parsed gets that Parse inserted before it
 * and logs in as the role that taught it; a teacher that comes during the learning wait; two
 * texts under one name (ambiguous); the catalog's bounds; the hold limits of the login waits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModuleDriver } from '../driver';
import { definition } from '../../../../src/modules/postgres/index';
import { HOLD_LIMIT_MS, type PgSession } from '../../../../src/modules/postgres/module';
import { LEARN_WAIT_MS, ParseCatalog } from '../../../../src/modules/postgres/catalog';
import { buildStartup, buildTyped, cstring, parseUntyped } from '../../../../src/modules/postgres/wire';
import type { ProtocolModule } from '../../../../src/modules/api';
import { clientMessages, connections, stream, type Conn } from './capture';
import { ScramServer, loginTail } from './scram-server';

const CONNS = connections();
const PGBENCH = CONNS[8] as Conn;
const USERS = ['scram_u:scrampw', 'md5_u:md5pw', 'clear_u:clearpw'];

function pg(extra: Record<string, string[]> = {}): ProtocolModule<PgSession> {
  return definition.createModule({ 'pg-user': USERS, ...extra }) as ProtocolModule<PgSession>;
}

/** Replays a captured connection from its start (the target answering as production did): it teaches its Parses. */
function replay(mod: ProtocolModule<PgSession>, c: Conn, now = 0): ModuleDriver<PgSession> {
  const d = new ModuleDriver(mod, { clientPort: c.clientPort, now });
  for (const s of c.segments) {
    if (s.fromClient) d.client(s.bytes, now);
    else {
      d.online(s.bytes, 0, now);
      d.target(s.bytes, 0, now);
    }
  }
  return d;
}

/** pgbench's messages after its first transaction (no Parse among them), from a Bind on. */
function pickedUp(): Buffer[] {
  const cm = clientMessages(stream(PGBENCH, true));
  const msgs = cm.slice(cm.map((m) => m[0]).lastIndexOf(0x70) + 1);
  const lastParse = msgs.map((m) => m[0]).lastIndexOf(0x50);
  return msgs.slice(msgs.findIndex((m, i) => i > lastParse && m[0] === 0x53) + 1);
}

/** The statement name a Bind uses. */
function bindStatement(m: Buffer): string {
  const body = m.subarray(5);
  const portal = cstring(body, 0) as { next: number };
  return (cstring(body, portal.next) as { s: string }).s;
}

/** The Parse bodies a connection sent, by statement name. */
function parsesOf(c: Conn): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const m of clientMessages(stream(c, true)))
    if (m[0] === 0x50) out.set((cstring(m.subarray(5), 0) as { s: string }).s, Buffer.from(m.subarray(5)));
  return out;
}

/** Runs the SCRAM login the module started on `d` (sent[0] its StartupMessage). */
function scramLogin(d: ModuleDriver<PgSession>, now = 0): void {
  const srv = new ScramServer('scrampw');
  d.target(srv.start(), 0, now);
  d.target(srv.first(d.log.sent[1] as Buffer), 0, now);
  d.target(Buffer.concat([srv.final(d.log.sent[2] as Buffer) as Buffer, loginTail({})]), 0, now);
}

test('a captured session teaches its Parses: a mid-stream Bind gets the Parse inserted and logs in as the teacher', () => {
  const mod = pg({ 'pg-login': ['md5_u@fx'] });
  const teacher = replay(mod, PGBENCH);
  assert.ok((teacher.log.counters['statementsLearned'] ?? 0) > 0);
  const parses = parsesOf(PGBENCH);
  // another pgbench connection of another client address, open before tcpcopy started
  const d = new ModuleDriver(mod, { origin: 'midstream', clientIp: '198.18.0.77', clientPort: 50002, now: 10 });
  const seen = pickedUp();
  d.client(seen[0] as Buffer, 10);
  const start = parseUntyped(d.log.sent[0] as Buffer);
  assert.ok(start.kind === 'startup');
  assert.equal(start.params.get('user'), 'scram_u', 'the role that taught the statement, not --pg-login');
  assert.equal(start.params.get('database'), 'fx');
  assert.equal(d.log.counters['midstreamRoleLearned'], 1);
  scramLogin(d, 10);
  for (const m of seen.slice(1)) d.client(m, 10);
  assert.equal(d.log.ended, null);
  assert.deepEqual(d.log.dropped, [], 'nothing lost');
  // the stream after the login: each statement's first Bind preceded by its captured Parse
  const expect: Buffer[] = [];
  const done = new Set<string>();
  for (const m of seen) {
    if (m[0] === 0x42 && !done.has(bindStatement(m))) {
      const name = bindStatement(m);
      done.add(name);
      expect.push(buildTyped('P', parses.get(name) as Buffer));
    }
    expect.push(m);
  }
  assert.deepEqual(Buffer.concat(d.log.sent.slice(3)), Buffer.concat(expect));
  assert.equal(d.log.counters['statementsReprepared'], done.size);
  assert.equal(d.log.counters['learnWaits'], undefined, 'no wait: it was taught');
});

test('a teacher that comes during the learning wait: the held Bind goes on at once (re-offered on production replies)', () => {
  const mod = pg({ 'pg-login': ['md5_u@fx'] });
  const d = new ModuleDriver(mod, { origin: 'midstream', clientIp: '198.18.0.77', clientPort: 50002 });
  const seen = pickedUp();
  for (const m of seen) d.client(m, 0);
  assert.equal(d.log.sent.length, 0);
  assert.equal(d.log.counters['learnWaits'], 1);
  assert.equal(d.holdDeadline(), LEARN_WAIT_MS);
  replay(mod, PGBENCH, 1000); // a new pgbench connection, captured from its start
  d.online(Buffer.alloc(0), 0, 1200); // production's replies to the mid-stream session go on
  const start = parseUntyped(d.log.sent[0] as Buffer);
  assert.ok(start.kind === 'startup' && start.params.get('user') === 'scram_u');
  scramLogin(d, 1200);
  assert.equal(d.log.ended, null);
  assert.deepEqual(d.log.dropped, []);
  assert.ok((d.log.counters['statementsReprepared'] ?? 0) > 0);
});

test('two texts under one name are ambiguous: the Bind is lost with its own reason', () => {
  const mod = pg({ 'pg-login': ['scram_u@fx'] });
  const seen = pickedUp();
  const name = bindStatement(seen[0] as Buffer);
  // two captured sessions (same role and database) that Parse the name with different texts
  for (const [port, text] of [
    [41000, 'SELECT 1'],
    [41001, 'SELECT 2'],
  ] as const) {
    const t = new ModuleDriver(mod, { clientPort: port });
    t.client(
      buildStartup(
        new Map([
          ['user', 'clear_u'],
          ['database', 'fx'],
        ]),
      ),
    );
    t.target(loginTail({}));
    t.client(buildTyped('P', Buffer.from(`${name}\0${text}\0\0\0`, 'latin1')));
  }
  const d = new ModuleDriver(mod, { origin: 'midstream', clientIp: '198.18.0.77' });
  d.client(seen[0] as Buffer);
  const start = parseUntyped(d.log.sent[0] as Buffer);
  assert.ok(start.kind === 'startup' && start.params.get('user') === 'clear_u', 'one role taught it (twice)');
  d.target(loginTail({}));
  assert.deepEqual(
    d.log.dropped.map((x) => x.reason),
    ['ambiguousStatement'],
  );
});

test('the catalog is bounded in names and bytes and forgets by the time given', () => {
  const c = new ParseCatalog(3, 100, 1000);
  const login = new Map([['user', 'u']]);
  for (let i = 0; i < 5; i++) c.learn('s', 'db', `S_${i}`, Buffer.from(`S_${i}\0SELECT ${i}\0\0\0`), login, 0);
  assert.equal(c.size, 3);
  assert.equal(c.find('s', 'db', 'S_0', 0).kind, 'none', 'the oldest forgotten');
  assert.equal(c.find('s', 'db', 'S_4', 0).kind, 'one');
  assert.equal(c.find('s', 'other', 'S_4', 0).kind, 'none', 'per database');
  assert.equal(c.learn('s', 'db', 'big', Buffer.alloc(200, 1), login, 0), true);
  assert.ok(c.size <= 3);
  assert.equal(c.find('s', 'db', 'S_4', 1001).kind, 'none', 'expired');
  assert.equal(c.teacher('s', 'S_4', 1001), null);
  // unnamed statements are never learned (they are per batch)
  assert.equal(c.learn('s', 'db', '', Buffer.from('\0SELECT 1\0\0\0'), login, 2000), false);
});

test('hold limit: a login the target never finishes ends the session as loginStalled (manual clock)', () => {
  const mod = pg();
  assert.equal(mod.holdLimitMs, HOLD_LIMIT_MS);
  const d = new ModuleDriver(mod, { clientPort: 41002 });
  d.client(
    buildStartup(
      new Map([
        ['user', 'clear_u'],
        ['database', 'fx'],
      ]),
    ),
    0,
  );
  d.client(buildTyped('Q', Buffer.from('SELECT 1\0')), 5); // the client's first query, held for the login
  assert.equal(d.holdDeadline(), 5 + HOLD_LIMIT_MS);
  d.tick(4 + HOLD_LIMIT_MS);
  assert.equal(d.log.ended, null);
  d.tick(5 + HOLD_LIMIT_MS);
  assert.equal(d.log.ended, 'loginStalled');
});

test("--compare bytes: the ParseComplete of each Parse the module inserted is left out of the target's reply (comparableReply), nothing else", () => {
  const mod = pg({ 'pg-login': ['md5_u@fx'] });
  replay(mod, PGBENCH);
  const d = new ModuleDriver(mod, { origin: 'midstream', clientIp: '198.18.0.77', clientPort: 50002, now: 10 });
  const seen = pickedUp();
  d.client(seen[0] as Buffer, 10);
  scramLogin(d, 10);
  for (const m of seen.slice(1)) d.client(m, 10);
  const inserted = d.log.counters['statementsReprepared'] ?? 0;
  assert.ok(inserted >= 2, `Parses inserted: ${inserted}`);
  assert.ok(mod.comparableReply !== undefined);
  const msg = (t: string, body = ''): Buffer => buildTyped(t, Buffer.from(body));
  // production's reply to a batch Bind/Execute/Sync; the target's has the inserted Parse's ParseComplete first
  const online = Buffer.concat([msg('2'), msg('D', '\0\x01\0\0\0\x013'), msg('C', 'SELECT 1\0'), msg('Z', 'T')]);
  const target = Buffer.concat([msg('1'), online]);
  assert.deepEqual(mod.comparableReply(d.st, online, target), online, 'the same once the insert answer is out');
  // a real difference stays: another row value, and the ParseComplete still goes
  const other = Buffer.concat([
    msg('1'),
    msg('2'),
    msg('D', '\0\x01\0\0\0\x014'),
    msg('C', 'SELECT 1\0'),
    msg('Z', 'T'),
  ]);
  assert.deepEqual(mod.comparableReply(d.st, online, other), other.subarray(5));
  // not whole messages: as received (and nothing accounted for)
  const cut = target.subarray(0, 7);
  assert.deepEqual(mod.comparableReply(d.st, online, cut), cut);
  // production's own ParseComplete (the client's Parse) is matched, not taken for the insert's
  const own = Buffer.concat([msg('1'), online]);
  for (let k = 2; k < inserted; k++) mod.comparableReply(d.st, online, target); // use up the rest
  assert.deepEqual(mod.comparableReply(d.st, own, own), own, 'as received: no extra ParseComplete');
  // every inserted ParseComplete accounted for: a further extra one is the target's own difference
  assert.deepEqual(mod.comparableReply(d.st, online, target), target, 'more than were inserted: as received');
});
