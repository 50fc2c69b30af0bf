/**
 * Micro-benchmark of the Internet checksum hot path: ns per checksum of a 1500-byte
 * IPv4+TCP packet (onesComplementSum over 1500 bytes, tcpChecksum, emitIpv4Tcp, decodeFrame
 * and the byte-pair reference loop for comparison). No assertion; run after a build:
 *   node dist/bench/wire-checksum.js [iterations]
 */
import { onesComplementSum, tcpChecksum, verifyIpv4TcpChecksums } from '../src/core/wire/checksum';
import { emitIpv4Tcp, newTcpRepr } from '../src/core/wire/build';
import { decodeFrame } from '../src/core/wire/decode';
import { newSegment } from '../src/core/wire/segment';
import { LINKTYPE_RAW } from '../src/core/wire/link';

const N = Math.max(1000, Number(process.argv[2] ?? 300000) || 300000);
const payload = Buffer.alloc(1448);
for (let i = 0; i < payload.length; i++) payload[i] = (i * 131 + 7) & 255;
const pkt = Buffer.alloc(1500);
const repr = Object.assign(newTcpRepr(), {
  srcIp: 0xc6120001,
  dstIp: 0xc6120002,
  srcPort: 40000,
  dstPort: 80,
  seq: 1,
  ack: 1,
  flags: 0x18,
  window: 502,
  hasTs: true,
  tsVal: 1,
  tsEcr: 2,
});
const len = emitIpv4Tcp(repr, payload, 0, payload.length, pkt, 0);

/** The straightforward loop: one 16-bit word from two bytes at a time. */
function bytePairs(b: Buffer, off: number, n: number): number {
  let s = 0;
  const end = off + (n & ~1);
  for (let i = off; i < end; i += 2) s += ((b[i] as number) << 8) | (b[i + 1] as number);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function time(name: string, fn: () => number): void {
  let sink = 0;
  for (let i = 0; i < 20000; i++) sink += fn(); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) sink += fn();
  const ns = Number(process.hrtime.bigint() - t0) / N;
  console.log(`${name.padEnd(40)} ${ns.toFixed(1).padStart(8)} ns/op${sink === -1 ? '!' : ''}`);
}

console.log(`packet length ${len} bytes, ${N} iterations, node ${process.version}`);
time('onesComplementSum(1500 bytes)', () => onesComplementSum(pkt, 0, 1500));
time('tcpChecksum(1500-byte packet)', () => tcpChecksum(pkt, 0));
time('verifyIpv4TcpChecksums(1500-byte packet)', () => (verifyIpv4TcpChecksums(pkt, 0).tcp ? 1 : 0));
time('emitIpv4Tcp(1448-byte payload)', () => emitIpv4Tcp(repr, payload, 0, payload.length, pkt, 0));
const seg = newSegment();
time('decodeFrame(RAW, 1500-byte packet)', () => (decodeFrame(LINKTYPE_RAW, pkt, 0, len, seg) === 'ok' ? 1 : 0));
time('reference byte-pair loop (1500 bytes)', () => bytePairs(pkt, 0, 1500));
