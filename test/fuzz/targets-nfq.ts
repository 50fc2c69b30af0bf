/**
 * Fuzz targets of the NFQUEUE netlink codec (src/intercept/nfq-wire.ts): datagrams of
 * several messages built here (packets with any attributes, errors/ACKs, DONE, others) parse
 * back to what was built; hostile datagrams never throw, the walk ends, and every payload it
 * reports lies inside its message.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  NFNL_SUBSYS_QUEUE,
  NFQA_PACKET_HDR,
  NFQA_PAYLOAD,
  NFQNL_MSG_PACKET,
  NLMSG_DONE,
  NLMSG_ERROR,
  NfqParser,
  VERDICT_MSG_BYTES,
  configMessages,
  writeVerdict,
} from '../../src/intercept/nfq-wire';
import { mutate, mutationArb, target, type FuzzTarget, type Mutation } from './target';

const u32 = fc.nat({ max: 0xffffffff });
const u16 = fc.nat({ max: 0xffff });
const align4 = (n: number): number => (n + 3) & ~3;

/** One netlink message of a datagram. */
type NlModel =
  | {
      kind: 'packet';
      seq: number;
      queue: number;
      id: number;
      /** Attributes other than PACKET_HDR/PAYLOAD (mark, timestamp, ifindex, ...), in order. */
      extra: { type: number; value: Uint8Array }[];
      payload: Uint8Array | null;
      /** Attribute type flag bits (NLA_F_NESTED / NLA_F_NET_BYTEORDER) set on the header. */
      flagBits: number;
    }
  | { kind: 'error'; seq: number; errno: number; origSeq: number }
  | { kind: 'done'; seq: number }
  | { kind: 'other'; seq: number; type: number; body: Uint8Array };

function attrBytes(type: number, value: Buffer): Buffer {
  const b = Buffer.alloc(4 + align4(value.length));
  b.writeUInt16LE(4 + value.length, 0);
  b.writeUInt16LE(type, 2);
  value.copy(b, 4);
  return b;
}

function nlmsg(type: number, seq: number, body: Buffer): Buffer {
  const len = 16 + body.length;
  const b = Buffer.alloc(align4(len));
  b.writeUInt32LE(len, 0);
  b.writeUInt16LE(type, 4);
  b.writeUInt16LE(0, 6);
  b.writeUInt32LE(seq >>> 0, 8);
  b.writeUInt32LE(0, 12);
  body.copy(b, 16);
  return b;
}

function messageBytes(m: NlModel): Buffer {
  switch (m.kind) {
    case 'packet': {
      const gen = Buffer.alloc(4);
      gen[0] = 2;
      gen.writeUInt16BE(m.queue, 2);
      const hdr = Buffer.alloc(7);
      hdr.writeUInt32BE(m.id >>> 0, 0);
      hdr.writeUInt16BE(0x0800, 4);
      hdr[6] = 1;
      const attrs = [attrBytes(NFQA_PACKET_HDR | m.flagBits, hdr)];
      for (const x of m.extra) attrs.push(attrBytes(x.type, Buffer.from(x.value)));
      if (m.payload !== null) attrs.push(attrBytes(NFQA_PAYLOAD | m.flagBits, Buffer.from(m.payload)));
      return nlmsg((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET, m.seq, Buffer.concat([gen, ...attrs]));
    }
    case 'error': {
      const body = Buffer.alloc(4 + 16);
      body.writeInt32LE(-m.errno, 0);
      body.writeUInt32LE(16, 4);
      body.writeUInt32LE(m.origSeq >>> 0, 4 + 8);
      return nlmsg(NLMSG_ERROR, m.seq, body);
    }
    case 'done':
      return nlmsg(NLMSG_DONE, m.seq, Buffer.alloc(4));
    case 'other':
      return nlmsg(m.type, m.seq, Buffer.from(m.body));
  }
}

/** Attribute types the parser must pass over (not PACKET_HDR 1 or PAYLOAD 10). */
const extraTypeArb = fc.nat({ max: 0x3fff }).filter((t) => t !== NFQA_PACKET_HDR && t !== NFQA_PAYLOAD);

const nlModelArb: fc.Arbitrary<NlModel> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('packet' as const),
      seq: u32,
      queue: u16,
      id: u32,
      extra: fc.array(fc.record({ type: extraTypeArb, value: fc.uint8Array({ maxLength: 24 }) }), { maxLength: 4 }),
      payload: fc.option(fc.uint8Array({ maxLength: 200 }), { nil: null }),
      flagBits: fc.constantFrom(0, 0x4000, 0x8000, 0xc000),
    }),
  },
  fc.record({ kind: fc.constant('error' as const), seq: u32, errno: fc.integer({ min: 0, max: 4095 }), origSeq: u32 }),
  fc.record({ kind: fc.constant('done' as const), seq: u32 }),
  fc.record({
    kind: fc.constant('other' as const),
    seq: u32,
    type: u16.filter((t) => t !== NLMSG_ERROR && t !== ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET)),
    body: fc.uint8Array({ maxLength: 40 }),
  }),
);

/** Walks a datagram; checks termination and bounds; returns what it found. */
function walk(buf: Buffer, len: number): { found: string[]; malformed: number } {
  const p = new NfqParser();
  p.reset(buf, len);
  const found: string[] = [];
  const end = Math.min(len, buf.length);
  for (let m = p.next(); m !== null; m = p.next()) {
    assert.ok(found.length < end / 16, 'the walk ends: at most one message per 16 bytes');
    if (m.kind === 'packet') {
      assert.ok(m.payloadOff >= 0 && m.payloadLen >= 0 && m.payloadOff + m.payloadLen <= end, 'payload inside');
      found.push(
        `packet ${m.id} q${m.queue} s${m.seq} ${buf.toString('hex', m.payloadOff, m.payloadOff + m.payloadLen)}`,
      );
    } else if (m.kind === 'error') found.push(`error ${m.errno} s${m.seq}`);
    else found.push(`other s${m.seq}`);
  }
  assert.equal(p.next(), null, 'the end stays the end');
  return { found, malformed: p.malformed };
}

const nfqRoundTrip: FuzzTarget<NlModel[]> = {
  name: 'nfq-roundtrip',
  says: 'NFQUEUE datagrams (packets with any attributes, ACK/errors, DONE, others): build -> parse = model',
  arb: fc.array(nlModelArb, { minLength: 1, maxLength: 8 }),
  unitRuns: 200,
  check(model) {
    const buf = Buffer.concat(model.map(messageBytes));
    const got = walk(buf, buf.length);
    const want = model.map((m) => {
      if (m.kind === 'packet')
        return `packet ${m.id} q${m.queue} s${m.seq} ${m.payload === null ? '' : Buffer.from(m.payload).toString('hex')}`;
      if (m.kind === 'error') return `error ${m.errno} s${m.origSeq}`;
      return `other s${m.seq}`;
    });
    assert.deepEqual(got.found, want);
    assert.equal(got.malformed, 0);
  },
};

const nfqHostile: FuzzTarget<{ model: NlModel[]; muts: Mutation[]; raw: Uint8Array | null; lenDelta: number }> = {
  name: 'nfq-hostile',
  says: 'hostile NFQUEUE datagrams: never throw, the walk ends, payloads inside; verdicts/config parse as others',
  arb: fc.record({
    model: fc.array(nlModelArb, { maxLength: 6 }),
    muts: fc.array(mutationArb, { minLength: 1, maxLength: 5 }),
    raw: fc.option(fc.uint8Array({ maxLength: 300 }), { nil: null }),
    lenDelta: fc.integer({ min: -40, max: 40 }),
  }),
  unitRuns: 400,
  check({ model, muts, raw, lenDelta }) {
    const buf = raw !== null ? Buffer.from(raw) : mutate(Buffer.concat(model.map(messageBytes)), muts);
    walk(buf, Math.max(0, buf.length + lenDelta));
    // what intercept sends is not mistaken for a packet
    const out = Buffer.alloc(VERDICT_MSG_BYTES * 2);
    let o = writeVerdict(out, 0, 7, 1234, 1, false, 99);
    o = writeVerdict(out, o, 7, 1240, 0, true, 100);
    assert.deepEqual(walk(out, o).found, ['other s99', 'other s100']);
    for (const m of configMessages(7, 128, 64, 5)) assert.equal(walk(m, m.length).found.length, 1);
  },
};

export const NFQ_TARGETS: FuzzTarget[] = [target(nfqRoundTrip), target(nfqHostile)];
