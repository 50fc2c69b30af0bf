/**
 * Fuzz targets of the tcpcopy <-> intercept channel (src/channel/), both directions and both
 * versions: the 14-byte client messages (intercept reads them), the frames of reply records
 * (tcpcopy reads them; 64/192-byte 1.x and 88-byte v2 records), the v2 handshake (tcpcopy's
 * side), and intercept's core fed hostile peers and replies. Stream codecs must give the same
 * result for any chunking; encoders and decoders must round-trip.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ClientMsgDecoder, encodeClientMsg, encodeHello, type ClientMsgVerdict } from '../../src/channel/client-msg';
import { CLIENT_MSG_BYTES, MSG_CLIENT_ADD, MSG_CLIENT_DEL, type FrameRecordBytes } from '../../src/channel/constants';
import { FrameDecoder, FrameEncoder, type FrameVerdict } from '../../src/channel/frame';
import {
  clientProof,
  serverMsg,
  serverProof,
  V2_CHALLENGE,
  V2_NO,
  V2_OK,
  V2ClientHandshake,
  type V2ClientStep,
} from '../../src/channel/v2';
import { emitIpv4Tcp, newTcpRepr } from '../../src/core/wire/build';
import { parseIpv4Tcp } from '../../src/core/wire/decode';
import { newSegment } from '../../src/core/wire/segment';
import { InterceptCore, type Peer } from '../../src/intercept/core';
import { chunkBounds, cutsArb, target, type FuzzTarget } from './target';

const u32 = fc.nat({ max: 0xffffffff });
const u16 = fc.nat({ max: 0xffff });

/** Feeds `buf` to `feed` in the chunks `cuts` give; stops at the first verdict other than 'ok'. */
function feedChunks<V extends string>(
  buf: Buffer,
  cuts: readonly number[],
  feed: (b: Buffer, off: number, len: number) => V,
): V {
  let v = 'ok' as V;
  for (const [a, b] of chunkBounds(buf.length, cuts)) {
    // a copy per chunk: a decoder must not keep a view of a chunk past the call
    const chunk = Buffer.from(buf.subarray(a, b));
    v = feed(chunk, 0, chunk.length);
    chunk.fill(0xee);
    if (v !== 'ok') break;
  }
  return v;
}

// ---- client messages (tcpcopy -> intercept) ----

type MsgEvent = string;
function clientMsgRun(
  buf: Buffer,
  cuts: readonly number[],
  maxBad: number,
): { ev: MsgEvent[]; v: ClientMsgVerdict; n: number } {
  const ev: MsgEvent[] = [];
  const d = new ClientMsgDecoder(
    {
      hello: (v) => ev.push(`hello ${v}`),
      client: (t, ci, cp, ti, tp) => ev.push(`client ${t} ${ci}:${cp} ${ti}:${tp}`),
      bad: (t) => ev.push(`bad ${t}`),
    },
    maxBad,
  );
  const v = feedChunks(buf, cuts, (b, o, l) => d.feed(b, o, l));
  assert.ok(d.messages <= Math.floor(buf.length / CLIENT_MSG_BYTES), 'no more messages than 14-byte units');
  assert.equal(ev.length, d.messages);
  if (v !== 'ok') assert.equal(d.feed(Buffer.alloc(CLIENT_MSG_BYTES)), v, 'a dead stream stays dead');
  return { ev, v, n: d.messages };
}

interface ClientMsgModel {
  version: number;
  msgs: { type: number; ci: number; cp: number; ti: number; tp: number }[];
}
const clientMsgModelArb: fc.Arbitrary<ClientMsgModel> = fc.record({
  version: u16,
  msgs: fc.array(
    fc.record({
      type: fc.oneof(fc.constantFrom(MSG_CLIENT_ADD, MSG_CLIENT_DEL), u16),
      ci: u32,
      cp: u16,
      ti: u32,
      tp: u16,
    }),
    { maxLength: 30 },
  ),
});
function encodeClientMsgs(m: ClientMsgModel): Buffer {
  const b = Buffer.alloc(CLIENT_MSG_BYTES * (1 + m.msgs.length));
  let o = encodeHello(b, 0, m.version);
  for (const x of m.msgs) o = encodeClientMsg(b, o, x.type, x.ci, x.cp, x.ti, x.tp);
  return b;
}

const clientMsgStream: FuzzTarget<{
  model: ClientMsgModel;
  hostile: Uint8Array | null;
  cuts: number[];
  maxBad: number;
}> = {
  name: 'client-msg-stream',
  says: 'client messages: encode -> decode = messages; hostile bytes never throw; any chunking = one chunk',
  arb: fc.record({
    model: clientMsgModelArb,
    hostile: fc.option(fc.uint8Array({ maxLength: 300 }), { nil: null }),
    cuts: cutsArb,
    maxBad: fc.nat({ max: 40 }),
  }),
  unitRuns: 300,
  check({ model, hostile, cuts, maxBad }) {
    const buf = hostile !== null ? Buffer.from(hostile) : encodeClientMsgs(model);
    const whole = clientMsgRun(buf, [], maxBad);
    const parts = clientMsgRun(buf, cuts, maxBad);
    assert.deepEqual(parts, whole, 'chunked = whole');
    if (hostile !== null) return;
    // the round trip: every message back, unknown types reported until maxBad is passed
    const want: string[] = [`hello ${model.version}`];
    let bad = 0;
    let verdict: ClientMsgVerdict = 'ok';
    for (const x of model.msgs) {
      if (x.type === MSG_CLIENT_ADD || x.type === MSG_CLIENT_DEL)
        want.push(`client ${x.type} ${x.ci}:${x.cp} ${x.ti}:${x.tp}`);
      else {
        want.push(`bad ${x.type}`);
        if (++bad > maxBad) {
          verdict = 'too-many-bad';
          break;
        }
      }
    }
    assert.deepEqual(whole.ev, want);
    assert.equal(whole.v, verdict);
  },
};

// ---- frames of records (intercept -> tcpcopy) ----

function frameRun(
  rb: FrameRecordBytes,
  buf: Buffer,
  cuts: readonly number[],
): { recs: string[]; v: FrameVerdict; frames: number; badCount: number } {
  const recs: string[] = [];
  const d = new FrameDecoder(rb, (b, off, len) => {
    assert.equal(len, rb);
    assert.ok(off >= 0 && off + len <= b.length, 'record inside its buffer');
    recs.push(b.toString('hex', off, off + len));
  });
  const v = feedChunks(buf, cuts, (b, o, l) => d.feed(b, o, l));
  assert.ok(recs.length <= Math.floor(buf.length / rb), 'no more records than the bytes hold');
  assert.ok(d.frames <= Math.ceil(buf.length / 2), 'no more frames than count fields');
  if (v !== 'ok') assert.equal(d.feed(Buffer.alloc(4)), v, 'a dead stream stays dead');
  return { recs, v, frames: d.frames, badCount: d.badCount };
}

const recordBytesArb = fc.constantFrom<FrameRecordBytes>(64, 192, 88);

const frameStream: FuzzTarget<{
  rb: FrameRecordBytes;
  hostile: Uint8Array | null;
  records: Uint8Array[];
  takes: number[];
  maxBytes: number;
  cuts: number[];
}> = {
  name: 'frame-stream',
  says: 'record frames (64/192/88): FrameEncoder -> FrameDecoder = records kept; hostile bytes never throw; any chunking = one chunk',
  arb: fc.record({
    rb: recordBytesArb,
    hostile: fc.option(fc.uint8Array({ maxLength: 1200 }), { nil: null }),
    records: fc.array(fc.uint8Array({ minLength: 1, maxLength: 192 }), { maxLength: 40 }),
    takes: fc.array(fc.nat({ max: 40 }), { maxLength: 5 }),
    maxBytes: fc.oneof(fc.constant(4 << 20), fc.integer({ min: 0, max: 3000 })),
    cuts: cutsArb,
  }),
  unitRuns: 200,
  check({ rb, hostile, records, takes, maxBytes, cuts }) {
    if (hostile !== null) {
      const buf = Buffer.from(hostile);
      assert.deepEqual(frameRun(rb, buf, cuts), frameRun(rb, buf, []), 'chunked = whole');
      return;
    }
    const enc = new FrameEncoder(rb, maxBytes);
    const kept: string[] = [];
    const out: Buffer[] = [];
    const takeAt = new Set(takes);
    records.forEach((r, i) => {
      const rec = Buffer.alloc(rb);
      Buffer.from(r).copy(rec);
      if (enc.addRecord(rec, 0)) kept.push(rec.toString('hex'));
      assert.ok(enc.pendingBytes <= maxBytes, 'never holds more than maxBytes');
      if (takeAt.has(i)) {
        const t = enc.take();
        if (t) out.push(t);
      }
    });
    const t = enc.take();
    if (t) out.push(t);
    assert.equal(enc.dropped, records.length - kept.length);
    const stream = Buffer.concat(out);
    const got = frameRun(rb, stream, cuts);
    assert.equal(got.v, 'ok');
    assert.deepEqual(got.recs, kept);
  },
};

// ---- channel v2 handshake (tcpcopy's side) ----

/** Feeds the server's bytes in chunks as channel-conn does: after 'send', go on with what is held. */
function handshakeRun(
  h: V2ClientHandshake,
  buf: Buffer,
  cuts: readonly number[],
): { sent: string[]; end: V2ClientStep } {
  const sent: string[] = [];
  let step: V2ClientStep = { kind: 'wait' };
  for (const [a, b] of chunkBounds(buf.length, cuts)) {
    step = h.feed(Buffer.from(buf.subarray(a, b)));
    let guard = 0;
    while (step.kind === 'send') {
      assert.ok(++guard <= 2, 'at most one response per handshake');
      sent.push(step.bytes.toString('hex'));
      step = h.feed(Buffer.alloc(0));
    }
    if (step.kind !== 'wait') break;
  }
  return { sent, end: step };
}

const v2Handshake: FuzzTarget<{
  secret: Uint8Array;
  nonceS: Uint8Array;
  nonceC: Uint8Array;
  result: 'ok' | 'no' | 'badproof' | 'nosecret';
  rest: Uint8Array;
  hostile: Uint8Array | null;
  cuts: number[];
}> = {
  name: 'v2-handshake',
  says: 'channel v2 handshake: challenge + result in any chunking -> the right proof and verdict, the frame bytes after it kept; hostile bytes never throw',
  arb: fc.record({
    secret: fc.uint8Array({ minLength: 16, maxLength: 64 }),
    nonceS: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    nonceC: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    result: fc.constantFrom('ok' as const, 'no' as const, 'badproof' as const, 'nosecret' as const),
    rest: fc.uint8Array({ maxLength: 200 }),
    hostile: fc.option(fc.uint8Array({ maxLength: 200 }), { nil: null }),
    cuts: cutsArb,
  }),
  unitRuns: 150,
  check({ secret, nonceS, nonceC, result, rest, hostile, cuts }) {
    const sec = Buffer.from(secret);
    const nS = Buffer.from(nonceS);
    const nC = Buffer.from(nonceC);
    if (hostile !== null) {
      // after a well-formed challenge or from the start: anything the server sends ends in a step
      const pre = (hostile[0] ?? 0) & 1 ? serverMsg(V2_CHALLENGE, nS) : Buffer.alloc(0);
      const buf = Buffer.concat([pre, Buffer.from(hostile)]);
      const a = handshakeRun(new V2ClientHandshake(sec, nC), buf, cuts);
      const b = handshakeRun(new V2ClientHandshake(sec, nC), buf, []);
      assert.deepEqual(a, b, 'chunked = whole');
      if (a.end.kind === 'fail') assert.ok(a.end.message.length > 0);
      return;
    }
    const proof = serverProof(sec, nS, nC);
    let buf: Buffer;
    if (result === 'nosecret') buf = Buffer.concat([serverMsg(V2_NO, null), Buffer.from(rest)]);
    else {
      const second =
        result === 'ok'
          ? serverMsg(V2_OK, proof)
          : result === 'no'
            ? serverMsg(V2_NO, null)
            : serverMsg(V2_OK, Buffer.from(proof.map((x, i) => (i === 0 ? x ^ 1 : x))));
      buf = Buffer.concat([serverMsg(V2_CHALLENGE, nS), second, Buffer.from(rest)]);
    }
    const r = handshakeRun(new V2ClientHandshake(sec, nC), buf, cuts);
    if (result === 'nosecret') {
      assert.deepEqual(r.sent, []);
      assert.equal(r.end.kind, 'fail');
      return;
    }
    assert.deepEqual(r.sent, [Buffer.concat([nC, clientProof(sec, nS, nC)]).toString('hex')]);
    if (result === 'ok') {
      assert.equal(r.end.kind, 'ok');
      if (r.end.kind === 'ok') {
        // the frame bytes after TCOK: those of the chunk that completed it (later chunks are the caller's)
        const got = r.end.rest;
        assert.ok(Buffer.from(rest).subarray(0, got.length).equals(got), 'rest = the bytes after TCOK');
      }
    } else assert.equal(r.end.kind, 'fail');
  },
};

// ---- intercept's core: hostile peers and replies ----

type CoreOp =
  | { op: 'bytes'; peer: number; data: Uint8Array }
  | { op: 'add'; peer: number; client: number; target: number; del: boolean }
  | { op: 'reply'; client: number; target: number; flags: number; payload: number }
  | { op: 'tick'; dt: number };

const coreOpArb: fc.Arbitrary<CoreOp> = fc.oneof(
  fc.record({ op: fc.constant('bytes' as const), peer: fc.nat({ max: 3 }), data: fc.uint8Array({ maxLength: 60 }) }),
  fc.record({
    op: fc.constant('add' as const),
    peer: fc.nat({ max: 3 }),
    client: fc.nat({ max: 7 }),
    target: fc.nat({ max: 1 }),
    del: fc.boolean(),
  }),
  fc.record({
    op: fc.constant('reply' as const),
    client: fc.nat({ max: 7 }),
    target: fc.nat({ max: 1 }),
    flags: fc.nat({ max: 255 }),
    payload: fc.nat({ max: 300 }),
  }),
  fc.record({ op: fc.constant('tick' as const), dt: fc.nat({ max: 5000 }) }),
);

const CLIENT_IP = 0xc6120001; // 198.18.0.1
const TARGET_IP = 0xc6120102; // 198.18.1.2

const interceptCore: FuzzTarget<{ payload: boolean; v2: boolean[]; maxPeerBytes: number; ops: CoreOp[] }> = {
  name: 'intercept-core',
  says: "intercept's core fed hostile peers and replies: never throws, every byte it sends is a valid frame stream of whole records, counters add up",
  arb: fc.record({
    payload: fc.boolean(),
    v2: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
    maxPeerBytes: fc.oneof(fc.constant(4 << 20), fc.integer({ min: 0, max: 2000 })),
    ops: fc.array(coreOpArb, { maxLength: 60 }),
  }),
  unitRuns: 150,
  check({ payload, v2, maxPeerBytes, ops }) {
    const recordBytes = payload ? 192 : 64;
    const decs = new Map<Peer, FrameDecoder>();
    let delivered = 0;
    const seg = newSegment();
    const core = new InterceptCore(
      { recordBytes, maxPeerBytes, flushBytes: 500 },
      (peer, bytes) => {
        const d = decs.get(peer);
        assert.ok(d, 'bytes only for a known peer');
        assert.equal(d.feed(bytes), 'ok', 'a valid frame stream');
        return true;
      },
      { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
    );
    const peers: (Peer | null)[] = [];
    const rbOf = (i: number): FrameRecordBytes => (v2[i] ? 88 : recordBytes);
    for (let i = 0; i < 4; i++) {
      const p = core.addPeer(`198.18.9.${i}:4000`, v2[i] ?? false);
      peers.push(p);
      decs.set(
        p,
        new FrameDecoder(rbOf(i), (b, off, len) => {
          assert.equal(len, rbOf(i));
          delivered++;
          if (len !== 88) {
            assert.equal(parseIpv4Tcp(b, off, len, seg, true), 'ok', 'a 1.x record parses as IPv4/TCP');
          }
        }),
      );
    }
    const hello = Buffer.alloc(14);
    encodeHello(hello, 0, 6);
    for (let i = 0; i < 4; i++) {
      const p = peers[i];
      if (p) core.clientBytes(p, hello, 0);
    }
    let now = 0;
    const pkt = Buffer.alloc(40 + 20 + 300);
    const pay = Buffer.alloc(300, 0x61);
    const repr = newTcpRepr();
    for (const op of ops) {
      if (op.op === 'bytes' || op.op === 'add') {
        const p = peers[op.peer];
        if (!p) continue;
        let data: Buffer;
        if (op.op === 'bytes') data = Buffer.from(op.data);
        else {
          data = Buffer.alloc(14);
          encodeClientMsg(
            data,
            0,
            op.del ? MSG_CLIENT_DEL : MSG_CLIENT_ADD,
            CLIENT_IP,
            1000 + op.client,
            TARGET_IP,
            80 + op.target,
          );
        }
        const v = core.clientBytes(p, data, now);
        if (v !== 'ok') {
          assert.equal(p.alive, false, 'a refused peer is removed');
          peers[op.peer] = null;
        }
      } else if (op.op === 'reply') {
        repr.srcIp = TARGET_IP;
        repr.srcPort = 80 + op.target;
        repr.dstIp = CLIENT_IP;
        repr.dstPort = 1000 + op.client;
        repr.flags = op.flags;
        const n = emitIpv4Tcp(repr, pay, 0, op.payload, pkt, 0);
        assert.equal(parseIpv4Tcp(pkt, 0, n, seg), 'ok');
        core.reply(seg, now);
        core.flush();
      } else {
        now += op.dt;
        core.tick(now);
      }
    }
    core.flush();
    const st = core.stats();
    assert.equal(st.recordsSent, delivered, 'records sent = records the peers decoded');
    assert.ok(st.routed + st.noRoute <= st.captured + st.heldDelivered, 'no reply counted twice');
    assert.ok(st.routes <= 16, 'routes only from what was registered');
  },
};

export const CHANNEL_TARGETS: FuzzTarget[] = [
  target(clientMsgStream),
  target(frameStream),
  target(v2Handshake),
  target(interceptCore),
];
