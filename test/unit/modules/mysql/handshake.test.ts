/**
 * The MySQL login codecs against a real MariaDB 10.11 exchange (test/fixtures/mysql): the
 * mariadb command-line client (plain, asking for client_ed25519 so the server switches, and
 * compressed) and mysql2 (prepared statements and COM_CHANGE_USER).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connections, packets, stream } from './capture';
import {
  PacketFramer,
  encodeLenEnc,
  encodePacket,
  readLenEnc,
  type MysqlPacket,
} from '../../../../src/modules/mysql/packet';
import {
  CLIENT_COMPRESS,
  CLIENT_PLUGIN_AUTH,
  CLIENT_SECURE_CONNECTION,
  CLIENT_SSL,
  NATIVE_PASSWORD,
  authSwitchResponse,
  isParseError,
  isSslRequest,
  nativePasswordAnswer,
  negotiatedCompression,
  parseAuthSwitch,
  parseChangeUser,
  parseGreeting,
  parseHandshakeResponse,
  rebuildChangeUser,
  rebuildHandshakeResponse,
  type Greeting,
  type HandshakeResponse,
} from '../../../../src/modules/mysql/handshake';

const CONNS = connections();
const [CLI, SWITCH, COMPRESSED, NODE] = CONNS as [
  (typeof CONNS)[0],
  (typeof CONNS)[0],
  (typeof CONNS)[0],
  (typeof CONNS)[0],
];
const PASSWORDS: Record<string, string> = { u1: 'p1secret', u2: 'p2other' };

function greeting(c: typeof CLI): Greeting {
  const g = parseGreeting((packets(c, 1)[0] as MysqlPacket).payload);
  assert.ok(!isParseError(g), JSON.stringify(g));
  return g;
}
function response(c: typeof CLI): { p: MysqlPacket; r: HandshakeResponse } {
  const p = packets(c, 2)[1] as MysqlPacket;
  const r = parseHandshakeResponse(p.payload);
  assert.ok(!isParseError(r), JSON.stringify(r));
  return { p, r };
}

test('the capture holds the four connections', () => {
  assert.equal(CONNS.length, 4);
});

test('packet framing: each direction split at every byte gives the same packets', () => {
  for (const fromClient of [true, false]) {
    const s = stream(NODE, fromClient);
    const whole: MysqlPacket[] = [];
    new PacketFramer().feed(s, (p) => whole.push(p));
    assert.ok(whole.length > 10);
    assert.deepEqual(
      Buffer.concat(whole.map((p) => encodePacket(p.seq, p.payload))),
      s,
      're-encoding gives the stream',
    );
    for (const step of [1, 3, 7, 64]) {
      const got: MysqlPacket[] = [];
      const f = new PacketFramer();
      for (let i = 0; i < s.length; i += step)
        assert.equal(
          f.feed(s.subarray(i, i + step), (p) => got.push(p)),
          'ok',
        );
      assert.deepEqual(got, whole);
      assert.equal(f.buffered, 0);
    }
  }
  const f = new PacketFramer(100);
  assert.equal(
    f.feed(Buffer.from([101, 0, 0, 0]), () => assert.fail()),
    'too-large',
  );
  assert.equal(
    f.feed(encodePacket(0, Buffer.alloc(1)), () => assert.fail()),
    'too-large',
    'stays dead',
  );
});

test('length-encoded integers', () => {
  for (const n of [0, 250, 251, 0xffff, 0x10000, 0xffffff, 0x1000000, 2 ** 40]) {
    const e = encodeLenEnc(n);
    assert.deepEqual(readLenEnc(e, 0), { value: n, bytes: e.length });
    assert.equal(readLenEnc(e.subarray(0, e.length - 1), 0), e.length === 1 ? null : null);
  }
  assert.equal(readLenEnc(Buffer.from([0xfb]), 0), null);
  assert.equal(readLenEnc(Buffer.from([0xff]), 0), null);
});

test('greeting (HandshakeV10) of MariaDB 10.11: scramble 8 + 12, capabilities, plugin', () => {
  const g = greeting(CLI);
  assert.match(g.serverVersion, /^5\.5\.5-10\.11\.\d+-MariaDB/, 'MariaDB 10.11 behind the 5.5.5- prefix');
  assert.equal(g.scramble.length, 20);
  assert.equal(g.authPlugin, NATIVE_PASSWORD);
  assert.ok((g.capabilities & CLIENT_PLUGIN_AUTH) !== 0 && (g.capabilities & CLIENT_SECURE_CONNECTION) !== 0);
  assert.equal(g.capabilities & CLIENT_SSL, 0, 'the fixture server has no TLS');
  assert.ok(g.mariadbCapabilities !== 0, 'MariaDB announces its extended capabilities');
  const raw = (packets(CLI, 1)[0] as MysqlPacket).payload;
  const at = raw.indexOf(0, 1) + 1 + 4;
  assert.deepEqual(g.scramble.subarray(0, 8), raw.subarray(at, at + 8), 'part 1 as on the wire');
  // each connection has its own scramble
  const others = [SWITCH, COMPRESSED, NODE].map((c) => greeting(c).scramble.toString('hex'));
  assert.equal(new Set([g.scramble.toString('hex'), ...others]).size, 4);
  assert.ok(isParseError(parseGreeting(Buffer.from([0xff, 0x15, 0x04]))));
  assert.ok(isParseError(parseGreeting(raw.subarray(0, 30))));
});

test('HandshakeResponse41 of real clients: user, database, plugin; the answer is our mysql_native_password formula', () => {
  for (const c of [CLI, NODE, COMPRESSED]) {
    const g = greeting(c);
    const { p, r } = response(c);
    assert.equal(p.seq, 1);
    assert.equal(r.user, 'u1');
    assert.equal(r.database, 'fx');
    assert.equal(r.authPlugin, NATIVE_PASSWORD);
    assert.deepEqual(r.authResponse, nativePasswordAnswer('p1secret', g.scramble), 'the real client computed the same');
    assert.equal(isSslRequest(p.payload), false);
  }
  assert.deepEqual(nativePasswordAnswer('', greeting(CLI).scramble), Buffer.alloc(0));
});

test('rebuild: with the capture own scramble byte-exact; with another scramble only the answer changes', () => {
  for (const c of [CLI, NODE, COMPRESSED]) {
    const { p, r } = response(c);
    assert.deepEqual(rebuildHandshakeResponse(p.payload, r, 'p1secret', greeting(c).scramble), p.payload);
    const other = greeting(c === CLI ? NODE : CLI).scramble;
    const nb = rebuildHandshakeResponse(p.payload, r, 'p1secret', other);
    assert.equal(nb.length, p.payload.length, 'same length (20-byte answer)');
    const r2 = parseHandshakeResponse(nb);
    assert.ok(!isParseError(r2));
    assert.deepEqual(r2.authResponse, nativePasswordAnswer('p1secret', other));
    assert.deepEqual({ ...r2, authResponse: null }, { ...r, authResponse: null });
    assert.deepEqual(nb.subarray(0, r.authStart), p.payload.subarray(0, r.authStart));
    assert.deepEqual(nb.subarray(r.authEnd), p.payload.subarray(r.authEnd));
    const framed = encodePacket(p.seq, nb);
    assert.equal(framed.readUIntLE(0, 3), nb.length);
    assert.equal(framed[3], 1);
  }
});

test('AuthSwitchRequest: a client asking for client_ed25519 is switched to mysql_native_password; our answer is the client one', () => {
  const g = greeting(SWITCH);
  const ps = packets(SWITCH, 5);
  const { r } = response(SWITCH);
  assert.equal(r.authPlugin, 'client_ed25519');
  assert.equal(r.authResponse.length, 0);
  const sw = ps[2] as (typeof ps)[number];
  assert.equal(sw.fromClient, false);
  const a = parseAuthSwitch(sw.payload);
  assert.ok(a !== null);
  assert.equal(a.plugin, NATIVE_PASSWORD);
  assert.equal(a.data.length, 20);
  assert.deepEqual(a.data, g.scramble, 'MariaDB switches with the greeting scramble');
  const answer = ps[3] as MysqlPacket;
  assert.deepEqual(authSwitchResponse(sw.seq, 'p1secret', a.data), encodePacket(answer.seq, answer.payload));
  assert.equal((ps[4] as MysqlPacket).payload[0], 0x00, 'then OK');
  // the rebuilt response asks for mysql_native_password directly, with the answer (longer packet)
  const p = (ps[1] as MysqlPacket).payload;
  const nb = rebuildHandshakeResponse(p, r, 'p1secret', g.scramble);
  const r2 = parseHandshakeResponse(nb);
  assert.ok(!isParseError(r2));
  assert.equal(r2.authPlugin, NATIVE_PASSWORD);
  assert.equal(r2.database, 'fx');
  assert.deepEqual(r2.authResponse, nativePasswordAnswer('p1secret', g.scramble));
  assert.equal(nb.length, p.length + 20 - ('client_ed25519'.length - NATIVE_PASSWORD.length));
  assert.deepEqual(
    nb.subarray(nb.length - (p.length - r.authEnd - 3 - 'client_ed25519'.length - 1)),
    p.subarray(r.authEnd + 3 + 15),
    'attributes kept',
  );
  // an OK, an error and a short EOF are not switches
  assert.equal(parseAuthSwitch(Buffer.from('0000000240000000', 'hex')), null);
  assert.equal(parseAuthSwitch(Buffer.from([0xfe])), null);
});

test('compression and TLS are detected', () => {
  for (const c of [CLI, SWITCH, NODE, COMPRESSED]) {
    const { r } = response(c);
    assert.equal(negotiatedCompression(greeting(c), r), c === COMPRESSED);
  }
  assert.ok((response(COMPRESSED).r.capabilities & CLIENT_COMPRESS) !== 0);
  // an SSLRequest: the first 32 bytes of a response with CLIENT_SSL
  const ssl = Buffer.from(response(CLI).p.payload.subarray(0, 32));
  ssl.writeUInt32LE(ssl.readUInt32LE(0) | CLIENT_SSL, 0);
  assert.equal(isSslRequest(ssl), true);
  assert.ok(isParseError(parseHandshakeResponse(ssl)));
});

test('COM_CHANGE_USER (mysql2): parsed, our answer is the client one, rebuilt byte-exact and for another scramble', () => {
  const ps = packets(NODE);
  const { r } = response(NODE);
  const g = greeting(NODE);
  const i = ps.findIndex((p) => p.fromClient && p.payload[0] === 0x11);
  assert.ok(i > 0);
  const p = (ps[i] as MysqlPacket).payload;
  const cu = parseChangeUser(p, r.capabilities);
  assert.ok(!isParseError(cu), JSON.stringify(cu));
  assert.equal(cu.user, 'u2');
  assert.equal(cu.database, 'fx');
  assert.equal(cu.authPlugin, NATIVE_PASSWORD);
  assert.deepEqual(cu.authResponse, nativePasswordAnswer(PASSWORDS.u2 as string, g.scramble));
  assert.deepEqual(rebuildChangeUser(p, cu, r.capabilities, 'p2other', g.scramble), p);
  const other = greeting(CLI).scramble;
  const nb = rebuildChangeUser(p, cu, r.capabilities, 'p2other', other);
  const cu2 = parseChangeUser(nb, r.capabilities);
  assert.ok(!isParseError(cu2));
  assert.deepEqual(cu2.authResponse, nativePasswordAnswer('p2other', other));
  assert.deepEqual({ ...cu2, authResponse: null }, { ...cu, authResponse: null });
  // the server answered with an AuthSwitchRequest; the client's answer is ours
  const sw = ps[i + 1] as MysqlPacket;
  const a = parseAuthSwitch(sw.payload);
  assert.ok(a !== null && a.plugin === NATIVE_PASSWORD);
  const ans = ps[i + 2] as MysqlPacket;
  assert.deepEqual(authSwitchResponse(sw.seq, 'p2other', a.data), encodePacket(ans.seq, ans.payload));
  assert.equal((ps[i + 3] as MysqlPacket).payload[0], 0x00);
  assert.ok(isParseError(parseChangeUser(Buffer.from([0x03, 0x41]), r.capabilities)));
});
