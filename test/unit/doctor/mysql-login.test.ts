/**
 * `tcpcopy doctor --module mysql`: the login exchange (pure LoginProbe) against the real
 * MariaDB packets of test/fixtures/mysql, the verdicts, and the option handling.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connections, packets } from '../modules/mysql/capture';
import { LoginProbe, checkMysqlLogin } from '../../../src/doctor/mysql-login';
import { runModuleChecks, takeModuleArgs } from '../../../src/doctor/module-doctor';
import { encodePacket, type MysqlPacket } from '../../../src/modules/mysql/packet';
import {
  isParseError,
  nativePasswordAnswer,
  parseGreeting,
  parseHandshakeResponse,
} from '../../../src/modules/mysql/handshake';
import { TcpcopyError } from '../../../src/core/errors';

const [CLI] = connections() as [ReturnType<typeof connections>[number]];
const GREETING = packets(CLI, 1)[0] as MysqlPacket;

test('the probe answers the greeting scramble with mysql_native_password, then quits on OK', () => {
  const p = new LoginProbe('u1', 'p1secret');
  const first = p.onPacket(GREETING);
  assert.equal(first.done, null);
  const sent = first.send as Buffer;
  assert.equal(sent[3], 1);
  const r = parseHandshakeResponse(sent.subarray(4));
  assert.ok(!isParseError(r));
  const g = parseGreeting(GREETING.payload);
  assert.ok(!isParseError(g));
  assert.equal(r.user, 'u1');
  assert.deepEqual(r.authResponse, nativePasswordAnswer('p1secret', g.scramble), 'what the real mariadb client sent');
  assert.deepEqual(
    r.authResponse,
    (parseHandshakeResponse((packets(CLI, 2)[1] as MysqlPacket).payload) as { authResponse: Buffer }).authResponse,
  );
  const ok = p.onPacket(packets(CLI, 3)[2] as MysqlPacket);
  assert.deepEqual(ok.done, { kind: 'ok', server: g.serverVersion, switched: false });
  assert.deepEqual(ok.send, encodePacket(0, Buffer.from([1])), 'COM_QUIT');
});

test('the probe follows an AuthSwitchRequest to mysql_native_password; other plugins and errors end it', () => {
  const sw = Buffer.concat([
    Buffer.from('\xfemysql_native_password\0', 'latin1'),
    Buffer.alloc(20, 0x41),
    Buffer.from([0]),
  ]);
  const p = new LoginProbe('u1', 'pw');
  p.onPacket(GREETING);
  const a = p.onPacket({ seq: 2, payload: sw });
  assert.deepEqual(a.send, encodePacket(3, nativePasswordAnswer('pw', Buffer.alloc(20, 0x41))));
  assert.equal(p.onPacket({ seq: 4, payload: Buffer.from('00000002000000', 'hex') }).done?.kind, 'ok');
  const q = new LoginProbe('u1', 'pw');
  q.onPacket(GREETING);
  assert.deepEqual(q.onPacket({ seq: 2, payload: Buffer.from('\xfeclient_ed25519\0', 'latin1') }).done, {
    kind: 'unsupportedAuth',
    server: (parseGreeting(GREETING.payload) as { serverVersion: string }).serverVersion,
    plugin: 'client_ed25519',
  });
  const e = new LoginProbe('u1', 'pw');
  e.onPacket(GREETING);
  const refused = e.onPacket({
    seq: 2,
    payload: Buffer.from("\xff\x15\x04#28000Access denied for user 'u1'@'198.18.0.1'", 'latin1'),
  }).done;
  assert.equal(refused?.kind, 'refused');
  const res = checkMysqlLogin('u1', '198.18.2.1:3306', refused);
  assert.equal(res.verdict, 'fail');
  assert.match(res.detail, /error 1045: Access denied for user 'u1'/);
  assert.match(res.fix ?? '', /check the password given for u1/);
  const busy = new LoginProbe('u1', 'pw').onPacket({
    seq: 0,
    payload: Buffer.from('\xff\x10\x04Too many connections', 'latin1'),
  });
  assert.deepEqual(busy.done, { kind: 'badGreeting', error: 'Too many connections' });
});

test('doctor options: --module mysql and its options are taken out, files read; checks per target and user', async () => {
  const { module, rest } = takeModuleArgs(
    ['-x', '3306-198.18.2.1:3306', '--module', 'mysql', '--mysql-user=u1:a', '--mysql-users', 'F', '-s', '198.18.3.1'],
    (f) => (f === 'F' ? 'user u2@b;\n' : assert.fail(f)),
  );
  assert.deepEqual(rest, ['-x', '3306-198.18.2.1:3306', '-s', '198.18.3.1']);
  assert.deepEqual(module?.opts, { 'mysql-user': ['u1:a'], 'mysql-users': ['user u2@b;\n'] });
  const tried: string[] = [];
  const results = await runModuleChecks(module, [{ host: '198.18.2.1', port: 3306 }], async (h, p, u, pw) => {
    tried.push(`${h}:${p} ${u}/${pw}`);
    return u === 'u1'
      ? { kind: 'ok', server: 'x', switched: false }
      : { kind: 'refused', server: 'x', code: 1045, message: 'denied' };
  });
  assert.deepEqual(tried, ['198.18.2.1:3306 u2/b', '198.18.2.1:3306 u1/a'], 'the file first, then --mysql-user');
  assert.deepEqual(
    results.map((r) => r.verdict),
    ['fail', 'ok'],
  );
  const none = await runModuleChecks({ ...module, opts: {} }, [{ host: 'h', port: 1 }], () => assert.fail());
  assert.equal(none[0]?.verdict, 'fail');
  assert.match(none[0]?.detail ?? '', /no users configured/);
  assert.throws(
    () => takeModuleArgs(['--mysql-user', 'a:b'], () => ''),
    (e: unknown) => e instanceof TcpcopyError && /need --module mysql/.test(e.message),
  );
  assert.throws(
    () => takeModuleArgs(['--module', 'redis'], () => ''),
    /--module redis: the doctor has checks for mysql only/,
  );
  assert.throws(
    () =>
      takeModuleArgs(['--module', 'mysql', '--mysql-users', '/nonexistent'], () => {
        throw new Error('ENOENT');
      }),
    /--mysql-users \/nonexistent: cannot read it: ENOENT/,
  );
  assert.equal(takeModuleArgs(['-x', '1-2.3.4.5:6'], () => '').module, null);
});
