/**
 * The comparison fed by the engine's own delivery (src/core/engine-module.ts): the compare
 * module on a packet-scripted session, production's replies as captured server->client
 * packets (onOnlinePacket), the target's as channel v2 payloads (onReply), in pieces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Comparison } from '../../../src/compare/comparison';
import { compareConfig } from '../../../src/compare/config';
import { compareModule } from '../../../src/compare/module';
import { buildRules } from '../../../src/compare/rules';
import type { DiffLine } from '../../../src/compare/summary';
import { emitIpv4Tcp, newTcpRepr } from '../../../src/core/wire/build';
import { parseIpv4Tcp } from '../../../src/core/wire/decode';
import { newSegment, parseIpv4 } from '../../../src/core/wire/segment';
import { CLIENT, established, ONLINE, type Script } from '../core/script';

const buf = Buffer.alloc(4000);
const seg = newSegment();

/** The online server's captured packet to the client (seq in its space, ISN 5000). */
function online(t: Script, seq: number, flags: number, data: string): void {
  const r = newTcpRepr();
  r.srcIp = parseIpv4(ONLINE);
  r.dstIp = parseIpv4(CLIENT);
  r.srcPort = 80;
  r.dstPort = 40000;
  r.seq = seq;
  r.ack = 1001;
  r.flags = flags;
  r.window = 65535;
  r.ttl = 64;
  r.wscale = -1;
  const p = Buffer.from(data, 'latin1');
  const len = emitIpv4Tcp(r, p.length > 0 ? p : null, 0, p.length, buf, 0);
  assert.equal(parseIpv4Tcp(buf, 0, len, seg), 'ok');
  assert.equal(t.engine.onOnlinePacket(seg, t.now), true);
}

function resp(status: string, body: string, extra = ''): string {
  return `HTTP/1.1 ${status}\r\nServer: s\r\nDate: d${Math.random()}\r\nContent-Type: application/json\r\n${extra}Content-Length: ${body.length}\r\n\r\n${body}`;
}

test("the compare module on the engine: production's and the target's replies delivered in order, compared per exchange", () => {
  const lines: DiffLine[] = [];
  const cmp = new Comparison(compareConfig('http', buildRules()), (l) => lines.push(l));
  const t = established({ module: compareModule(cmp) });
  online(t, 5000, 0x12, ''); // production's SYN-ACK, captured: its stream starts at 5001
  assert.deepEqual(t.addedPayload, [true], 'compared sessions ask intercept for the target payload');
  const req = 'GET /users/7 HTTP/1.1\r\nHost: x\r\n\r\n';
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: req });
  t.take();
  const on = resp('200 OK', '{"id":7,"price":10}', 'X-V: 1\r\n');
  const tg = resp('200 OK', '{"id":7,"price":11}', 'X-V: 2\r\n');
  // production's answer in two packets, the second one first (reordered capture)
  const cut = 40;
  online(t, 5001 + cut, 0x18, on.slice(cut));
  online(t, 5001, 0x18, on.slice(0, cut));
  // the target's answer in three records with their payloads
  t.targetReplies({ seq: 90001, ack: 1001 + req.length, flags: 'A', data: tg.slice(0, 30) });
  t.targetReplies({ seq: 90031, ack: 1001 + req.length, flags: 'A', data: tg.slice(30, 60) });
  t.targetReplies({ seq: 90061, ack: 1001 + req.length, flags: 'PA', data: tg.slice(60) });
  t.take();
  t.engine.finish(t.now + 10);
  cmp.finish();
  const s = cmp.summary();
  assert.equal(s.totals.exchanges, 1);
  assert.equal(s.totals.different, 1);
  assert.deepEqual(
    s.endpoints[0]?.fields.map((f) => f.field),
    ['body:$.price', 'header:x-v'],
  );
  assert.equal(s.endpoints[0]?.endpoint, 'GET /users/:id');
  assert.equal(lines[0]?.request, 'GET /users/7');
});

test("a compared session's FIN waits for the target's answer, as a request would (not sent right after the request)", () => {
  const cmp = new Comparison(compareConfig('http', buildRules()), () => {});
  const t = established({ module: compareModule(cmp) });
  online(t, 5000, 0x12, '');
  const req = 'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n';
  t.clientSends({ seq: 1001, ack: 5001, flags: 'PA', data: req });
  assert.ok(
    t.take().some((p) => p.len === req.length),
    'the request goes out',
  );
  const on = resp('200 OK', '{"ok":1}');
  online(t, 5001, 0x18, on);
  // the client read production's answer and closed: its FIN acknowledges that answer
  t.clientSends({ seq: 1001 + req.length, ack: 5001 + on.length, flags: 'FA' });
  const fin = (ps: { flags: string }[]): boolean => ps.some((p) => p.flags.includes('F'));
  assert.equal(fin(t.take()), false, 'no FIN while the target has not answered (a slow server would see the close)');
  t.tick(250);
  assert.equal(fin(t.take()), false, 'still none 250 ms later');
  const tg = resp('200 OK', '{"ok":1}');
  t.targetReplies({ seq: 90001, ack: 1001 + req.length, flags: 'PA', data: tg });
  // (an answer shorter than production's: then closeQuietMs of silence, 500 ms, ends it)
  t.tick(600);
  assert.equal(fin(t.take()), true, 'the FIN follows the answer');
});
