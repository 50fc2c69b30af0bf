/**
 * RESP framing on real redis-server 7.0 bytes (test/fixtures/redis): every captured client
 * stream cut into its commands whatever the chunking, every server stream counted as one reply
 * per command (RESP2 and RESP3: HELLO's map, an empty map, a 3000-byte bulk), also when
 * intercept's payload cap leaves a bulk's body out; framing lost when it cuts a header.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReplyFramer, argIs, buildCommand, commandArgs, commandLength } from '../../../../src/modules/redis/resp';
import { connections, segments, stream, TARGET_PORT } from './capture';

const ALL = [...connections(), ...connections(TARGET_PORT)];

/** The commands of a client stream, framed from `chunk`-byte pieces as they arrive. */
function frameAll(b: Buffer, chunk: number): Buffer[] {
  const out: Buffer[] = [];
  let pending = Buffer.alloc(0);
  for (let o = 0; o < b.length; o += chunk) {
    pending = Buffer.concat([pending, b.subarray(o, o + chunk)]);
    for (;;) {
      const n = commandLength(pending, 0, pending.length);
      assert.ok(n >= 0, `not a command: ${JSON.stringify(pending.toString('latin1').slice(0, 40))}`);
      if (n === 0) break;
      out.push(pending.subarray(0, n));
      pending = pending.subarray(n);
    }
  }
  assert.equal(pending.length, 0);
  return out;
}

function countReplies(parts: { data: Buffer; missing: number }[]): { types: string; lost: boolean } {
  let types = '';
  const f = new ReplyFramer((t) => (types += String.fromCharCode(t)));
  for (const p of parts) f.feed(p.data, p.missing);
  return { types, lost: f.lost };
}

test('every captured client stream frames into the same commands in any chunking; one reply each', () => {
  assert.equal(ALL.length, 10);
  for (const c of ALL) {
    const client = stream(c, true);
    const whole = frameAll(client, client.length);
    for (const chunk of [1, 2, 3, 7, 64]) assert.deepEqual(frameAll(client, chunk), whole);
    assert.equal(Buffer.concat(whole).length, client.length);
    const server = stream(c, false);
    for (const chunk of [1, 5, server.length]) {
      const parts = [];
      for (let o = 0; o < server.length; o += chunk) parts.push({ data: server.subarray(o, o + chunk), missing: 0 });
      const r = countReplies(parts);
      assert.equal(r.lost, false);
      assert.equal(r.types.length, whole.length, `port ${c.clientPort}: ${r.types}`);
    }
  }
  // the HELLO 3 session: a map, +PONG, +OK, a bulk, then SELECT/INCR/HGETALL (an empty RESP3 map), QUIT
  const hello = connections()[3];
  assert.ok(hello);
  assert.equal(countReplies([{ data: stream(hello, false), missing: 0 }]).types, '%++$+:%+');
});

test("intercept's payload cap: a bulk body left out is skipped; a cut header loses the framing", () => {
  const hello = connections()[3];
  assert.ok(hello);
  const cap = 1024;
  const parts = segments(hello, false).map((b) => ({ data: b.subarray(0, cap), missing: Math.max(0, b.length - cap) }));
  assert.ok(parts.some((p) => p.missing > 0));
  assert.equal(countReplies(parts).types, '%++$+:%+');
  // the HELLO map cut after 20 bytes: its later elements' headers are missing
  const small = segments(hello, false).map((b) => ({ data: b.subarray(0, 20), missing: Math.max(0, b.length - 20) }));
  const r = countReplies(small);
  assert.equal(r.lost, true);
  assert.equal(r.types, '');
});

test('RESP3 pushes and attributes are not replies; nulls and empty aggregates are', () => {
  const b = Buffer.from(
    '>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n' + // out-of-band push
      '|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*2\r\n:1\r\n:2\r\n' + // attribute, then the reply
      '*2\r\n|1\r\n+ttl\r\n:3600\r\n$1\r\nx\r\n$-1\r\n' + // an attribute inside an aggregate
      '_\r\n*-1\r\n*0\r\n~0\r\n#t\r\n=7\r\ntxt:abc\r\n!3\r\nERR\r\n(12345678901234567890\r\n',
  );
  for (const chunk of [1, 3, b.length]) {
    const parts = [];
    for (let o = 0; o < b.length; o += chunk) parts.push({ data: b.subarray(o, o + chunk), missing: 0 });
    assert.deepEqual(countReplies(parts), { types: '**_**~#=!(', lost: false });
  }
  assert.equal(countReplies([{ data: Buffer.from('?bad\r\n'), missing: 0 }]).lost, true);
});

test('client framing: inline commands, need-more, not-commands; arguments located', () => {
  assert.equal(commandLength(Buffer.from('PING\r\nPI'), 0, 8), 6);
  assert.equal(commandLength(Buffer.from('*2\r\n$4\r\nAUTH\r\n$2\r\npw'), 0, 20), 0);
  assert.equal(commandLength(Buffer.from('*2\r\n:4\r\n'), 0, 8), -1);
  assert.equal(commandLength(Buffer.from('*x\r\n'), 0, 4), -1);
  assert.equal(commandLength(Buffer.from('*1\r\n$4\r\nPINGxx'), 0, 14), -1);
  const cmd = buildCommand(['HELLO', '3', 'AUTH', 'app', 'p w']);
  assert.equal(commandLength(cmd, 0, cmd.length), cmd.length);
  const a: number[] = [];
  assert.equal(commandArgs(cmd, a), 5);
  assert.equal(cmd.toString('utf8', a[8], a[9]), 'p w');
  assert.ok(argIs(cmd, a[0] as number, a[1] as number, 'HELLO'));
  const inline = Buffer.from('auth  secret\r\n');
  assert.equal(commandArgs(inline, a), 2);
  assert.ok(argIs(inline, a[0] as number, a[1] as number, 'AUTH'));
  assert.equal(inline.toString('utf8', a[2], a[3]), 'secret');
});
