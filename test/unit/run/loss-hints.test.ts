import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lossHints } from '../../../src/run/loss-hints';
import { newEngineStats } from '../../../src/core/stats';

const mysql = [{ onlinePort: 3306, targetPort: 3306 }];

test('lossHints: sessions of port 3306 reset by the target without a module are explained as refused logins', () => {
  const e = newEngineStats();
  assert.deepEqual(lossHints(e, mysql, null), [], 'nothing lost: no hint');
  e.outcomes.targetReset = 4;
  e.requestsLost.targetReset = 51;
  const h = lossHints(e, mysql, null);
  assert.equal(h.length, 1);
  assert.match(
    h[0] ?? '',
    /^4 sessions \(51 requests\) reset by the target \(targetReset\) on a transfer of port 3306 \(MySQL\)/,
  );
  assert.match(h[0] ?? '', /logins refused.*--module mysql --mysql-user USER:PASSWORD$/);
  // the target port alone counts too (-x 13306-target:3306), and one session reads in the singular
  e.outcomes.targetReset = 1;
  e.requestsLost.targetReset = 1;
  assert.match(lossHints(e, [{ onlinePort: 13306, targetPort: 3306 }], null)[0] ?? '', /^1 session \(1 request\)/);
});

test('lossHints: silent with a module, on other ports, and when the resets lost nothing', () => {
  const e = newEngineStats();
  e.outcomes.targetReset = 4;
  e.requestsLost.targetReset = 51;
  assert.deepEqual(lossHints(e, mysql, 'mysql'), []);
  assert.deepEqual(lossHints(e, [{ onlinePort: 80, targetPort: 8080 }], null), []);
  e.requestsLost.targetReset = 0;
  assert.deepEqual(lossHints(e, mysql, null), []);
});
