import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePluginConf, parseUserPassword } from '../../../../src/modules/mysql/users';
import { TcpcopyError } from '../../../../src/core/errors';

test('USER:PASSWORD splits at the first colon', () => {
  assert.deepEqual(parseUserPassword('app:se:cret'), { user: 'app', password: 'se:cret' });
  assert.deepEqual(parseUserPassword('app:'), { user: 'app', password: '' });
  for (const bad of ['app', ':pw', ''])
    assert.throws(
      () => parseUserPassword(bad),
      (e: unknown) =>
        e instanceof TcpcopyError && e.code === 'ERR_BAD_OPTION' && /expected USER:PASSWORD/.test(e.message),
    );
});

test("the original's plugin.conf: user u1@p1,u2@p2;", () => {
  const m = parsePluginConf(
    '# passwords of the mysql module\n\nuser root@123456, test@1@2 ;\nuser u3@;\r\nuser test@new\n',
  );
  assert.deepEqual(
    [...m],
    [
      ['root', '123456'],
      ['test', 'new'],
      ['u3', ''],
    ],
  );
  assert.throws(() => parsePluginConf('users a@b;'), /line 1: 'users a@b;': expected 'user u1@p1,u2@p2;'/);
  assert.throws(
    () => parsePluginConf('user a@b,nopass;', 'conf/plugin.conf'),
    /conf\/plugin.conf line 1: 'nopass': expected USER@PASSWORD/,
  );
});
