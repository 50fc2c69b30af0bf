/** The reply tracker: where replies start and end, with and without CLIENT_DEPRECATE_EOF, in any cut. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connections, packets, stream } from './capture';
import { encodePacket } from '../../../../src/modules/mysql/packet';
import { ReplyTracker, type ReplyKind } from '../../../../src/modules/mysql/replies';

function tracker(lazy = false): { t: ReplyTracker<string>; got: string[] } {
  const got: string[] = [];
  const t = new ReplyTracker<string>(
    {
      greeting: () => got.push('greeting'),
      auth: (p) => got.push(`auth:${(p.head[0] as number).toString(16)}`),
      prepared: (tag, ok) => got.push(`${tag}=${ok === null ? 'err' : ok.statementId}`),
      lost: () => got.push('lost'),
    },
    lazy,
  );
  return { t, got };
}
const pk = (seq: number, hex: string): Buffer => encodePacket(seq, Buffer.from(hex, 'hex'));
const COLDEF = '03646566' + '00'.repeat(20);
const prepOk = (id: number, cols: number, params: number): Buffer =>
  pk(
    1,
    `00${id.toString(16).padStart(2, '0')}000000${cols.toString(16).padStart(2, '0')}00${params.toString(16).padStart(2, '0')}00000000`,
  );

test('CLIENT_DEPRECATE_EOF result sets (no EOF after the columns, an 0xfe OK at the end) and classic ones', () => {
  const { t, got } = tracker();
  t.expect('result');
  t.expect('prepare', 'a');
  t.expect('result');
  t.expect('prepare', 'b');
  t.feed(
    Buffer.concat([
      // deprecate-EOF: 1 column, 2 rows, 0xfe OK (7 bytes)
      pk(1, '01'),
      pk(2, COLDEF),
      pk(3, '0161'),
      pk(4, '0162'),
      pk(5, 'fe000002000000'),
      // PREPARE_OK: 1 param, 1 column, deprecate-EOF: no EOFs
      prepOk(5, 1, 1),
      pk(2, COLDEF),
      pk(3, COLDEF),
      // classic: 1 column, EOF, a NULL row, EOF
      pk(1, '01'),
      pk(2, COLDEF),
      pk(3, 'fe00000200'),
      pk(4, 'fb'),
      pk(5, 'fe00000200'),
      prepOk(6, 0, 0),
    ]),
    0,
  );
  assert.deepEqual(got, ['a=5', 'b=6']);
});

test('multi-results (SERVER_MORE_RESULTS_EXISTS), LOCAL INFILE and an error end replies where they end', () => {
  const { t, got } = tracker();
  t.expect('result');
  t.expect('result');
  t.expect('result');
  t.expect('prepare', 'c');
  t.feed(
    Buffer.concat([
      pk(1, '0000000a000000'), // OK, more results
      pk(2, '01'),
      pk(3, COLDEF),
      pk(4, 'fe00000200'),
      pk(5, '0131'),
      pk(6, 'fe00000200'), // EOF, no more
      pk(1, 'fb2f746d702f78'), // LOCAL INFILE request; the client sends the file; then OK
      pk(3, '00010002000000'),
      pk(1, 'ff7a0423343230303062616420'), // an error
      prepOk(9, 0, 1),
      pk(2, COLDEF),
      pk(3, 'fe00000200'),
    ]),
    0,
  );
  assert.deepEqual(got, ['c=9']);
});

test('the mysql2 exchange of the capture, fed byte by byte: greeting, auth packets, the three PREPAREs', () => {
  const node = connections()[3] as ReturnType<typeof connections>[number];
  const kinds: [ReplyKind, string | null][] = [['greeting', null]];
  let k = 0;
  for (const p of packets(node).filter((x) => x.fromClient)) {
    const c = p.payload[0] as number;
    if (p.seq === 1) kinds.push(['auth', null]);
    else if (p.seq !== 0) continue;
    else if (c === 0x16) kinds.push(['prepare', `p${++k}`]);
    else if (c === 0x11) kinds.push(['auth', null]);
    else if (c !== 0x19 && c !== 0x01) kinds.push(['result', null]);
  }
  for (const step of [1, 5, 1000]) {
    const { t, got } = tracker();
    for (const [kind, tag] of kinds) t.expect(kind, tag);
    const s = stream(node, false);
    for (let o = 0; o < s.length; o += step) t.feed(s.subarray(o, o + step), 0);
    assert.deepEqual(got, ['greeting', 'auth:0', 'p1=1', 'p2=2', 'auth:fe', 'auth:0', 'p3=3'], `step ${step}`);
    assert.equal(t.expected, 0);
  }
  // lazy: the replies first, the commands after (the online stream of a client behind a held message)
  const { t, got } = tracker(true);
  t.feed(stream(node, false), 0);
  assert.deepEqual(got, []);
  for (const [kind, tag] of kinds) t.expect(kind, tag);
  // a queued reply reports its first packet only: the COM_CHANGE_USER's AuthSwitchRequest, not its OK
  assert.deepEqual(got, ['greeting', 'auth:0', 'p1=1', 'p2=2', 'auth:fe', 'p3=3']);
  assert.equal(t.queued, 0);
});

test('answered(): a reply is complete at its last packet (classic and CLIENT_DEPRECATE_EOF, PREPAREs, more results, LOCAL INFILE)', () => {
  const classic: [ReplyKind, Buffer[]][] = [
    // classic result set: the EOF after the definitions does not end it
    ['result', [pk(1, '01'), pk(2, COLDEF), pk(3, 'fe00000200'), pk(4, '0161'), pk(5, 'fe00000200')]],
    // PREPARE_OK with 1 param and 1 column, classic EOFs
    ['prepare', [prepOk(5, 1, 1), pk(2, COLDEF), pk(3, 'fe00000200'), pk(4, COLDEF), pk(5, 'fe00000200')]],
    // an OK announcing more results, then a result set
    ['result', [pk(1, '0000000a000000'), pk(2, '01'), pk(3, COLDEF), pk(4, 'fe00000200'), pk(5, 'fe00000200')]],
    // LOCAL INFILE: the request, then (after the client's data) the OK
    ['result', [pk(1, 'fb2f746d702f78'), pk(3, '00010002000000')]],
    ['result', [pk(1, 'ff7a0423343230303062616420')]],
    ['prepare', [prepOk(7, 0, 0)]],
  ];
  const deprecateEof: [ReplyKind, Buffer[]][] = [
    // no rows: the 0xfe OK right after the definitions ends it
    ['result', [pk(1, '01'), pk(2, COLDEF), pk(3, 'fe000002000000')]],
    ['result', [pk(1, '01'), pk(2, COLDEF), pk(3, '0161'), pk(4, 'fe000002000000')]],
    // PREPARE_OK with 2 params and 1 column: no EOFs
    ['prepare', [prepOk(6, 1, 2), pk(2, COLDEF), pk(3, COLDEF), pk(4, COLDEF)]],
  ];
  for (const steps of [classic, deprecateEof]) {
    const { t } = tracker();
    let sent = 0;
    for (const [kind, packets] of steps) {
      sent += 10;
      t.expect(kind, kind === 'prepare' ? 'x' : null, sent);
      assert.equal(t.answered(sent), false, `${kind}: not answered before its reply`);
      assert.equal(t.answered(sent - 10), true, 'earlier commands are answered');
      packets.forEach((b, i) => {
        t.feed(b, 0);
        const last = i === packets.length - 1;
        assert.equal(t.answered(sent), last, `${kind} packet ${i}: answered only after the last`);
      });
    }
    // lost: never answered
    t.expect('result', null, sent + 10);
    t.feed(pk(1, '01').subarray(0, 3), 100);
    assert.equal(t.lost, true);
    assert.equal(t.answered(sent + 10), false);
  }
});
