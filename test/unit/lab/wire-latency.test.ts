import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PcapWriter } from '../../../src/io/capture-file/writer';
import { emitIpv4Tcp, newTcpRepr } from '../../../src/core/wire/build';
import { LINKTYPE_ETHERNET } from '../../../src/core/wire/link';
import { newSegment, TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN } from '../../../src/core/wire/segment';
import { percentileUs, wireLatencies, WireLatencyMatcher } from '../../../src/lab/wire-latency';

const SERVER = 0xc6120101; // 198.18.1.1
const BASE_SEC = 1_700_000_000;
const frame = Buffer.alloc(2048);
const payload = Buffer.alloc(1500, 0x41);

/** One Ethernet + IPv4 + TCP frame into `frame`; returns its length. */
function buildFrame(
  src: number,
  dst: number,
  sport: number,
  dport: number,
  seq: number,
  ack: number,
  flags: number,
  len: number,
): number {
  frame.fill(0, 0, 14);
  frame.writeUInt16BE(0x0800, 12);
  const r = newTcpRepr();
  Object.assign(r, {
    srcIp: src,
    dstIp: dst,
    srcPort: sport,
    dstPort: dport,
    seq: seq >>> 0,
    ack: ack >>> 0,
    flags,
    window: 65535,
  });
  if ((flags & TCP_SYN) !== 0) r.mss = 1460;
  return 14 + emitIpv4Tcp(r, len > 0 ? payload : null, 0, len, frame, 14);
}

/** Writes frames at exact microsecond offsets from BASE_SEC. */
class Capture {
  readonly file: string;
  readonly w: PcapWriter;
  constructor(opts: { nanos?: boolean } = {}) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcwire-'));
    this.file = path.join(dir, 'x.pcap');
    this.w = PcapWriter.create(this.file, LINKTYPE_ETHERNET, opts);
  }
  put(us: number, len: number): void {
    const sec = BASE_SEC + Math.floor(us / 1e6);
    const frac = us % 1e6;
    this.w.writeRaw(sec, this.w.nanos ? frac * 1000 : frac, frame, 0, len);
  }
}

/** A client connection to SERVER:80 that tracks both sides' sequence numbers. */
class Conn {
  cSeq: number;
  sSeq: number;
  constructor(
    private readonly cap: Capture,
    private readonly ip: number,
    private readonly port: number,
    isn: number,
  ) {
    this.cSeq = isn;
    this.sSeq = isn + 100_000;
  }
  /** Client -> server; returns the seq used. */
  c(us: number, len: number, flags = TCP_ACK | TCP_PSH): number {
    const seq = this.cSeq;
    this.cap.put(us, buildFrame(this.ip, SERVER, this.port, 80, seq, this.sSeq, flags, len));
    this.cSeq += len + ((flags & (TCP_SYN | TCP_FIN)) !== 0 ? 1 : 0);
    return seq;
  }
  /** Server -> client; returns the seq used. */
  s(us: number, len: number, flags = TCP_ACK | TCP_PSH): number {
    const seq = this.sSeq;
    this.cap.put(us, buildFrame(SERVER, this.ip, 80, this.port, seq, this.cSeq, flags, len));
    this.sSeq += len + ((flags & (TCP_SYN | TCP_FIN)) !== 0 ? 1 : 0);
    return seq;
  }
  /** Client retransmits [seq, seq+len). */
  cRetx(us: number, seq: number, len: number): void {
    this.cap.put(us, buildFrame(this.ip, SERVER, this.port, 80, seq, this.sSeq, TCP_ACK | TCP_PSH, len));
  }
  /** Server retransmits [seq, seq+len). */
  sRetx(us: number, seq: number, len: number): void {
    this.cap.put(us, buildFrame(SERVER, this.ip, 80, this.port, seq, this.cSeq, TCP_ACK | TCP_PSH, len));
  }
  handshake(us: number): void {
    this.c(us, 0, TCP_SYN);
    this.s(us + 30, 0, TCP_SYN | TCP_ACK);
    this.c(us + 40, 0, TCP_ACK);
  }
}

/** The scenario of the brief; latencies 120, 250, 300, 400, 500, 700, 900 us; one unanswered. */
function scenario(cap: Capture): void {
  const a = new Conn(cap, 0xc6120102, 40000, 1000);
  const b = new Conn(cap, 0xc6120103, 40001, 0xffffff00); // client seq wraps during B3
  a.handshake(0);
  b.handshake(10);
  // unrelated traffic: ARP, another port
  frame.fill(0, 0, 60);
  frame.writeUInt16BE(0x0806, 12);
  cap.put(50, 60);
  cap.put(60, buildFrame(0xc6120102, SERVER, 40002, 22, 1, 1, TCP_ACK | TCP_PSH, 100));
  // A1: 250 us; the rest of the response and the client's ACK change nothing
  a.c(1000, 100);
  const a1 = a.s(1250, 200);
  a.c(1260, 0, TCP_ACK);
  a.s(1270, 300);
  // B1: 300 us
  b.c(1100, 120);
  b.s(1400, 100);
  // A2: multi-segment request, timed from its first segment: 500 us
  a.c(2000, 50);
  a.c(2040, 50);
  a.s(2500, 200);
  // B2: 120 us
  b.c(2100, 90);
  b.s(2220, 100);
  // A3: a late server retransmission of A1's response does not end it; 700 us
  a.c(3000, 80);
  a.sRetx(3100, a1, 200);
  const a3resp = a.s(3700, 200);
  // a spurious client retransmission of A3 after the response starts nothing
  a.cRetx(3800, a.cSeq - 80, 80);
  a.sRetx(3850, a3resp, 200);
  // B3: 900 us
  b.c(3100, 70);
  b.s(4000, 100);
  // B4: pipelined pair folded into one request, timed from the first: 400 us
  b.c(5000, 60);
  b.c(5050, 60);
  b.s(5400, 100);
  b.s(5450, 100);
  // A closes
  a.c(6000, 0, TCP_FIN | TCP_ACK);
  a.s(6010, 0, TCP_FIN | TCP_ACK);
  a.c(6020, 0, TCP_ACK);
  // B5: never answered; the server's bare ACK and FIN do not end it
  b.c(7000, 75);
  b.s(7010, 0, TCP_ACK);
  b.s(7500, 0, TCP_FIN | TCP_ACK);
}

test('wire latencies: exact per-request latencies, counts and percentiles from a pcap', async () => {
  const cap = new Capture();
  scenario(cap);
  cap.w.close();
  const r = await wireLatencies(cap.file, { serverPort: 80 });
  assert.deepEqual([...r.latenciesUs], [120, 250, 300, 400, 500, 700, 900]);
  assert.equal(r.requests, 8);
  assert.equal(r.matched, 7);
  assert.equal(r.unmatched, 1);
  assert.equal(r.connections, 2);
  assert.equal(r.frames, cap.w.records);
  assert.equal(r.damaged, 0);
  assert.equal(percentileUs(r.latenciesUs, 50), 400);
  assert.equal(percentileUs(r.latenciesUs, 99), 900);
  assert.equal(percentileUs(r.latenciesUs, 90), 900);
  assert.equal(percentileUs(r.latenciesUs, 15), 250);
  assert.equal(percentileUs(r.latenciesUs, 0), 120);
  assert.equal(percentileUs(r.latenciesUs, 100), 900);
  // other server port: nothing matches
  const none = await wireLatencies(cap.file, { serverPort: 8080 });
  assert.equal(none.requests, 0);
  assert.equal(none.connections, 0);
  assert.equal(none.latenciesUs.length, 0);
});

test('wire latencies: nanosecond captures keep sub-microsecond precision', async () => {
  const cap = new Capture({ nanos: true });
  const a = new Conn(cap, 0xc6120102, 40000, 1);
  a.handshake(0);
  a.c(1000, 100);
  cap.w.writeRaw(BASE_SEC, 1_250_500, frame, 0, buildFrame(SERVER, 0xc6120102, 80, 40000, a.sSeq, a.cSeq, TCP_ACK, 10));
  cap.w.close();
  const r = await wireLatencies(cap.file, { serverPort: 80 });
  assert.equal(r.matched, 1);
  assert.ok(Math.abs((r.latenciesUs[0] as number) - 250.5) < 0.3, String(r.latenciesUs[0]));
});

test('wire latencies: a truncated last record is counted and the records before it are used', async () => {
  const cap = new Capture();
  const a = new Conn(cap, 0xc6120102, 40000, 1);
  a.handshake(0);
  a.c(1000, 100);
  a.s(1333, 100);
  a.c(2000, 100);
  cap.w.close();
  fs.truncateSync(cap.file, fs.statSync(cap.file).size - 30);
  const r = await wireLatencies(cap.file, { serverPort: 80 });
  assert.deepEqual([...r.latenciesUs], [333]);
  assert.equal(r.requests, 1);
  assert.equal(r.damaged, 1);
  await assert.rejects(wireLatencies(path.join(path.dirname(cap.file), 'missing.pcap'), { serverPort: 80 }), {
    code: 'ERR_CAPTURE_OPEN',
  });
});

test('wire latency matcher: a new SYN on a reused address pair is a new connection', () => {
  const m = new WireLatencyMatcher({ serverPort: 80 });
  const seg = newSegment();
  const feed = (toServer: boolean, seq: number, flags: number, len: number, tsMs: number): void => {
    Object.assign(
      seg,
      toServer
        ? { srcIp: 2, dstIp: 1, srcPort: 5000, dstPort: 80 }
        : { srcIp: 1, dstIp: 2, srcPort: 80, dstPort: 5000 },
    );
    Object.assign(seg, { seq, flags, payloadLen: len });
    m.segment(seg, tsMs, 1e6);
  };
  feed(true, 10, TCP_SYN, 0, 0);
  feed(true, 10, TCP_SYN, 0, 1); // SYN retransmission: same connection
  feed(true, 11, TCP_ACK, 20, 2); // request, never answered
  feed(true, 900, TCP_SYN, 0, 3); // port reused
  feed(false, 50, TCP_SYN | TCP_ACK, 0, 3.1);
  feed(true, 901, TCP_ACK, 20, 4);
  feed(false, 51, TCP_ACK, 30, 4.25);
  const r = m.result();
  assert.deepEqual([...r.latenciesUs], [250]);
  assert.equal(r.requests, 2);
  assert.equal(r.unmatched, 1);
  assert.equal(r.connections, 2);
});

test('percentileUs: nearest rank, NaN when empty', () => {
  assert.ok(Number.isNaN(percentileUs(new Float64Array(0), 50)));
  assert.ok(Number.isNaN(percentileUs(Float64Array.of(1), NaN)));
  const xs = Float64Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentileUs(xs, 7), 7);
  assert.equal(percentileUs(xs, 50), 50);
  assert.equal(percentileUs(xs, 99), 99);
  assert.equal(percentileUs(xs, 99.5), 100);
  assert.equal(percentileUs(xs, 150), 100);
  assert.equal(percentileUs(xs, -5), 1);
});
