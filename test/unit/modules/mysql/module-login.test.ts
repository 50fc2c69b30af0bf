/**
 * The MySQL module's logins, as packet scripts from the real MariaDB 10.11 capture
 * (test/fixtures/mysql): the module sees the client's captured bytes and a target whose
 * greeting has another scramble; it must send a login answering that scramble.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connections, packets } from './capture';
import { PASSWORDS, driver, mysqlModule, regreet, replay, scramble, sentPackets, wire } from './script';
import { encodePacket, type MysqlPacket } from '../../../../src/modules/mysql/packet';
import { HOLD_LIMIT_MS } from '../../../../src/modules/mysql/module';
import {
  CLIENT_SSL,
  NATIVE_PASSWORD,
  isParseError,
  nativePasswordAnswer,
  parseHandshakeResponse,
  parseChangeUser,
  parseAuthSwitch,
} from '../../../../src/modules/mysql/handshake';

const [CLI, SWITCH, COMPRESSED, NODE] = connections() as [
  ReturnType<typeof connections>[number],
  ReturnType<typeof connections>[number],
  ReturnType<typeof connections>[number],
  ReturnType<typeof connections>[number],
];

/** A packet without its direction tag. */
const bare = (p: MysqlPacket): MysqlPacket => ({ seq: p.seq, payload: p.payload });

function login(p: MysqlPacket): ReturnType<typeof parseHandshakeResponse> {
  return parseHandshakeResponse(p.payload);
}

test('native login: held until the greeting, rebuilt for the target scramble; the query waits for the OK', () => {
  const ps = packets(CLI);
  const [greet, resp, ok, query] = ps as unknown as [MysqlPacket, MysqlPacket, MysqlPacket, MysqlPacket];
  assert.equal(query.payload[0], 0x03);
  const d = driver();
  d.client(wire(resp));
  assert.equal(d.log.sent.length, 0, 'held: the target has not greeted');
  const s = scramble(1);
  d.target(wire({ seq: 0, payload: regreet(greet.payload, s) }));
  const sent = sentPackets(d);
  assert.equal(sent.length, 1);
  const r = login(sent[0] as MysqlPacket);
  assert.ok(!isParseError(r));
  assert.equal(sent[0]?.seq, 1);
  assert.equal(r.user, 'u1');
  assert.equal(r.database, 'fx');
  assert.deepEqual(r.authResponse, nativePasswordAnswer('p1secret', s));
  assert.notDeepEqual(r.authResponse, (login(resp) as { authResponse: Buffer }).authResponse);
  d.client(wire(query));
  assert.equal(d.log.sent.length, 1, 'the query waits for the login OK');
  d.target(wire(ok));
  assert.deepEqual(d.log.sent[1], wire(query));
  assert.equal(d.log.counters.loginsRedone, 1);
  assert.equal(d.log.ended, null);
});

test('the client asked for client_ed25519 and production switched: the target is asked for mysql_native_password and does not switch', () => {
  const ps = packets(SWITCH);
  // greeting, response (ed25519, empty answer), switch request, the client's switch answer, OK, query
  assert.deepEqual(
    ps.slice(0, 6).map((p) => [p.fromClient, p.seq]),
    [
      [false, 0],
      [true, 1],
      [false, 2],
      [true, 3],
      [false, 4],
      [true, 0],
    ],
  );
  const d = driver();
  const s = scramble(2);
  d.target(wire({ seq: 0, payload: regreet((ps[0] as MysqlPacket).payload, s) }));
  d.client(wire(ps[1] as MysqlPacket));
  const r = login(sentPackets(d)[0] as MysqlPacket);
  assert.ok(!isParseError(r));
  assert.equal(r.authPlugin, NATIVE_PASSWORD);
  assert.deepEqual(r.authResponse, nativePasswordAnswer('p1secret', s));
  d.client(wire(ps[3] as MysqlPacket)); // production's own switch answer
  assert.equal(d.log.dropped.length, 1);
  assert.equal(d.log.dropped[0]?.reason, '');
  d.client(wire(ps[5] as MysqlPacket));
  d.target(encodePacket(2, Buffer.from('00000002000000', 'hex')));
  assert.deepEqual(d.log.sent.at(-1), wire(ps[5] as MysqlPacket));
  assert.deepEqual(d.log.counters, { authAnswersDropped: 1, loginsRedone: 1 });
});

test('the target switches too: the module answers its AuthSwitchRequest with its own scramble, then the query goes', () => {
  const ps = packets(SWITCH);
  const d = driver();
  d.target(wire({ seq: 0, payload: regreet((ps[0] as MysqlPacket).payload, scramble(3)) }));
  replayClient(d, ps.slice(1, 2));
  const sw = scramble(4);
  d.target(
    encodePacket(2, Buffer.concat([Buffer.from('\xfemysql_native_password\0', 'latin1'), sw, Buffer.from([0])])),
  );
  const sent = sentPackets(d);
  assert.equal(sent.length, 2);
  assert.deepEqual(sent[1], { seq: 3, payload: nativePasswordAnswer('p1secret', sw) });
  replayClient(d, [ps[3] as MysqlPacket, ps[5] as MysqlPacket]);
  assert.equal(sentPackets(d).length, 2, 'the query waits');
  d.target(encodePacket(4, Buffer.from('00000002000000', 'hex')));
  assert.deepEqual(sentPackets(d)[2]?.payload, (ps[5] as MysqlPacket).payload);
  assert.deepEqual(d.log.counters, { authSwitches: 1, authAnswersDropped: 1, loginsRedone: 1 });
});

test("production switched, the target did not and accepted the login before the client's switch answer was captured: the late answer is not sent", () => {
  const ps = packets(SWITCH);
  const d = driver();
  d.target(wire({ seq: 0, payload: regreet((ps[0] as MysqlPacket).payload, scramble(8)) }));
  d.client(wire(ps[1] as MysqlPacket));
  // the target's OK (seq 2: no switch) comes first
  d.target(encodePacket(2, Buffer.from('00000002000000', 'hex')));
  assert.equal(d.log.counters.loginsRedone, 1);
  // then the client's answer to production's AuthSwitchRequest (seq 3) and the query
  replayClient(d, [ps[3] as MysqlPacket, ps[5] as MysqlPacket]);
  const sent = sentPackets(d);
  assert.equal(
    sent.length,
    2,
    'the rebuilt login and the query: the late answer (before: passed, a seq-3 packet to a target waiting for a command) is dropped',
  );
  assert.deepEqual(sent[1], bare(ps[5] as MysqlPacket));
  assert.deepEqual(d.log.dropped, [{ msg: wire(ps[3] as MysqlPacket), reason: '' }]);
  assert.deepEqual(d.log.counters, { loginsRedone: 1, lateAuthAnswers: 1 });
});

test("the target's AuthSwitchRequest arrives after the client's switch answer and query were captured: answered by the module, the query after the OK", () => {
  const ps = packets(SWITCH);
  const d = driver();
  d.target(wire({ seq: 0, payload: regreet((ps[0] as MysqlPacket).payload, scramble(9)) }));
  replayClient(d, [ps[1] as MysqlPacket, ps[3] as MysqlPacket, ps[5] as MysqlPacket]);
  assert.equal(sentPackets(d).length, 1, 'the rebuilt login; the answer dropped, the query held');
  const sw = scramble(10);
  d.target(
    encodePacket(2, Buffer.concat([Buffer.from('\xfemysql_native_password\0', 'latin1'), sw, Buffer.from([0])])),
  );
  assert.deepEqual(sentPackets(d)[1], { seq: 3, payload: nativePasswordAnswer('p1secret', sw) });
  assert.equal(sentPackets(d).length, 2, 'the query still waits for the OK');
  d.target(encodePacket(4, Buffer.from('00000002000000', 'hex')));
  assert.deepEqual(sentPackets(d)[2], bare(ps[5] as MysqlPacket));
  assert.deepEqual(d.log.counters, { authSwitches: 1, authAnswersDropped: 1, loginsRedone: 1 });
});

test('a login the target never answers ends at the hold limit as loginUnanswered (no greeting; no OK), counted', () => {
  const ps = packets(CLI);
  // no greeting: the login is held, then the session ends
  const d1 = driver();
  d1.client(wire(ps[1] as MysqlPacket), 100);
  assert.equal(d1.holdDeadline(), 100 + HOLD_LIMIT_MS);
  d1.tick(100 + HOLD_LIMIT_MS - 1);
  assert.equal(d1.log.ended, null);
  d1.tick(100 + HOLD_LIMIT_MS);
  assert.equal(d1.log.ended, 'loginUnanswered');
  // greeted, the rebuilt login sent, no OK: the query held behind it ends the session
  const d2 = driver();
  d2.target(wire({ seq: 0, payload: regreet((ps[0] as MysqlPacket).payload, scramble(11)) }));
  d2.client(wire(ps[1] as MysqlPacket), 0);
  d2.client(wire(ps[3] as MysqlPacket), 50);
  d2.tick(50 + HOLD_LIMIT_MS);
  assert.equal(d2.log.ended, 'loginUnanswered');
  assert.equal(sentPackets(d2).length, 1, 'the login only');
  // answered in time: no expiry
  const d3 = driver();
  d3.client(wire(ps[1] as MysqlPacket), 0);
  d3.target(wire({ seq: 0, payload: regreet((ps[0] as MysqlPacket).payload, scramble(12)) }), 0, 5000);
  d3.client(wire(ps[3] as MysqlPacket), 5000);
  d3.target(encodePacket(2, Buffer.from('00000002000000', 'hex')), 0, 9000);
  d3.tick(20_000);
  assert.equal(d3.log.ended, null);
  assert.deepEqual(sentPackets(d3)[1], bare(ps[3] as MysqlPacket));
});

function replayClient(d: ReturnType<typeof driver>, ps: MysqlPacket[]): void {
  for (const p of ps) d.client(wire(p));
}

test('a switch to another plugin, an error greeting and a refused login end the session with their reasons', () => {
  const ps = packets(CLI);
  const greet = wire({ seq: 0, payload: regreet((ps[0] as MysqlPacket).payload, scramble(5)) });
  const d1 = driver();
  d1.target(greet);
  d1.client(wire(ps[1] as MysqlPacket));
  d1.target(encodePacket(2, Buffer.from('\xfeclient_ed25519\0', 'latin1')));
  assert.equal(d1.log.ended, 'unsupportedAuth');
  const d2 = driver();
  d2.target(encodePacket(0, Buffer.from('\xff\x10\x04Too many connections', 'latin1')));
  assert.equal(d2.log.ended, 'loginRefused');
  const d3 = driver();
  d3.target(greet);
  d3.client(wire(ps[1] as MysqlPacket));
  d3.target(encodePacket(2, Buffer.from("\xff\x15\x04#28000Access denied for user 'u1'", 'latin1')));
  assert.equal(d3.log.ended, 'loginRefused');
  assert.equal(d3.log.counters.loginsRedone, undefined);
});

test('unknown user, compression, TLS: the session ends with its reason, nothing sent', () => {
  const greet = (c: typeof CLI): Buffer =>
    wire({ seq: 0, payload: regreet((packets(c, 1)[0] as MysqlPacket).payload, scramble(6)) });
  const resp = (c: typeof CLI): MysqlPacket => packets(c, 2)[1] as MysqlPacket;
  const d1 = driver(mysqlModule({ 'mysql-user': ['u2:p2other'] }));
  d1.target(greet(CLI));
  d1.client(wire(resp(CLI)));
  assert.equal(d1.log.ended, 'unknownUser');
  // compression: the capture's client asked for it and production offered it
  const d2 = driver();
  d2.online(wire(packets(COMPRESSED, 1)[0] as MysqlPacket));
  d2.target(greet(COMPRESSED));
  d2.client(wire(resp(COMPRESSED)));
  assert.equal(d2.log.ended, 'compressed');
  // TLS: an SSLRequest is the response's first 32 bytes with CLIENT_SSL (no TLS in the fixture server)
  const ssl = Buffer.from(resp(CLI).payload.subarray(0, 32));
  ssl.writeUInt32LE(ssl.readUInt32LE(0) | CLIENT_SSL, 0);
  const d3 = driver();
  d3.client(wire({ seq: 1, payload: ssl }));
  assert.equal(d3.log.ended, 'tls', 'known even before the greeting');
  for (const d of [d1, d2, d3]) assert.equal(d.log.sent.length, 0);
  // the plain client is not taken for compressed or TLS
  const d4 = driver();
  d4.target(greet(CLI));
  d4.client(wire(resp(CLI)));
  assert.equal(d4.log.ended, null);
});

test('the whole mysql2 session: login, COM_CHANGE_USER redone for the target scramble and its AuthSwitchRequest answered', () => {
  const d = driver();
  const s = scramble(7);
  replay(d, NODE, s);
  assert.equal(d.log.ended, null);
  const sent = sentPackets(d);
  const cu = sent.find((p) => p.seq === 0 && p.payload[0] === 0x11) as MysqlPacket;
  const r = login(sent[0] as MysqlPacket);
  assert.ok(!isParseError(r));
  const parsed = parseChangeUser(cu.payload, r.capabilities);
  assert.ok(!isParseError(parsed));
  assert.equal(parsed.user, 'u2');
  assert.deepEqual(
    parsed.authResponse,
    nativePasswordAnswer(PASSWORDS.u2 as string, s),
    'answers the target greeting scramble',
  );
  // the capture's target switched (the captured AuthSwitchRequest): the module's answer follows the CHANGE_USER
  const i = sent.indexOf(cu);
  const swReq = packets(NODE).find(
    (p) => !p.fromClient && p.payload[0] === 0xfe && p.payload.length > 9,
  ) as MysqlPacket;
  assert.deepEqual(sent[i + 1], {
    seq: 2,
    payload: nativePasswordAnswer('p2other', (parseAuthSwitch(swReq.payload) as { data: Buffer }).data),
  });
  // the same answer the real client gave production (same switch scramble, same password)
  const clientAnswer = packets(NODE).find((p) => p.fromClient && p.seq === 2) as MysqlPacket;
  assert.deepEqual(sent[i + 1]?.payload, clientAnswer.payload);
  assert.equal(d.log.counters.loginsRedone, 1);
  assert.equal(d.log.counters.changeUsersRedone, 1);
  assert.equal(d.log.counters.authSwitches, 1);
  assert.equal(d.log.counters.authAnswersDropped, 1, "the client's answer to production's switch");
});
