/** Prepared statements: COM_STMT_PREPARE_OK and statement-id rewriting, from the real MariaDB exchange (mysql2). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connections, packets } from './capture';
import {
  COM_STMT_CLOSE,
  COM_STMT_EXECUTE,
  COM_STMT_FETCH,
  COM_STMT_PREPARE,
  COM_STMT_RESET,
  COM_STMT_SEND_LONG_DATA,
  StmtIdMap,
  STMT_ID_LAST_PREPARED,
  hasStatementId,
  parsePrepareOk,
  statementId,
} from '../../../../src/modules/mysql/stmt';

const NODE = connections()[3] as ReturnType<typeof connections>[number];
const PS = packets(NODE);

/** (statement SQL, PREPARE_OK) pairs of the capture, in order. */
function prepares(): { sql: string; ok: NonNullable<ReturnType<typeof parsePrepareOk>> }[] {
  const out: { sql: string; ok: NonNullable<ReturnType<typeof parsePrepareOk>> }[] = [];
  PS.forEach((p, i) => {
    if (!p.fromClient || p.payload[0] !== COM_STMT_PREPARE) return;
    const ok = parsePrepareOk((PS[i + 1] as (typeof PS)[number]).payload);
    assert.ok(ok !== null);
    out.push({ sql: p.payload.toString('utf8', 1), ok });
  });
  return out;
}

test('COM_STMT_PREPARE_OK of MariaDB: ids, columns, params', () => {
  assert.deepEqual(prepares(), [
    { sql: 'SELECT id, v FROM t WHERE id = ?', ok: { statementId: 1, columns: 2, params: 1, warnings: 0 } },
    { sql: 'UPDATE t SET v = ? WHERE id = ?', ok: { statementId: 2, columns: 0, params: 2, warnings: 0 } },
    { sql: 'SELECT v FROM t WHERE id = ?', ok: { statementId: 3, columns: 1, params: 1, warnings: 0 } },
  ]);
  assert.equal(parsePrepareOk(Buffer.from('ff2804233432303030', 'hex')), null, 'an error');
});

test('statement commands of the capture are rewritten to the target ids; the rest of the packet kept', () => {
  const map = new StmtIdMap();
  const seen: [number, number, string][] = [];
  // the target numbered the statements from 41
  for (const p of PS) {
    if (!p.fromClient) continue;
    const b = Buffer.from(p.payload);
    if (!hasStatementId(b)) {
      assert.equal(map.rewrite(b), 'unchanged');
      continue;
    }
    const before = statementId(b);
    if (map.get(before) === undefined && b[0] !== COM_STMT_CLOSE) map.set(before, before + 40);
    const v = map.rewrite(b);
    seen.push([b[0] as number, statementId(b), v]);
    assert.deepEqual(b.subarray(5), p.payload.subarray(5), 'parameters untouched');
    assert.equal(b.length, p.payload.length);
  }
  assert.deepEqual(seen, [
    [COM_STMT_EXECUTE, 41, 'rewritten'],
    [COM_STMT_EXECUTE, 41, 'rewritten'],
    [COM_STMT_EXECUTE, 42, 'rewritten'],
    [COM_STMT_CLOSE, 41, 'rewritten'],
    [COM_STMT_CLOSE, 1, 'unknown'], // mysql2 closes twice: the mapping is gone after the first
    [COM_STMT_CLOSE, 42, 'rewritten'],
    [COM_STMT_EXECUTE, 43, 'rewritten'],
  ]);
});

test('SEND_LONG_DATA, RESET, FETCH carry the id at offset 1 too; unknown ids, same ids, "last prepared" and eviction', () => {
  const map = new StmtIdMap(2);
  map.set(5, 9);
  const cmd = (c: number, id: number, rest: Buffer = Buffer.alloc(0)): Buffer => {
    const b = Buffer.alloc(5 + rest.length);
    b[0] = c;
    b.writeUInt32LE(id, 1);
    rest.copy(b, 5);
    return b;
  };
  for (const c of [COM_STMT_SEND_LONG_DATA, COM_STMT_RESET, COM_STMT_FETCH, COM_STMT_EXECUTE]) {
    const b = cmd(c, 5, Buffer.from('0100abcdef', 'hex'));
    assert.equal(map.rewrite(b), 'rewritten');
    assert.equal(statementId(b), 9);
    assert.equal(b.subarray(5).toString('hex'), '0100abcdef');
    assert.equal(map.rewrite(cmd(c, 6)), 'unknown');
  }
  assert.equal(map.rewrite(cmd(COM_STMT_EXECUTE, STMT_ID_LAST_PREPARED)), 'unchanged');
  map.set(7, 7);
  assert.equal(map.rewrite(cmd(COM_STMT_EXECUTE, 7)), 'unchanged');
  map.set(8, 1);
  assert.equal(map.size, 2);
  assert.equal(map.evicted, 1);
  assert.equal(map.get(5), undefined, 'the oldest went');
  assert.equal(hasStatementId(Buffer.from([COM_STMT_EXECUTE, 1, 0])), false, 'too short');
});
