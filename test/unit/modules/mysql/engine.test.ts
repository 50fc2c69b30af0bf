/**
 * The mysql module in the real engine (src/core), not the scripted driver: a captured login
 * of the MariaDB fixture replayed to a target whose greeting has another scramble; the engine
 * sends what the module rebuilt, in its mapped sequence space, and the query after the OK.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { established } from '../../core/script';
import { connections, packets } from './capture';
import { mysqlModule, regreet, scramble, wire } from './script';
import { type MysqlPacket } from '../../../../src/modules/mysql/packet';
import { isParseError, nativePasswordAnswer, parseHandshakeResponse } from '../../../../src/modules/mysql/handshake';

test('engine + mysql module: the login answers the target scramble, the query follows the OK', () => {
  const [greet, resp, ok, query] = packets(connections()[0] as ReturnType<typeof connections>[number]) as unknown as [
    MysqlPacket,
    MysqlPacket,
    MysqlPacket,
    MysqlPacket,
  ];
  const t = established({ module: mysqlModule() });
  const s = scramble(30);
  const g = wire({ seq: 0, payload: regreet(greet.payload, s) });
  t.targetReplies({ seq: 90001, ack: 1001, flags: 'PA', data: g.toString('latin1') });
  t.take();
  const r = wire(resp);
  t.clientSends({ seq: 1001, ack: 5001 + g.length, flags: 'PA', data: r.toString('latin1') });
  const sent = t.take().filter((e) => e.len > 0);
  assert.equal(sent.length, 1);
  const data = Buffer.from(sent[0]?.data ?? '', 'latin1');
  assert.equal(sent[0]?.seq, 1001);
  const parsed = parseHandshakeResponse(data.subarray(4));
  assert.ok(!isParseError(parsed));
  assert.deepEqual(parsed.authResponse, nativePasswordAnswer('p1secret', s));
  const o = wire(ok);
  t.targetReplies({ seq: 90001 + g.length, ack: 1001 + data.length, flags: 'PA', data: o.toString('latin1') });
  t.take();
  const q = wire(query);
  t.clientSends({ seq: 1001 + r.length, ack: 5001 + g.length + o.length, flags: 'PA', data: q.toString('latin1') });
  const qs = t.take().filter((e) => e.len > 0);
  assert.deepEqual(
    qs.map((e) => [e.seq, e.data]),
    [[1001 + data.length, q.toString('latin1')]],
  );
  assert.equal(t.engine.stats.module?.counters['loginsRedone'], 1);
});
