/**
 * Sessions picked up mid-stream: the module logs in for them before their first command, as
 * the user of an earlier captured login of the same client (or --mysql-login), and options.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connections, packets } from './capture';
import { driver, mysqlModule, regreet, replay, scramble, sentPackets, wire, USERS } from './script';
import { encodePacket, type MysqlPacket } from '../../../../src/modules/mysql/packet';
import { HOLD_LIMIT_MS } from '../../../../src/modules/mysql/module';
import { isParseError, nativePasswordAnswer, parseHandshakeResponse } from '../../../../src/modules/mysql/handshake';
import { LoginTable, configuredLogin } from '../../../../src/modules/mysql/logins';
import { parseMysqlOptions } from '../../../../src/modules/mysql/options';
import { definition } from '../../../../src/modules/mysql/index';
import { TcpcopyError } from '../../../../src/core/errors';

const NODE = connections()[3] as ReturnType<typeof connections>[number];
const GREETING = (packets(NODE, 1)[0] as MysqlPacket).payload;
const OK = encodePacket(2, Buffer.from('00000002000000', 'hex'));
const query = (sql: string): Buffer => encodePacket(0, Buffer.from(`\x03${sql}`, 'latin1'));
/** The mysql2 connection's commands after its login (from its first PREPARE on). */
const LATER = packets(NODE).filter((p) => p.fromClient && p.seq === 0);

test("mid-stream: the login of an earlier session of the same client is inserted before the first command, which waits for the target's OK", () => {
  const mod = mysqlModule();
  replay(driver(mod, { clientPort: 40001 }), NODE, scramble(20)); // stores u1@fx for 198.18.0.10 -> :3306
  const d = driver(mod, { origin: 'midstream', clientPort: 40002 });
  const s = scramble(21);
  d.target(wire({ seq: 0, payload: regreet(GREETING, s) }));
  // an EXECUTE of statement 9: prepared before the capture, and no captured session had an id 9
  const execute = Buffer.from((LATER.find((p) => p.payload[0] === 0x17) as MysqlPacket).payload);
  execute.writeUInt32LE(9, 1);
  d.client(wire({ seq: 0, payload: execute }));
  d.client(query('SELECT 1'));
  const sent = sentPackets(d);
  assert.equal(sent.length, 1, 'the login only');
  const r = parseHandshakeResponse((sent[0] as MysqlPacket).payload);
  assert.ok(!isParseError(r));
  assert.equal(sent[0]?.seq, 1);
  assert.equal(r.user, 'u2', 'the earlier session changed user to u2: its latest login');
  assert.equal(r.database, 'fx');
  assert.deepEqual(r.authResponse, nativePasswordAnswer('p2other', s));
  d.target(OK);
  // the EXECUTE's PREPARE was before the capture: held while another session might teach it
  // (LEARN_WAIT_MS), then lost with its reason; the query goes
  assert.equal(d.log.dropped.length, 0, 'held, waiting to learn');
  assert.equal(d.log.counters.learnWaits, 1);
  d.tick(3000); // a quiet session: the engine re-offers it when the wait is over (expired)
  assert.deepEqual(
    d.log.dropped.map((x) => x.reason),
    ['unpreparedStatement'],
  );
  assert.deepEqual(d.log.sent.at(-1), query('SELECT 1'));
  assert.equal(d.log.counters.midstreamLogins, 1);
});

test('mid-stream: the inserted login never answered ends the session at the hold limit as loginUnanswered', () => {
  const mod = mysqlModule({ 'mysql-user': USERS, 'mysql-login': ['u1@fx'] });
  const d = driver(mod, { origin: 'midstream', clientPort: 40003 });
  d.client(query('SELECT 1'), 10);
  assert.equal(sentPackets(d).length, 0, 'held: no greeting yet');
  d.target(wire({ seq: 0, payload: regreet(GREETING, scramble(22)) }), 0, 20);
  assert.equal(sentPackets(d).length, 1, 'the login inserted');
  d.tick(10 + HOLD_LIMIT_MS - 1);
  assert.equal(d.log.ended, null);
  d.tick(10 + HOLD_LIMIT_MS);
  assert.equal(d.log.ended, 'loginUnanswered');
  assert.equal(d.log.counters.midstreamLogins, undefined);
});

test('mid-stream: no stored login -> --mysql-login (by port first); none -> noLogin; a refused login -> loginRefused', () => {
  const mod = mysqlModule({ 'mysql-user': USERS, 'mysql-login': ['u1@fx:3307', 'u2@fx'] });
  const d = driver(mod, { origin: 'midstream', clientIp: '198.18.0.77' });
  d.target(wire({ seq: 0, payload: regreet(GREETING, scramble(22)) }));
  d.client(query('SELECT 2'));
  const r = parseHandshakeResponse((sentPackets(d)[0] as MysqlPacket).payload);
  assert.ok(!isParseError(r));
  assert.equal(r.user, 'u2', 'the login for any port (the other is for :3307)');
  assert.equal(r.database, 'fx');
  assert.deepEqual(r.authResponse, nativePasswordAnswer('p2other', scramble(22)));
  const d3307 = driver(mod, { origin: 'midstream', clientIp: '198.18.0.77', serverPort: 3307 });
  d3307.target(wire({ seq: 0, payload: regreet(GREETING, scramble(23)) }));
  d3307.client(query('SELECT 3'));
  assert.equal((parseHandshakeResponse((sentPackets(d3307)[0] as MysqlPacket).payload) as { user: string }).user, 'u1');
  d3307.target(encodePacket(2, Buffer.from("\xff\x15\x04#28000Access denied for user 'u1'", 'latin1')));
  assert.equal(d3307.log.ended, 'loginRefused');
  const none = driver(mysqlModule(), { origin: 'midstream', clientIp: '198.18.0.78' });
  none.target(wire({ seq: 0, payload: regreet(GREETING, scramble(24)) }));
  none.client(query('SELECT 4'));
  assert.equal(none.log.ended, 'noLogin');
  assert.equal(none.log.sent.length, 0);
});

test('mid-stream with the login captured (only the SYN missed): redone like a captured one', () => {
  const d = driver(mysqlModule(), { origin: 'midstream' });
  replay(d, NODE, scramble(25), { limit: 12 });
  assert.equal(d.log.counters.loginsRedone, 1);
  assert.equal(d.log.counters.midstreamLogins, undefined);
});

test('the login table: bounded, oldest first; expired by now; the connection before the client', () => {
  const t = new LoginTable([{ user: 'cfg', database: null, port: null }], 2, 1000);
  const k = (ip: string, port = 1): { clientIp: string; clientPort: number; serverIp: string; serverPort: number } => ({
    clientIp: ip,
    clientPort: port,
    serverIp: '198.18.1.1',
    serverPort: 3306,
  });
  const l = (user: string) => ({ ...configuredLogin({ user, database: null, port: null }) });
  t.store(k('198.18.0.1'), l('a'), 0);
  t.store(k('198.18.0.2'), l('b'), 10);
  t.store(k('198.18.0.3'), l('c'), 20);
  assert.equal(t.find(k('198.18.0.1', 9), 30)?.login.user, 'cfg', 'forgotten: beyond the bound');
  assert.equal(t.find(k('198.18.0.2', 9), 30)?.source, 'client');
  assert.equal(t.find(k('198.18.0.3', 1), 30)?.source, 'connection');
  assert.equal(t.find(k('198.18.0.3', 9), 1021)?.source, 'configured', 'expired');
});

test('options: users from --mysql-user and a file (USER:PASSWORD and plugin.conf lines); clear errors', () => {
  const c = parseMysqlOptions({
    'mysql-users': ['# app users\nu1:old\nuser u2@p2other, u3@x;\n\n  u4:with:colons  \n'],
    'mysql-user': ['u1:p1secret'],
    'mysql-login': ['u1', 'u2@fx:3307'],
  });
  assert.deepEqual(
    [...c.users],
    [
      ['u1', 'p1secret'],
      ['u2', 'p2other'],
      ['u3', 'x'],
      ['u4', 'with:colons'],
    ],
  );
  assert.deepEqual(c.logins, [
    { user: 'u1', database: null, port: null },
    { user: 'u2', database: 'fx', port: 3307 },
  ]);
  const bad = (opts: Record<string, string[]>, re: RegExp): void =>
    assert.throws(
      () => definition.createModule(opts),
      (e: unknown) => e instanceof TcpcopyError && e.code === 'ERR_BAD_OPTION' && re.test(e.message),
    );
  bad({ 'mysql-user': ['nopassword'] }, /^--mysql-user nopassword: expected USER:PASSWORD/);
  bad({ 'mysql-users': ['u1:a\nbroken\n'] }, /^--mysql-users line 2 broken: expected USER:PASSWORD/);
  bad({ 'mysql-users': ['user a@b,c;'] }, /--mysql-users line 1: 'c': expected USER@PASSWORD/);
  bad({ 'mysql-user': ['u1:a'], 'mysql-login': ['u9@db'] }, /^--mysql-login u9@db: no password for user u9/);
  bad({ 'mysql-user': ['u1:a'], 'mysql-login': ['u1@'] }, /^--mysql-login u1@: expected USER\[@DB\]\[:PORT\]/);
  bad({ 'mysql-user': ['u1:a'], 'mysql-login': ['u1:70000'] }, /port 70000 is not 1..65535/);
  bad({ 'mysql-pass': ['x'] }, /--mysql-pass: not an option of the mysql module/);
  assert.deepEqual(
    definition.options.map((o) => [o.name, o.repeatable, o.readsFile ?? false]),
    [
      ['mysql-user', true, false],
      ['mysql-users', false, true],
      ['mysql-login', true, false],
    ],
  );
});
