import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClientMsgDecoder, encodeClientMsg, encodeHello, type ClientMsgHandler } from '../../../src/channel/client-msg';
import { CHANNEL_VERSION, MSG_CLIENT_ADD, MSG_CLIENT_DEL } from '../../../src/channel/constants';
import { parseIpv4 } from '../../../src/core/wire/segment';
import { hex } from './fixtures';

type Ev = ['hello', number] | ['client', number, number, number, number, number] | ['bad', number];

function recorder(): { h: ClientMsgHandler; ev: Ev[] } {
  const ev: Ev[] = [];
  return {
    ev,
    h: {
      hello: (v) => ev.push(['hello', v]),
      client: (t, a, b, c, d) => ev.push(['client', t, a, b, c, d]),
      bad: (t) => ev.push(['bad', t]),
    },
  };
}

const C = parseIpv4('198.18.1.5');
const T = parseIpv4('198.18.20.2');

test('hello, CLIENT_ADD and CLIENT_DEL encode to the fixture bytes', () => {
  const b = Buffer.alloc(14);
  assert.equal(encodeHello(b, 0), 14);
  assert.deepEqual(b, hex('hello.hex'));
  encodeClientMsg(b, 0, MSG_CLIENT_ADD, C, 40000, T, 8080);
  assert.deepEqual(b, hex('client-add.hex'));
  encodeClientMsg(b, 0, MSG_CLIENT_DEL, C, 40000, T, 8080);
  assert.deepEqual(b, hex('client-del.hex'));
});

test('decoder: fixture stream split at every pair of points gives the same messages', () => {
  const stream = Buffer.concat([hex('hello.hex'), hex('client-add.hex'), hex('client-del.hex')]);
  const want: Ev[] = [
    ['hello', CHANNEL_VERSION],
    ['client', 1, C, 40000, T, 8080],
    ['client', 2, C, 40000, T, 8080],
  ];
  for (let i = 0; i <= stream.length; i++) {
    for (let j = i; j <= stream.length; j++) {
      const { h, ev } = recorder();
      const d = new ClientMsgDecoder(h);
      assert.equal(d.feed(stream.subarray(0, i)), 'ok');
      assert.equal(d.feed(stream.subarray(i, j)), 'ok');
      assert.equal(d.feed(stream.subarray(j)), 'ok');
      assert.deepEqual(ev, want, `split ${i},${j}`);
    }
  }
  // byte by byte
  const { h, ev } = recorder();
  const d = new ClientMsgDecoder(h);
  for (let i = 0; i < stream.length; i++) d.feed(stream, i, 1);
  assert.deepEqual(ev, want);
  assert.equal(d.messages, 3);
});

test('decoder: a first message with an address is rejected (old tcpcopy without hello)', () => {
  const { h, ev } = recorder();
  const d = new ClientMsgDecoder(h);
  assert.equal(d.feed(hex('client-add.hex')), 'bad-hello');
  assert.equal(d.feed(hex('hello.hex')), 'bad-hello', 'stays dead');
  assert.deepEqual(ev, []);
  assert.equal(d.helloReceived, false);
});

test('decoder: another version is accepted (the caller warns)', () => {
  const b = Buffer.alloc(14);
  encodeHello(b, 0, 5);
  const { h, ev } = recorder();
  const d = new ClientMsgDecoder(h);
  assert.equal(d.feed(b), 'ok');
  assert.deepEqual(ev, [['hello', 5]]);
  assert.equal(d.helloReceived, true);
});

test('decoder: unknown types are reported, too many close the connection', () => {
  const { h, ev } = recorder();
  const d = new ClientMsgDecoder(h, 2);
  const b = Buffer.alloc(14 * 4);
  encodeHello(b, 0);
  encodeClientMsg(b, 14, 9, C, 1, T, 2);
  encodeClientMsg(b, 28, 9, C, 1, T, 2);
  encodeClientMsg(b, 42, 7, C, 1, T, 2);
  assert.equal(d.feed(b), 'too-many-bad');
  assert.deepEqual(ev, [
    ['hello', 6],
    ['bad', 9],
    ['bad', 9],
    ['bad', 7],
  ]);
});
