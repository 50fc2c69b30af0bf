import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  nfqIdGap,
  parseNfqProc,
  NF_ACCEPT,
  NF_DROP,
  NFQA_CFG_CMD,
  NFQA_CFG_PARAMS,
  NFQA_CFG_QUEUE_MAXLEN,
  NfqParser,
  VERDICT_MSG_BYTES,
  configMessages,
  writeVerdict,
  NFQA_TIMESTAMP,
} from '../../../src/intercept/nfq-wire';

/** A queued-packet message as the kernel sends it: nlmsghdr + nfgenmsg + PACKET_HDR + PAYLOAD. */
function packetMsg(id: number, queue: number, payload: Buffer, extra = true, stamp?: [number, number]): Buffer {
  const attrs: Buffer[] = [];
  const attr = (type: number, v: Buffer): void => {
    const a = Buffer.alloc(4 + ((v.length + 3) & ~3));
    a.writeUInt16LE(4 + v.length, 0);
    a.writeUInt16LE(type, 2);
    v.copy(a, 4);
    attrs.push(a);
  };
  const hdr = Buffer.alloc(7);
  hdr.writeUInt32BE(id, 0);
  hdr.writeUInt16BE(0x0800, 4);
  hdr[6] = 3;
  attr(1, hdr);
  if (extra) attr(0x8000 | 11, Buffer.alloc(8)); // a nested attribute we do not use
  if (stamp !== undefined) {
    const ts = Buffer.alloc(16); // struct nfqnl_msg_packet_timestamp: be64 sec, be64 usec
    ts.writeBigUInt64BE(BigInt(stamp[0]), 0);
    ts.writeBigUInt64BE(BigInt(stamp[1]), 8);
    attr(NFQA_TIMESTAMP, ts);
  }
  attr(10, payload);
  const body = Buffer.concat(attrs);
  const m = Buffer.alloc(20 + body.length);
  m.writeUInt32LE(m.length, 0);
  m.writeUInt16LE((3 << 8) | 0, 4);
  m.writeUInt8(2, 16);
  m.writeUInt16BE(queue, 18);
  body.copy(m, 20);
  return m;
}

test('config messages: BIND, PARAMS (copy packet, range), QUEUE_MAXLEN, each asking for an ACK', () => {
  const [bind, params, maxlen] = configMessages(5, 128, 4096, 10);
  assert.ok(bind && params && maxlen);
  for (const [i, m] of [bind, params, maxlen].entries()) {
    assert.equal(m.readUInt32LE(0), m.length);
    assert.equal(m.readUInt16LE(4), (3 << 8) | 2);
    assert.equal(m.readUInt16LE(6), 1 | 4);
    assert.equal(m.readUInt32LE(8), 10 + i);
    assert.equal(m.readUInt16BE(18), 5);
  }
  assert.equal(bind.readUInt16LE(22), NFQA_CFG_CMD);
  assert.equal(bind[24], 1);
  assert.equal(params.readUInt16LE(20), 9);
  assert.equal(params.readUInt16LE(22), NFQA_CFG_PARAMS);
  assert.equal(params.readUInt32BE(24), 128);
  assert.equal(params[28], 2);
  assert.equal(maxlen.readUInt16LE(22), NFQA_CFG_QUEUE_MAXLEN);
  assert.equal(maxlen.readUInt32BE(24), 4096);
  assert.equal(configMessages(0, 128, 0, 1).length, 2);
});

test('verdicts: single and batch, back to back', () => {
  const b = Buffer.alloc(VERDICT_MSG_BYTES * 2);
  let off = writeVerdict(b, 0, 2, 77, NF_DROP, true, 1);
  off = writeVerdict(b, off, 2, 78, NF_ACCEPT, false, 2);
  assert.equal(off, VERDICT_MSG_BYTES * 2);
  assert.equal(b.readUInt16LE(4), (3 << 8) | 3);
  assert.equal(b.readUInt32BE(24), NF_DROP);
  assert.equal(b.readUInt32BE(28), 77);
  assert.equal(b.readUInt16LE(VERDICT_MSG_BYTES + 4), (3 << 8) | 1);
  assert.equal(b.readUInt32BE(VERDICT_MSG_BYTES + 24), NF_ACCEPT);
  assert.equal(b.readUInt32BE(VERDICT_MSG_BYTES + 28), 78);
});

test('parser: packets, ACKs and errors; hostile lengths end the walk without throwing', () => {
  const ip = Buffer.alloc(60, 0x45);
  const ack = Buffer.alloc(36);
  ack.writeUInt32LE(36, 0);
  ack.writeUInt16LE(2, 4);
  ack.writeInt32LE(-16, 16);
  ack.writeUInt32LE(9, 28);
  const dgram = Buffer.concat([packetMsg(1, 0, ip), ack, packetMsg(2, 0, ip.subarray(0, 41), false)]);
  const p = new NfqParser();
  p.reset(dgram, dgram.length);
  let m = p.next();
  assert.equal(m?.kind, 'packet');
  assert.equal(m?.id, 1);
  assert.equal(m?.payloadLen, 60);
  assert.equal(dgram[m?.payloadOff ?? 0], 0x45);
  m = p.next();
  assert.equal(m?.kind, 'error');
  assert.equal(m?.errno, 16);
  assert.equal(m?.seq, 9);
  m = p.next();
  assert.equal(m?.kind, 'packet');
  assert.equal(m?.id, 2);
  assert.equal(m?.payloadLen, 41);
  assert.equal(p.next(), null);
  // every message is at least a 16-byte header: a walk that yields more than len / 16 messages
  // (or loops) is a bug; each message's payload stays inside the datagram's first `len` bytes
  const walk = (buf: Buffer, len: number): void => {
    p.reset(buf, len);
    for (let i = 0; i <= Math.floor(len / 16); i++) {
      const x = p.next();
      if (x === null) return;
      assert.ok(x.payloadOff + x.payloadLen <= len, `payload ${x.payloadOff}+${x.payloadLen} beyond ${len}`);
    }
    assert.fail(`more than ${Math.floor(len / 16)} messages from ${len} bytes`);
  };
  for (let cut = 0; cut < dgram.length; cut += 7) {
    const bad = Buffer.from(dgram);
    bad.writeUInt32LE(0xffff, cut - (cut % 4));
    walk(bad, bad.length);
    walk(dgram, cut);
  }
  assert.ok(p.malformed > 0);
});

test('the kernel queue counters: /proc/net/netfilter/nfnetlink_queue lines by queue number', () => {
  const text = '    0  11345     3 2   128     7     9    14064  1\n    5   222     0 2   128     0     1      10  1\n';
  assert.deepEqual(parseNfqProc(text, 0), { waiting: 3, queueDropped: 7, userDropped: 9, idSequence: 14064 });
  assert.deepEqual(parseNfqProc(text, 5), { waiting: 0, queueDropped: 0, userDropped: 1, idSequence: 10 });
  assert.deepEqual(parseNfqProc('    2  11345     3 2   128     7     9\n', 2), {
    waiting: 3,
    queueDropped: 7,
    userDropped: 9,
    idSequence: 0,
  });
  assert.equal(parseNfqProc(text, 1), null);
  assert.equal(parseNfqProc('', 0), null);
  assert.equal(parseNfqProc('0 x y z w v u\n', 0), null);
});

test('packet id gaps: packets the kernel numbered and we never read', () => {
  assert.equal(nfqIdGap(0, 1), 0, 'first packet');
  assert.equal(nfqIdGap(0, 57), 0, 'first packet read after a restart of the count');
  assert.equal(nfqIdGap(1, 2), 0);
  assert.equal(nfqIdGap(1, 5), 3);
  assert.equal(nfqIdGap(0xffffffff, 0), 0, 'u32 wrap');
  assert.equal(nfqIdGap(0xfffffffe, 2), 3, 'gap across the wrap');
  assert.equal(nfqIdGap(9, 9), 0, 'repeat');
  assert.equal(nfqIdGap(9, 3), 0, 'backwards');
});

test('parser: NFQA_TIMESTAMP (be64 sec, be64 usec) as ms since the epoch; 0 when the kernel put none', () => {
  const ip = Buffer.alloc(40, 0x45);
  const dgram = Buffer.concat([packetMsg(1, 0, ip, true, [1_796_230_495, 53_791]), packetMsg(2, 0, ip)]);
  const p = new NfqParser();
  p.reset(dgram, dgram.length);
  let m = p.next();
  assert.equal(m?.kind, 'packet');
  assert.equal(m?.tsMs, 1_796_230_495_053.791);
  assert.equal(m?.payloadLen, 40);
  m = p.next();
  assert.equal(m?.id, 2);
  assert.equal(m?.tsMs, 0, 'no stamp attribute: none reported (nfqueue.ts stamps at read time)');
});
