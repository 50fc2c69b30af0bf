/**
 * Prepared statements of sessions picked up mid-stream (their PREPAREs were before the
 * capture): the statement an unknown EXECUTE id names is found among those another session was
 * captured preparing (catalog.ts), checked against production's reply to that EXECUTE, prepared
 * again on the target and its ids mapped. The bytes are the real mysql2 exchange of the MariaDB
 * capture (connection 4: PREPAREs of ids 1, 2, 3 and their EXECUTEs); nothing is guessed: no
 * candidate, several, or a reply that does not fit leaves the EXECUTE lost with its reason.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connections, packets } from './capture';
import { USERS, driver, mysqlModule, regreet, replay, scramble, sentPackets, wire } from './script';
import { encodePacket, type MysqlPacket } from '../../../../src/modules/mysql/packet';
import { isParseError, parseHandshakeResponse } from '../../../../src/modules/mysql/handshake';
import {
  DefCollector,
  ExecProbe,
  StatementCatalog,
  boundTypes,
  colSig,
  executeFit,
  scopeOf,
  withTypes,
} from '../../../../src/modules/mysql/catalog';
import type { PacketHead } from '../../../../src/modules/mysql/replies';

const NODE = connections()[3] as ReturnType<typeof connections>[number];
const ALL = packets(NODE);
const GREETING = (ALL[0] as MysqlPacket).payload;
const LOGIN_OK = encodePacket(2, Buffer.from('00000002000000', 'hex'));

/** The i-th client command (seq 0) of the capture, and production's reply to it (its packets, framed). */
function exchange(i: number): { cmd: Buffer; reply: Buffer; replyPackets: MysqlPacket[] } {
  const idx = ALL.flatMap((p, j) => (p.fromClient && p.seq === 0 ? [j] : []));
  const at = idx[i] as number;
  const replyPackets: MysqlPacket[] = [];
  for (let j = at + 1; j < ALL.length && !(ALL[j] as MysqlPacket & { fromClient: boolean }).fromClient; j++)
    replyPackets.push(ALL[j] as MysqlPacket);
  return {
    cmd: Buffer.from((ALL[at] as MysqlPacket).payload),
    reply: Buffer.concat(replyPackets.map(wire)),
    replyPackets,
  };
}
// the commands: 0 PREPARE "SELECT id, v FROM t WHERE id = ?" (id 1), 1 and 2 EXECUTE 1, 3 PREPARE UPDATE (id 2), 4 EXECUTE 2
const PREP1 = exchange(0);
const EXEC1 = exchange(1);
const EXEC1B = exchange(2);
const PREP2 = exchange(3);
const EXEC2 = exchange(4);

/** The target's answer to a PREPARE: production's, with statement id `id`. */
function targetPrepareOk(prep: typeof PREP1, id: number): Buffer {
  const ps = prep.replyPackets.map((p, i) => {
    if (i !== 0) return p;
    const b = Buffer.from(p.payload);
    b.writeUInt32LE(id, 1);
    return { seq: p.seq, payload: b };
  });
  return Buffer.concat(ps.map(wire));
}

/** `cmd` (an EXECUTE payload) without its bound types (new-params-bound 0), as a client sends after its first EXECUTE. */
function unbound(cmd: Buffer, n: number): Buffer {
  const flag = 10 + ((n + 7) >> 3);
  assert.equal(cmd[flag], 1);
  return Buffer.concat([cmd.subarray(0, flag), Buffer.from([0]), cmd.subarray(flag + 1 + 2 * n)]);
}

/** A module that saw the mysql2 connection from its SYN (its statements learned). */
function taught(): ReturnType<typeof mysqlModule> {
  const mod = mysqlModule();
  const d = driver(mod, { clientPort: 40001 });
  replay(d, NODE, scramble(30));
  assert.equal(d.log.counters.statementsLearned, 3, 'three statement texts learned');
  return mod;
}

/** A session of the same client picked up mid-stream, logged in (as the stored u2@fx). */
function midstream(mod: ReturnType<typeof mysqlModule>, port = 40002): ReturnType<typeof driver> {
  const d = driver(mod, { origin: 'midstream', clientPort: port });
  d.target(wire({ seq: 0, payload: regreet(GREETING, scramble(31)) }));
  return d;
}

function loggedIn(d: ReturnType<typeof driver>): void {
  const login = parseHandshakeResponse((sentPackets(d)[0] as MysqlPacket).payload);
  assert.ok(!isParseError(login));
  assert.equal(login.database, 'fx');
  d.target(LOGIN_OK);
}

const last = (d: ReturnType<typeof driver>): MysqlPacket => sentPackets(d).at(-1) as MysqlPacket;

test("mid-stream EXECUTE of a statement prepared before the capture: production's reply confirms the text another session prepared; prepared again on the target, ids mapped", () => {
  const mod = taught();
  const d = midstream(mod);
  d.client(wire({ seq: 0, payload: EXEC1.cmd }));
  loggedIn(d);
  assert.equal(sentPackets(d).length, 1, 'the login only: the EXECUTE waits for production to answer it');
  d.online(EXEC1.reply);
  // the PREPARE of the learned text, inserted before the EXECUTE, which waits for its answer
  const prep = last(d);
  assert.deepEqual(prep, { seq: 0, payload: PREP1.cmd });
  assert.equal(d.log.counters.statementsReprepared, 1);
  d.target(targetPrepareOk(PREP1, 11));
  const exec = last(d);
  const want = Buffer.from(EXEC1.cmd);
  want.writeUInt32LE(11, 1);
  assert.deepEqual(exec.payload, want, 'the EXECUTE as captured, with the target id');
  // a second EXECUTE of it needs no new PREPARE nor a probe
  d.target(EXEC1.reply);
  d.client(wire({ seq: 0, payload: unbound(EXEC1B.cmd, 1) }));
  const again = unbound(EXEC1B.cmd, 1);
  again.writeUInt32LE(11, 1);
  assert.deepEqual(last(d).payload, again);
  assert.equal(d.log.dropped.length, 0, JSON.stringify(d.log.dropped));
  assert.equal(d.log.counters.statementsRemapped, 2);
  assert.equal(d.log.counters.paramTypesAdded, undefined, 'the first EXECUTE bound its types itself');
});

test('the first EXECUTE seen binds no types (bound before the capture): sent with those another session bound', () => {
  const mod = taught();
  const d = midstream(mod);
  d.client(wire({ seq: 0, payload: unbound(EXEC1B.cmd, 1) }));
  loggedIn(d);
  d.online(EXEC1B.reply);
  d.target(targetPrepareOk(PREP1, 12));
  const want = Buffer.from(EXEC1B.cmd);
  want.writeUInt32LE(12, 1);
  assert.deepEqual(last(d).payload, want, 'types added: the bytes mysql2 sent on the session that bound them');
  assert.equal(d.log.counters.paramTypesAdded, 1);
  // the UPDATE (id 2): an OK confirms a statement without columns; a COM_STMT_CLOSE then maps too
  d.target(EXEC1B.reply);
  d.client(wire({ seq: 0, payload: unbound(EXEC2.cmd, 2) }));
  d.online(EXEC2.reply);
  assert.deepEqual(last(d), { seq: 0, payload: PREP2.cmd });
  d.target(targetPrepareOk(PREP2, 13));
  const upd = Buffer.from(EXEC2.cmd);
  upd.writeUInt32LE(13, 1);
  assert.deepEqual(last(d).payload, upd);
  d.target(EXEC2.reply);
  d.client(encodePacket(0, Buffer.from([0x1a, 2, 0, 0, 0]))); // RESET 2
  assert.deepEqual(last(d).payload, Buffer.from([0x1a, 13, 0, 0, 0]));
  d.target(encodePacket(1, Buffer.from('00000002000000', 'hex')));
  d.client(encodePacket(0, Buffer.from([0x19, 2, 0, 0, 0]))); // CLOSE 2
  assert.deepEqual(last(d).payload, Buffer.from([0x19, 13, 0, 0, 0]));
  d.client(encodePacket(0, Buffer.from([0x19, 1, 0, 0, 0]))); // CLOSE 1
  assert.deepEqual(last(d).payload, Buffer.from([0x19, 12, 0, 0, 0]));
  assert.equal(d.log.counters.statementsReprepared, 2);
  assert.equal(d.log.counters.unmappedCloses, undefined);
  assert.equal(d.log.dropped.length, 0, JSON.stringify(d.log.dropped));
});

test("production's reply does not fit the statement known for the id: lost as statementMismatch; an ERR: statementUnverified, tried again at the next EXECUTE", () => {
  const mod = taught();
  const d = midstream(mod);
  // id 2 is the UPDATE elsewhere; here production answered with a result set
  d.client(wire({ seq: 0, payload: EXEC2.cmd }));
  loggedIn(d);
  d.online(EXEC1.reply);
  assert.deepEqual(
    d.log.dropped.map((x) => x.reason),
    ['statementMismatch'],
  );
  d.client(wire({ seq: 0, payload: EXEC1.cmd }));
  d.online(encodePacket(1, Buffer.from('\xff\xbd\x04#40001Deadlock found when trying to get lock', 'latin1')));
  assert.deepEqual(
    d.log.dropped.map((x) => x.reason),
    ['statementMismatch', 'statementUnverified'],
  );
  d.client(wire({ seq: 0, payload: EXEC1.cmd }));
  d.online(EXEC1.reply);
  assert.deepEqual(last(d), { seq: 0, payload: PREP1.cmd });
  assert.equal(sentPackets(d).length, 2, 'the login, then only the PREPARE: nothing was sent for the lost ones');
});

test('no statement known for the id, or its parameters do not fit: held up to LEARN_WAIT_MS once per session, then unpreparedStatement', () => {
  const mod = taught();
  const d = midstream(mod);
  const e9 = Buffer.from(EXEC1.cmd);
  e9.writeUInt32LE(9, 1);
  d.client(wire({ seq: 0, payload: e9 }), 0);
  loggedIn(d);
  d.online(Buffer.alloc(0), 0, 2999);
  assert.equal(d.log.dropped.length, 0, 'held: another session may still teach statement 9');
  d.online(Buffer.alloc(0), 0, 3000);
  // id 1 has one parameter: an EXECUTE of id 1 with two values does not fit it; the wait is spent
  const two = Buffer.from(EXEC2.cmd);
  two.writeUInt32LE(1, 1);
  d.client(wire({ seq: 0, payload: two }), 3001);
  assert.deepEqual(
    d.log.dropped.map((x) => x.reason),
    ['unpreparedStatement', 'unpreparedStatement'],
  );
  assert.equal(d.log.counters.learnWaits, 1, 'one wait for the session');
});

test('an EXECUTE held while no session has taught its statement goes once another session prepares it', () => {
  const mod = mysqlModule({ 'mysql-user': USERS, 'mysql-login': ['u2@fx'] });
  const d = midstream(mod);
  d.client(wire({ seq: 0, payload: EXEC1.cmd }), 0);
  loggedIn(d);
  d.online(EXEC1.reply, 0, 100);
  assert.equal(sentPackets(d).length, 1, 'the login only: nothing known of statement 1 yet');
  assert.equal(d.log.dropped.length, 0);
  // a connection opened after tcpcopy started prepares and runs the same statements
  replay(driver(mod, { clientPort: 40001 }), NODE, scramble(35));
  d.online(Buffer.alloc(0), 0, 1200);
  assert.deepEqual(last(d), { seq: 0, payload: PREP1.cmd }, 'prepared again from the text just learned');
  d.target(targetPrepareOk(PREP1, 12), 0, 1201);
  const want = Buffer.from(EXEC1.cmd);
  want.writeUInt32LE(12, 1);
  assert.deepEqual(last(d).payload, want);
  assert.equal(d.log.dropped.length, 0, JSON.stringify(d.log.dropped));
  assert.equal(d.log.counters.statementsReprepared, 1);
});

test('two statements captured with the same id fit the EXECUTE and the reply: ambiguousStatement, never a guess', () => {
  const mod = taught();
  // another client's session prepared another statement of the same shape as its id 1
  const other = driver(mod, { clientPort: 40003 });
  const prep = Buffer.from(PREP1.cmd.toString('latin1').replace('id = ?', 'id > ?'), 'latin1');
  ALL.forEach((p, i) => {
    const cmd = i === 3 ? prep : p.payload;
    if (p.fromClient) other.client(wire({ seq: p.seq, payload: cmd }));
    else {
      other.online(wire(p));
      other.target(wire(i === 0 ? { seq: 0, payload: regreet(GREETING, scramble(33)) } : p));
    }
  });
  assert.equal(other.log.counters.statementsLearned, 1, 'one new text (the others were known)');
  const d = midstream(mod);
  d.client(wire({ seq: 0, payload: EXEC1.cmd }));
  loggedIn(d);
  d.online(EXEC1.reply);
  assert.deepEqual(
    d.log.dropped.map((x) => x.reason),
    ['ambiguousStatement'],
  );
});

test("parameter types never seen bound (the teaching session's EXECUTEs not captured): unknownParamTypes", () => {
  const mod = mysqlModule();
  const t = driver(mod, { clientPort: 40001 });
  replay(t, NODE, scramble(34), { limit: 10 }); // the login and the first PREPARE's answer
  assert.equal(t.log.counters.statementsLearned, 1);
  const d = midstream(mod);
  d.client(wire({ seq: 0, payload: unbound(EXEC1B.cmd, 1) }));
  loggedIn(d);
  d.online(EXEC1B.reply);
  assert.equal(d.log.dropped.length, 0, 'held: another session may still bind the types');
  d.online(Buffer.alloc(0), 0, 3000);
  assert.deepEqual(
    d.log.dropped.map((x) => x.reason),
    ['unknownParamTypes'],
  );
  assert.equal(d.log.counters.statementsReprepared, undefined);
});

test("production's reply never read: the EXECUTE waits PROBE_WAIT_MS of engine time at most, then is lost as statementUnverified", () => {
  const mod = taught();
  const d = midstream(mod);
  d.client(wire({ seq: 0, payload: EXEC1.cmd }), 0);
  loggedIn(d);
  d.online(Buffer.alloc(0), 0, 1000);
  assert.equal(d.log.dropped.length, 0, 'still waiting');
  d.online(Buffer.alloc(0), 0, 2500);
  assert.deepEqual(
    d.log.dropped.map((x) => x.reason),
    ['statementUnverified'],
  );
});

// --- the codecs, with the captured bytes ---

test('executeFit: parameter count and types checked against the bytes (bound, remembered, unknown)', () => {
  const types = boundTypes(EXEC1.cmd, 1);
  assert.deepEqual(types, Buffer.from([0x05, 0x00]), 'mysql2 binds a DOUBLE');
  assert.equal(executeFit(EXEC1.cmd, 1, null), 'fits');
  assert.equal(executeFit(EXEC1.cmd, 2, null), 'misfit');
  assert.equal(executeFit(EXEC1.cmd, 0, null), 'misfit');
  assert.equal(executeFit(unbound(EXEC1.cmd, 1), 1, null), 'noTypes');
  assert.equal(executeFit(unbound(EXEC1.cmd, 1), 1, types), 'fits');
  assert.equal(executeFit(unbound(EXEC1.cmd, 1), 1, Buffer.from([0x03, 0])), 'misfit', 'an INT is 4 bytes, not 8');
  assert.equal(executeFit(EXEC2.cmd, 2, null), 'fits');
  assert.equal(executeFit(unbound(EXEC2.cmd, 2), 2, boundTypes(EXEC2.cmd, 2)), 'fits');
  assert.equal(executeFit(Buffer.from([0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0]), 0, null), 'fits');
  const withNull = Buffer.from(EXEC1.cmd.subarray(0, 14)); // NULL bit set: no value
  withNull[10] = 1;
  assert.equal(executeFit(withNull, 1, null), 'fits');
  assert.deepEqual(
    withTypes(encodePacket(0, unbound(EXEC1.cmd, 1)), 1, types as Buffer, 1),
    encodePacket(0, EXEC1.cmd),
  );
});

test("column definitions: PREPARE_OK's and the EXECUTE result set's names agree (captured bytes)", () => {
  const head = (p: MysqlPacket): PacketHead => ({
    seq: p.seq,
    len: p.payload.length,
    head: p.payload,
    n: p.payload.length,
    cut: false,
  });
  assert.equal(colSig((PREP1.replyPackets[2] as MysqlPacket).payload), null, 'the EOF after the parameter');
  const prep = new DefCollector(1, 2);
  for (const p of PREP1.replyPackets.slice(1)) prep.packet(head(p));
  assert.equal(prep.result(), 'fx\tt\tt\tid\tid\nfx\tt\tt\tv\tv');
  const probe = new ExecProbe(0);
  EXEC1.replyPackets.forEach((p, i) => probe.packet(head(p), i === 0));
  assert.deepEqual(probe.reply, { kind: 'rows', columns: 2, cols: prep.result() });
  const cat = new StatementCatalog(2, 1000);
  const s = scopeOf('198.18.1.1', 3306, 'fx');
  const e = cat.learn(s, PREP1.cmd.subarray(1), 1, 1, 2, 0)?.entry;
  assert.ok(e !== undefined);
  e.cols = prep.result();
  assert.deepEqual(probe.fitting(cat.candidates(s, 1, 0)), [e]);
  const other = new ExecProbe(0);
  other.packet(head({ seq: 1, payload: Buffer.from([1]) }), true);
  other.packet(head(EXEC1.replyPackets[2] as MysqlPacket), false); // one column, v
  assert.deepEqual(other.fitting([e]), []);
  // bounded and expired
  cat.learn(s, Buffer.from('SELECT 2'), 2, 0, 1, 10);
  cat.learn(s, Buffer.from('SELECT 3'), 3, 0, 1, 20);
  assert.equal(cat.size, 2);
  assert.deepEqual(cat.candidates(s, 1, 20), [], 'the oldest forgotten beyond the bound');
  assert.equal(cat.candidates(s, 3, 20).length, 1);
  assert.deepEqual(cat.candidates(s, 3, 1021), [], 'expired');
  assert.deepEqual(cat.candidates(scopeOf('198.18.1.1', 3306, 'other'), 2, 20), [], 'another database');
  const small = new StatementCatalog(10, 1000, 20);
  small.learn(s, Buffer.from('SELECT 1111'), 1, 0, 1, 0);
  small.learn(s, Buffer.from('SELECT 2222'), 2, 0, 1, 0);
  assert.equal(small.size, 1, 'beyond 20 bytes of text the oldest is forgotten');
  assert.equal(small.bytes, 11);
  assert.deepEqual(small.candidates(s, 1, 0), []);
});

/**
 * A mid-stream session whose first query's answer is a result set of 50 rows (about 10 KiB,
 * over the payload cap): production's reply in full, the target's first 1024 bytes only, the
 * middle missing (the reply stream lost). `head` is where the sent stream stood.
 */
function bigReplyCut(mod: ReturnType<typeof mysqlModule>): { d: ReturnType<typeof driver>; big: Buffer; head: number } {
  const d = midstream(mod);
  d.client(encodePacket(0, Buffer.from('\x03SELECT c FROM big', 'latin1')));
  loggedIn(d);
  const def = encodePacket(
    2,
    Buffer.concat([Buffer.from('\x03def\x02fx\x03big\x03big\x01c\x01c\x0c', 'latin1'), Buffer.alloc(13)]),
  );
  const rows = Array.from({ length: 50 }, (_, i) =>
    encodePacket(4 + i, Buffer.concat([Buffer.from([200]), Buffer.alloc(200, 0x61)])),
  );
  const big = Buffer.concat([
    encodePacket(1, Buffer.from([1])),
    def,
    encodePacket(3, Buffer.from([0xfe, 0, 0, 2, 0])),
    ...rows,
    encodePacket(54, Buffer.from([0xfe, 0, 0, 2, 0])),
  ]);
  d.online(big);
  const head = d.sentBytes().length;
  d.target(big.subarray(0, 1024), big.length - 2048, 0, head);
  return { d, big, head };
}

test("the target's reply stream is lost (a result set over the payload cap) when the module prepares: the EXECUTE waits for the PREPARE_OK the stream is found again at", () => {
  const mod = taught();
  const { d, big, head } = bigReplyCut(mod);
  assert.equal(d.log.counters.replySyncLost, 1);
  d.client(wire({ seq: 0, payload: EXEC1.cmd }));
  d.online(EXEC1.reply);
  assert.deepEqual(last(d), { seq: 0, payload: PREP1.cmd });
  // the tail of the big reply (sent before the target had the PREPARE): the EXECUTE is offered again, still waits
  d.target(big.subarray(big.length - 1024), 0, 1, head);
  assert.equal(d.log.dropped.length, 0, JSON.stringify(d.log.dropped));
  d.target(targetPrepareOk(PREP1, 14));
  assert.equal(d.log.counters.replyResyncs, 1);
  assert.equal(last(d).payload.readUInt32LE(1), 14);
  assert.equal(d.log.dropped.length, 0, JSON.stringify(d.log.dropped));
});

test('the PREPARE the module sent is answered in the cut tail of a long reply (the target had it): prepared again, not lost', () => {
  const mod = taught();
  const { d, big } = bigReplyCut(mod);
  d.client(wire({ seq: 0, payload: EXEC1.cmd }), 10);
  d.online(EXEC1.reply, 0, 10);
  assert.deepEqual(last(d), { seq: 0, payload: PREP1.cmd });
  // the tail of the big reply and the PREPARE_OK in one segment (the target had the PREPARE), cut
  const tail = Buffer.concat([big.subarray(big.length - 1024), targetPrepareOk(PREP1, 14)]);
  d.target(tail.subarray(0, 1024), tail.length - 1024, 20);
  // (before: the EXECUTE waited PROBE_WAIT_MS, was lost as statementNotMapped, and so was every later one of the statement)
  assert.equal(d.log.counters.preparesRetried, 1);
  assert.deepEqual(last(d), { seq: 0, payload: PREP1.cmd }, 'the same text prepared again');
  assert.equal(d.log.dropped.length, 0, JSON.stringify(d.log.dropped));
  d.target(targetPrepareOk(PREP1, 15), 0, 30);
  assert.equal(d.log.counters.replyResyncs, 1);
  const want = Buffer.from(EXEC1.cmd);
  want.writeUInt32LE(15, 1);
  assert.deepEqual(last(d).payload, want);
  d.target(EXEC1.reply, 0, 40);
  d.client(wire({ seq: 0, payload: unbound(EXEC1B.cmd, 1) }), 50);
  assert.equal(last(d).payload.readUInt32LE(1), 15);
  assert.equal(d.log.dropped.length, 0, JSON.stringify(d.log.dropped));
});
