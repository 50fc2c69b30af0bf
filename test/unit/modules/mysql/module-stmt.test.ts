/**
 * The MySQL module's prepared statements: production's statement ids (the online server's
 * PREPARE_OK) mapped to the target's, from the real mysql2 exchange of the MariaDB capture,
 * with the target's answers in step, late, cut into pieces or truncated, and production's
 * answers missing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connections, packets } from './capture';
import { driver, isPrepareOk, replay, scramble, sentPackets, targetPackets, wire } from './script';
import { encodeLenEnc, encodePacket, type MysqlPacket } from '../../../../src/modules/mysql/packet';
import { HOLD_LIMIT_MS } from '../../../../src/modules/mysql/module';

const NODE = connections()[3] as ReturnType<typeof connections>[number];
const STMT_CMDS = new Set([0x17, 0x18, 0x19, 0x1a, 0x1c]);

/** The statement commands of a packet list: [command, statement id]. */
function stmtCommands(ps: MysqlPacket[]): [number, number][] {
  return ps
    .filter((p) => p.seq === 0 && STMT_CMDS.has(p.payload[0] as number))
    .map((p) => [p.payload[0] as number, p.payload.readUInt32LE(1)]);
}

test('mysql2 session: EXECUTE and CLOSE carry the target ids; closes of forgotten statements are not sent', () => {
  const captured = stmtCommands(packets(NODE).filter((p) => p.fromClient));
  assert.deepEqual(captured, [
    [0x17, 1],
    [0x17, 1],
    [0x17, 2],
    [0x19, 1],
    [0x19, 1],
    [0x19, 2],
    [0x17, 3],
  ]);
  const d = driver();
  replay(d, NODE, scramble(11));
  assert.equal(d.log.ended, null);
  assert.deepEqual(stmtCommands(sentPackets(d)), [
    [0x17, 11],
    [0x17, 11],
    [0x17, 12],
    [0x19, 11],
    // the second CLOSE of 1 (mysql2 closes twice), and CLOSE of 2 after COM_CHANGE_USER closed every statement
    [0x17, 13],
  ]);
  // dropped, none lost: the second CLOSE of 1, the client's answer to production's AuthSwitchRequest, the CLOSE of 2
  assert.deepEqual(
    d.log.dropped.map((x) => [x.msg[3], x.msg[3] === 0 ? x.msg[4] : -1, x.reason]),
    [
      [0, 0x19, ''],
      [2, -1, ''],
      [0, 0x19, ''],
    ],
  );
  assert.equal(d.log.counters.statementsPrepared, 3);
  assert.equal(d.log.counters.statementsRemapped, 5);
  assert.equal(d.log.counters.unmappedCloses, 2);
  assert.equal(d.log.counters.onlineIdsInferred, undefined);
  // everything else as captured: the client's commands in order, none lost
  const cmds = (ps: MysqlPacket[]): number[] => ps.filter((p) => p.seq === 0).map((p) => p.payload[0] as number);
  const all = cmds(packets(NODE).filter((p) => p.fromClient));
  const closes = all.flatMap((c, i) => (c === 0x19 ? [i] : []));
  assert.equal(closes.length, 3);
  assert.deepEqual(
    cmds(sentPackets(d)),
    all.filter((_, i) => i !== closes[1] && i !== closes[2]),
  );
});

test('the target answers late and in 7-byte pieces: statement commands wait for its PREPARE_OK, the bytes sent are the same', () => {
  const ref = driver();
  replay(ref, NODE, scramble(12));
  const d = driver();
  const ps = packets(NODE);
  for (const p of ps) {
    if (p.fromClient) d.client(wire(p));
    else d.online(wire(p));
  }
  assert.equal(d.log.sent.length, 0, 'nothing before the greeting');
  const t = Buffer.concat(
    targetPackets(NODE, scramble(12))
      .filter((p) => !p.fromClient)
      .map(wire),
  );
  for (let o = 0; o < t.length; o += 7) d.target(t.subarray(o, o + 7));
  assert.deepEqual(sentPackets(d), sentPackets(ref));
  assert.deepEqual(d.log.counters, ref.log.counters);
});

test("production's PREPARE answers not captured: the ids are inferred from the client's use, counted", () => {
  const d = driver();
  replay(d, NODE, scramble(13), { online: false });
  const ref = driver();
  replay(ref, NODE, scramble(13));
  assert.deepEqual(stmtCommands(sentPackets(d)), stmtCommands(sentPackets(ref)));
  assert.equal(d.log.counters.onlineIdsInferred, 3);
  assert.equal(d.log.counters.statementsRemapped, 5);
});

// --- synthetic replies around the captured login: truncated target payloads ---

const colDef = (seq: number): Buffer =>
  encodePacket(seq, Buffer.concat([Buffer.from('\x03def\x02fx\x01t\x01t\x01c\x01c\x0c', 'latin1'), Buffer.alloc(13)]));
const eof = (seq: number): Buffer => encodePacket(seq, Buffer.from([0xfe, 0, 0, 2, 0]));
const row = (seq: number, n: number): Buffer =>
  encodePacket(seq, Buffer.concat([encodeLenEnc(n), Buffer.alloc(n, 0x61)]));
/** A text result set: 1 column, `rows` rows of `n` bytes (classic EOFs). */
function resultSet(rows: number, n: number): Buffer {
  const parts = [encodePacket(1, Buffer.from([1])), colDef(2), eof(3)];
  for (let i = 0; i < rows; i++) parts.push(row(4 + i, n));
  parts.push(eof((4 + rows) & 0xff));
  return Buffer.concat(parts);
}
const prepareOk = (id: number): Buffer =>
  Buffer.concat([
    encodePacket(1, Buffer.from([0, id, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0])),
    colDef(2),
    eof(3),
    colDef(4),
    eof(5),
  ]);
const cmd = (b: number, rest: Buffer | string): Buffer =>
  encodePacket(0, Buffer.concat([Buffer.from([b]), typeof rest === 'string' ? Buffer.from(rest) : rest]));
const execute = (id: number): Buffer => cmd(0x17, Buffer.from([id, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 0, 1, 0, 0, 0]));

/** A driver past the captured login of the mysql2 connection (login redone, OK seen). */
function loggedIn(): ReturnType<typeof driver> {
  const d = driver();
  replay(d, NODE, scramble(14), { limit: 3 });
  assert.equal(d.log.counters.loginsRedone, 1);
  return d;
}

test('a result set truncated after 1 KiB hides packet headers: the stream is found again at the next reply', () => {
  const d = loggedIn();
  d.client(cmd(0x03, 'SELECT c FROM big'));
  const big = resultSet(50, 200);
  d.online(big);
  d.target(big.subarray(0, 1024), big.length - 1024);
  assert.equal(d.log.counters.replySyncLost, 1);
  d.client(cmd(0x16, 'SELECT c FROM t WHERE id = ?'));
  d.online(prepareOk(3));
  d.target(prepareOk(7));
  d.client(execute(3));
  const last = sentPackets(d).at(-1) as MysqlPacket;
  assert.equal(last.payload[0], 0x17);
  assert.equal(last.payload.readUInt32LE(1), 7);
  assert.equal(d.log.counters.statementsRemapped, 1);
});

test('only payload bytes missing (each row its own truncated segment): skipped without losing the stream', () => {
  const d = loggedIn();
  d.client(cmd(0x03, 'SELECT c FROM big'));
  const head = Buffer.concat([encodePacket(1, Buffer.from([1])), colDef(2), eof(3)]);
  d.online(resultSet(5, 3000));
  d.target(head);
  for (let i = 0; i < 5; i++) {
    const r = row(4 + i, 3000);
    d.target(r.subarray(0, 1024), r.length - 1024);
  }
  d.target(eof(9));
  d.client(cmd(0x16, 'SELECT c FROM t WHERE id = ?'));
  d.online(prepareOk(3));
  d.target(prepareOk(9));
  d.client(execute(3));
  assert.equal((sentPackets(d).at(-1) as MysqlPacket).payload.readUInt32LE(1), 9);
  assert.equal(d.log.counters.replySyncLost, undefined);
});

test("the target's PREPARE_OK hidden in a truncated reply: the statement is prepared again, the answer to that one trusted (either would do)", () => {
  const d = loggedIn();
  d.client(cmd(0x03, 'SELECT c FROM big'));
  d.client(cmd(0x16, 'SELECT c FROM t WHERE id = ?'));
  // the target had both commands and answered them in one write: the PREPARE_OK is in the cut
  const both = Buffer.concat([resultSet(50, 200), prepareOk(7)]);
  d.online(resultSet(50, 200));
  d.online(prepareOk(3));
  d.target(both.subarray(0, 1024), both.length - 1024);
  assert.equal(d.log.counters.replySyncLost, 1);
  const before = sentPackets(d).length;
  // (before: the EXECUTE was lost as statementNotMapped, and so was every later EXECUTE of the
  // statement: 376 of a sysbench run under load)
  d.client(execute(3));
  assert.deepEqual(sentPackets(d)[before], { seq: 0, payload: Buffer.from('\x16SELECT c FROM t WHERE id = ?') });
  assert.equal(sentPackets(d).length, before + 1, 'the EXECUTE waits for the answer to the second PREPARE');
  assert.equal(d.log.counters.preparesRetried, 1);
  d.online(encodePacket(1, Buffer.from('00000002000000', 'hex')));
  // the next PREPARE_OK may answer either PREPARE (the first one's may have been in the cut): both are of the same text
  d.target(prepareOk(8));
  assert.equal(d.log.counters.replyResyncs, 1);
  const ex = sentPackets(d).at(-1) as MysqlPacket;
  assert.equal(ex.payload[0], 0x17);
  assert.equal(ex.payload.readUInt32LE(1), 8);
  assert.deepEqual(ex.payload.subarray(5), execute(3).subarray(9), 'the rest as captured (it binds its types)');
  d.target(encodePacket(1, Buffer.from('00000002000000', 'hex')));
  // every later EXECUTE of it is mapped; in step, a later PREPARE maps too
  d.client(execute(3));
  assert.equal((sentPackets(d).at(-1) as MysqlPacket).payload.readUInt32LE(1), 8);
  d.target(encodePacket(1, Buffer.from('00000002000000', 'hex')));
  d.client(cmd(0x16, 'SELECT 2'));
  d.online(prepareOk(5));
  d.target(prepareOk(9));
  d.client(execute(5));
  assert.equal((sentPackets(d).at(-1) as MysqlPacket).payload.readUInt32LE(1), 9);
  assert.equal(d.log.dropped.length, 0, JSON.stringify(d.log.dropped));
  assert.equal(d.log.counters.statementsRemapped, 3);
});

test('two different statements whose PREPARE_OKs may be in the cut: neither is trusted, each prepared again on its own', () => {
  const d = loggedIn();
  d.client(cmd(0x03, 'SELECT c FROM big'));
  d.client(cmd(0x16, 'SELECT c FROM t WHERE id = ?'));
  d.client(cmd(0x16, 'SELECT v FROM t WHERE id = ?'));
  const all = Buffer.concat([resultSet(50, 200), prepareOk(7), prepareOk(8)]);
  d.online(resultSet(50, 200));
  d.online(prepareOk(3));
  d.online(prepareOk(4));
  d.target(all.subarray(0, 1024), all.length - 1024);
  // one PREPARE_OK in a segment of its own: it could answer either of two statements: no guess
  d.target(prepareOk(9));
  assert.equal(d.log.counters.replyResyncs, 1);
  d.client(execute(3));
  d.online(encodePacket(1, Buffer.from('00000002000000', 'hex')));
  d.target(prepareOk(10));
  assert.equal((sentPackets(d).at(-1) as MysqlPacket).payload.readUInt32LE(1), 10);
  d.target(encodePacket(1, Buffer.from('00000002000000', 'hex')));
  d.client(execute(4));
  d.target(prepareOk(11));
  assert.equal((sentPackets(d).at(-1) as MysqlPacket).payload.readUInt32LE(1), 11);
  assert.equal(d.log.counters.preparesRetried, 2);
  assert.equal(d.log.dropped.length, 0, JSON.stringify(d.log.dropped));
});

test('a statement the target refuses is not prepared again: statementNotMapped; unread after MAX_PREPARE_TRIES PREPAREs: statementNotMapped', () => {
  const d = loggedIn();
  d.client(cmd(0x16, 'SELECT c FROM nowhere WHERE id = ?'));
  d.online(prepareOk(3));
  d.target(encodePacket(1, Buffer.from('\xff\x7a\x04#42S02no such table', 'latin1')));
  d.client(execute(3));
  assert.deepEqual(
    d.log.dropped.map((x) => x.reason),
    ['statementNotMapped'],
  );
  assert.equal(d.log.counters.preparesRetried, undefined);
  // another statement whose answers are always lost in the cut of a long reply
  const e = loggedIn();
  e.client(cmd(0x03, 'SELECT c FROM big'));
  e.client(cmd(0x16, 'SELECT c FROM t WHERE id = ?'));
  e.online(resultSet(50, 200));
  e.online(prepareOk(3));
  const cut = (b: Buffer): void => e.target(b.subarray(0, 1024), b.length - 1024);
  cut(Buffer.concat([resultSet(50, 200), prepareOk(7)]));
  e.client(execute(3)); // prepared again: its answer in the cut tail of another long reply
  cut(Buffer.concat([row(60, 2000), prepareOk(8)]));
  cut(Buffer.concat([row(61, 2000), prepareOk(9)]));
  assert.equal(e.log.counters.preparesRetried, 2);
  assert.deepEqual(
    e.log.dropped.map((x) => x.reason),
    ['statementNotMapped'],
  );
});

test('a PREPARE the target never answers (in step): the EXECUTE is dropped at the hold limit as prepareUnanswered; the next one is mapped when the answer comes', () => {
  const d = loggedIn();
  d.client(cmd(0x16, 'SELECT c FROM t WHERE id = ?'), 100);
  d.online(prepareOk(3), 0, 100);
  d.client(execute(3), 200);
  assert.equal(d.holdDeadline(), 200 + HOLD_LIMIT_MS);
  d.tick(200 + HOLD_LIMIT_MS - 1);
  assert.equal(d.log.dropped.length, 0);
  d.tick(200 + HOLD_LIMIT_MS);
  assert.deepEqual(
    d.log.dropped.map((x) => x.reason),
    ['prepareUnanswered'],
  );
  d.client(execute(3), 20_000);
  d.target(prepareOk(7), 0, 20_001);
  assert.equal((sentPackets(d).at(-1) as MysqlPacket).payload.readUInt32LE(1), 7);
  assert.equal(d.log.dropped.length, 1);
});

test("the target's ACK tells a long reply's tail from the next reply: a PREPARE sent during it is mapped", () => {
  const d = loggedIn();
  d.client(cmd(0x03, 'SELECT c FROM big'));
  const afterSelect = d.sentBytes().length;
  // the client's PREPARE and EXECUTE come (production answered at once) before the target's big reply
  d.client(cmd(0x16, 'SELECT c FROM t WHERE id = ?'));
  const big = resultSet(40, 1400);
  d.online(big);
  d.online(prepareOk(3));
  // the target's reply, in 1448-byte segments cut at 1 KiB, sent before it had the PREPARE
  const seg = (b: Buffer): void => d.target(b.subarray(0, 1024), Math.max(0, b.length - 1024), 0, afterSelect);
  for (let o = 0; o < big.length; o += 1448) seg(big.subarray(o, o + 1448));
  // a segment of that reply that looks like a PREPARE_OK (a binary row could): not taken, the
  // target had not received the PREPARE when it sent it
  seg(prepareOk(99));
  assert.equal(d.log.counters.replySyncLost, 1);
  assert.equal(d.log.counters.replyResyncs, undefined);
  const before = sentPackets(d).length;
  d.client(execute(3));
  assert.equal(sentPackets(d).length, before, 'the EXECUTE waits: the answer cannot have been in what was cut');
  // the PREPARE_OK, in a segment acknowledging the PREPARE
  d.target(prepareOk(7));
  assert.equal(d.log.counters.replyResyncs, 1);
  assert.equal((sentPackets(d).at(-1) as MysqlPacket).payload.readUInt32LE(1), 7);
  assert.equal(d.log.counters.statementsRemapped, 1);
  assert.equal(d.log.dropped.length, 0, JSON.stringify(d.log.dropped));
});

test('a statement command whose PREPARE was not captured is lost as unpreparedStatement; MariaDB id -1 passes', () => {
  const d = loggedIn();
  d.client(execute(5));
  assert.deepEqual(
    d.log.dropped.map((x) => x.reason),
    ['unpreparedStatement'],
  );
  d.client(cmd(0x16, 'SELECT 1'));
  const last = cmd(0x17, Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 1, 0, 0, 0]));
  d.client(last);
  assert.deepEqual(d.log.sent.at(-1), last, 'sent pipelined, before the target answered the PREPARE');
});

test('comparableReply (--compare bytes): the target PREPARE_OK gets production id when the module mapped the two; anything else stays as received', () => {
  const d = driver();
  replay(d, NODE, scramble(11));
  const mod = d.mod;
  assert.ok(mod.comparableReply !== undefined);
  const ps = packets(NODE);
  const ts = targetPackets(NODE, scramble(11));
  const oks = ps.flatMap((p, i) => (isPrepareOk(p, ps[i - 1], ps[i - 1]?.fromClient === true) ? [i] : []));
  assert.equal(oks.length, 3, 'three PREPAREs answered in the capture');
  for (const i of oks) {
    // the PREPARE_OK and the packet after it (a parameter or column definition), as one exchange's reply
    const on = Buffer.concat([wire(ps[i] as MysqlPacket), wire(ps[i + 1] as MysqlPacket)]);
    const tg = Buffer.concat([wire(ts[i] as MysqlPacket), wire(ts[i + 1] as MysqlPacket)]);
    assert.notDeepEqual(tg, on, 'the ids differ (production n, the target n + 10)');
    assert.deepEqual(mod.comparableReply(d.st, on, tg), on, `PREPARE_OK ${i}: the same once the mapped id is put back`);
    // a real difference after the id stays
    const other = Buffer.from(tg);
    other.writeUInt8((other.at(-1) as number) ^ 1, other.length - 1);
    assert.notDeepEqual(mod.comparableReply(d.st, on, other), on);
  }
  const first = oks[0] as number;
  const on = wire(ps[first] as MysqlPacket);
  const shifted = Buffer.from(wire(ts[first] as MysqlPacket));
  shifted.writeUInt32LE(shifted.readUInt32LE(5) + 1, 5);
  assert.deepEqual(
    mod.comparableReply(d.st, on, shifted),
    shifted,
    'ids the module did not map to each other: as received',
  );
  const err = encodePacket(1, Buffer.from([0xff, 0x28, 0x04, 0x23, ...Buffer.from('42000oops')]));
  assert.deepEqual(mod.comparableReply(d.st, on, err), err, 'an ERR: as received');
  assert.deepEqual(mod.comparableReply(d.st, err, on), on, "production's ERR: as received");
});
