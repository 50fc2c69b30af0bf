/**
 * The redis module on real redis-server 7.0 bytes (test/fixtures/redis): production's AUTH and
 * HELLO AUTH rewritten to the target's passwords give exactly the bytes a real client sent to
 * the target; the target's replies (captured from it) checked; sessions that sent no AUTH get
 * one inserted (and their stored SELECT), their first command held until the target answered;
 * refusals end the session with a reason; the options.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModuleDriver } from '../driver';
import { definition } from '../../../../src/modules/redis/index';
import { HOLD_LIMIT_MS, type RedisSession } from '../../../../src/modules/redis/module';
import type { ProtocolModule } from '../../../../src/modules/api';
import { buildCommand, commandLength } from '../../../../src/modules/redis/resp';
import { TcpcopyError } from '../../../../src/core/errors';
import { connections, segments, stream, TARGET_PORT, type Conn } from './capture';

const PROD = connections();
const TARGET = connections(TARGET_PORT);
const [AUTH_SET, APP_SELECT, WRONG, HELLO, , BENCH_SET] = PROD;
const [T_AUTH_SET, T_HELLO, T_NOAUTH] = TARGET;
const TARGET_AUTH = ['targetpw', 'app:apptarget'];

function redis(auth: string[] = TARGET_AUTH, extra: Record<string, string[]> = {}): ProtocolModule<RedisSession> {
  return definition.createModule({ 'redis-auth': auth, ...extra }) as ProtocolModule<RedisSession>;
}

function commands(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let o = 0; o < b.length;) {
    const n = commandLength(b, o, b.length - o);
    assert.ok(n > 0);
    out.push(b.subarray(o, o + n));
    o += n;
  }
  return out;
}

/** Replays a captured production connection, segment by segment, to a target answering `replies` (one per sent command). */
function replay(mod: ProtocolModule<RedisSession>, c: Conn, replies: Buffer[], start = {}): ModuleDriver<RedisSession> {
  const d = new ModuleDriver(mod, { clientPort: c.clientPort, serverPort: 56379, targetPort: 56380, ...start });
  let answered = 0;
  const answer = (): void => {
    const due = commands(d.sentBytes()).length;
    while (answered < due && answered < replies.length) d.target(replies[answered++] as Buffer);
  };
  for (const seg of segments(c, true)) {
    d.client(seg);
    answer();
  }
  answer();
  return d;
}

/** The target's replies of a captured target connection, one per command. */
function repliesOf(c: Conn): Buffer[] {
  const b = stream(c, false);
  const out: Buffer[] = [];
  // the fixture's target replies here are single lines or the HELLO map / a bulk: cut at segment bounds
  for (const s of segments(c, false)) out.push(s);
  assert.equal(Buffer.concat(out).length, b.length);
  return out;
}

test("AUTH password rewritten to the target's: the bytes redis-cli -a targetpw sent the target", () => {
  const d = replay(redis(), AUTH_SET as Conn, repliesOf(T_AUTH_SET as Conn));
  assert.deepEqual(d.sentBytes(), stream(T_AUTH_SET as Conn, true));
  assert.equal(d.log.ended, null);
  assert.deepEqual(d.log.counters, { authRewritten: 1, authOk: 1 });
});

test('HELLO 3 AUTH app: the whole session equals the real client to the target (SETNAME, inline PING, 3000-byte value kept)', () => {
  const d = replay(redis(), HELLO as Conn, repliesOf(T_HELLO as Conn));
  assert.deepEqual(d.sentBytes(), stream(T_HELLO as Conn, true));
  assert.deepEqual(d.log.counters, { authRewritten: 1, authOk: 1 });
  assert.equal(d.log.ended, null);
});

test('AUTH user password, then SELECT: rewritten; pipelined redis-benchmark commands framed one by one and kept', () => {
  const d = replay(redis(), APP_SELECT as Conn, [
    Buffer.from('+OK\r\n'),
    Buffer.from('+OK\r\n'),
    Buffer.from('$-1\r\n'),
  ]);
  const sent = commands(d.sentBytes());
  assert.deepEqual(sent[0], buildCommand(['AUTH', 'app', 'apptarget']));
  assert.deepEqual(
    Buffer.concat(sent.slice(1)),
    commands(stream(APP_SELECT as Conn, true))
      .slice(1)
      .reduce((a, b) => Buffer.concat([a, b])),
  );
  const b = replay(redis(), BENCH_SET as Conn, [Buffer.from('+OK\r\n'.repeat(9))]);
  const captured = commands(stream(BENCH_SET as Conn, true));
  assert.equal(captured.length, 9);
  assert.deepEqual(commands(b.sentBytes()).slice(1), captured.slice(1));
  assert.deepEqual(commands(b.sentBytes())[0], buildCommand(['AUTH', 'targetpw']));
});

test('the same password, or a user without --redis-auth: passed as captured; a refusal of it is counted, not fatal', () => {
  const same = replay(redis(['prodpw']), AUTH_SET as Conn, [Buffer.from('+OK\r\n'), Buffer.from('+OK\r\n')]);
  assert.deepEqual(same.sentBytes(), stream(AUTH_SET as Conn, true));
  assert.deepEqual(same.log.counters, { authAsCaptured: 1, authOk: 1 });
  // AUTH wrongpw with only app's password known: as captured; the real WRONGPASS reply counted
  const w = replay(redis(['app:apptarget']), WRONG as Conn, segments(WRONG as Conn, false));
  assert.deepEqual(w.sentBytes(), stream(WRONG as Conn, true));
  assert.deepEqual(w.log.counters, { authAsCaptured: 1, authRefusedAsCaptured: 1 });
  assert.equal(w.log.ended, null);
});

test('a refused rewritten AUTH ends the session (authRefused): its commands are not replayed into NOAUTH', () => {
  const wrongpass = segments(WRONG as Conn, false)[0] as Buffer;
  assert.match(wrongpass.toString(), /^-WRONGPASS/);
  const mod = redis(['badpw']);
  const d = new ModuleDriver(mod);
  const [auth, set] = commands(stream(AUTH_SET as Conn, true)) as [Buffer, Buffer];
  d.client(auth);
  d.target(wrongpass);
  assert.equal(d.log.ended, 'authRefused');
  d.client(set);
  assert.deepEqual(d.sentBytes(), buildCommand(['AUTH', 'badpw']));
});

test("the target's default user needs no password: a one-argument AUTH is dropped (not needed)", () => {
  const d = replay(redis(['']), AUTH_SET as Conn, [Buffer.from('+OK\r\n')]);
  assert.deepEqual(d.sentBytes(), commands(stream(AUTH_SET as Conn, true))[1]);
  assert.deepEqual(
    d.log.dropped.map((x) => x.reason),
    [''],
  );
  assert.deepEqual(d.log.counters, { authDropped: 1 });
});

test('picked up mid-stream: AUTH (and the SELECT of the client’s stored session) inserted, the first command held until +OK', () => {
  const mod = redis();
  // a captured session of client 198.18.0.10 logs in as app and selects db 3 (the HELLO fixture)
  replay(mod, HELLO as Conn, repliesOf(T_HELLO as Conn));
  const d = new ModuleDriver(mod, { origin: 'midstream', clientPort: 50001 });
  const [, set, get] = commands(stream(AUTH_SET as Conn, true)) as [Buffer, Buffer, Buffer?];
  d.client(set);
  assert.deepEqual(
    d.sentBytes(),
    Buffer.concat([buildCommand(['AUTH', 'app', 'apptarget']), buildCommand(['SELECT', '3'])]),
  );
  d.target(Buffer.from('+OK\r\n'));
  assert.equal(d.log.sent.length, 2, 'still held: the SELECT is not answered yet');
  d.target(Buffer.from('+OK\r\n'));
  assert.deepEqual(d.log.sent[2], set);
  assert.equal(get, undefined);
  assert.deepEqual(d.log.counters, { authInserted: 1, selectInserted: 1, authOk: 1 });
  // another client: the default user's password, no SELECT
  const o = new ModuleDriver(mod, { origin: 'midstream', clientIp: '198.18.0.11' });
  o.client(set);
  assert.deepEqual(o.sentBytes(), buildCommand(['AUTH', 'targetpw']));
  o.target(segments(T_NOAUTH as Conn, false)[0] as Buffer); // refused (the real NOAUTH error line)
  assert.equal(o.log.ended, 'authRefused');
});

test('production without a password: sessions from their SYN get an AUTH too; its refusal is named', () => {
  const d = new ModuleDriver(redis(['app:apptarget']));
  const ping = commands(stream(T_NOAUTH as Conn, true))[0] as Buffer;
  d.client(ping);
  d.target(Buffer.from('+OK\r\n'));
  assert.deepEqual(d.sentBytes(), Buffer.concat([buildCommand(['AUTH', 'app', 'apptarget']), ping]));
  // several users, none stored for the client, no --redis-login: no login can be chosen
  const n = new ModuleDriver(redis(['app:a', 'ops:b']), { origin: 'midstream' });
  n.client(ping);
  assert.equal(n.log.ended, 'noLogin');
  const l = new ModuleDriver(redis(['app:a', 'ops:b'], { 'redis-login': ['ops'] }), { origin: 'midstream' });
  l.client(ping);
  assert.deepEqual(l.sentBytes(), buildCommand(['AUTH', 'ops', 'b']));
});

test('framing lost during the login (payload cap cut a header): the held command goes on, counted', () => {
  const d = new ModuleDriver(redis(), { origin: 'midstream' });
  const set = commands(stream(AUTH_SET as Conn, true))[1] as Buffer;
  d.client(set);
  d.target(Buffer.alloc(0), 200); // a reply sent without payload
  assert.deepEqual(d.log.sent[1], set);
  assert.deepEqual(d.log.counters, { authInserted: 1, replyFramingLost: 1 });
  // bytes that are not commands at a mid-stream start: the session ends (a login was needed)
  const g = new ModuleDriver(redis(), { origin: 'midstream' });
  g.client(Buffer.from('$3000\r\nxxxx'));
  g.client(Buffer.from('xx\r\n'));
  assert.equal(g.log.ended, 'unframed');
});

test('without --redis-auth nothing is rewritten or inserted and no reply payload is asked for', () => {
  const mod = definition.createModule({}) as ProtocolModule<RedisSession>;
  assert.equal(mod.wantsTargetPayload, false);
  const d = new ModuleDriver(mod, { origin: 'midstream' });
  d.client(stream(HELLO as Conn, true));
  assert.deepEqual(d.sentBytes(), stream(HELLO as Conn, true));
  assert.deepEqual(d.log.counters, { authAsCaptured: 1 });
});

test('options: USER:PASSWORD or PASSWORD, one per user, --redis-login needs a password', () => {
  const err = (o: Record<string, string[]>): string => {
    try {
      definition.createModule(o);
    } catch (e) {
      assert.ok(e instanceof TcpcopyError);
      return `${e.code}: ${e.message}`;
    }
    return 'no error';
  };
  assert.match(err({ 'redis-auth': [':x'] }), /ERR_BAD_OPTION: --redis-auth :x: expected PASSWORD or USER:PASSWORD/);
  assert.match(err({ 'redis-auth': ['a', 'default:b'] }), /one value per user \(default was given twice\)/);
  assert.match(
    err({ 'redis-auth': ['a'], 'redis-login': ['ops'] }),
    /--redis-login ops: no password for ops; add --redis-auth ops:PASSWORD/,
  );
  assert.equal(err({ 'redis-auth': ['default:pa:ss', 'ops:x:y'] }), 'no error');
});

test('hold limit: an inserted AUTH the target never answers ends the session as loginStalled (manual clock)', () => {
  const mod = redis();
  assert.equal(mod.holdLimitMs, HOLD_LIMIT_MS);
  const d = new ModuleDriver(mod, { origin: 'midstream' });
  d.client(buildCommand(['GET', 'k']), 100);
  assert.deepEqual(d.log.counters, { authInserted: 1 });
  assert.equal(d.holdDeadline(), 100 + HOLD_LIMIT_MS);
  d.tick(99 + HOLD_LIMIT_MS);
  assert.equal(d.log.ended, null);
  d.tick(100 + HOLD_LIMIT_MS);
  assert.equal(d.log.ended, 'loginStalled');
});
