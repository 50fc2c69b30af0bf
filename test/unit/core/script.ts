import assert from 'node:assert/strict';
import { ReplayEngine } from '../../../src/core/engine';
import { engineConfig, type EngineConfig } from '../../../src/core/engine-config';
import { emitIpTcp, newTcpRepr } from '../../../src/core/wire/build';
import { parseIpTcp } from '../../../src/core/wire/decode';
import { verifyIpv4TcpChecksums, verifyIpv6TcpChecksum } from '../../../src/core/wire/checksum';
import { ipToString, newSegment, parseIp } from '../../../src/core/wire/segment';
import { requestAccounting } from '../../../src/run/report';

/** Packet-script harness: scripted client segments and target replies, a manual clock, exact expectations. */

export const CLIENT = '198.18.1.2';
export const ONLINE = '198.18.0.1';
export const TARGET = '198.18.0.2';

/** A segment as a test writes or reads it. */
export interface Seg {
  src?: string;
  dst?: string;
  sport?: number;
  dport?: number;
  seq: number;
  ack?: number;
  /** Flags as letters: S A P F R (e.g. 'S', 'A', 'PA', 'FA', 'R'). */
  flags: string;
  /** Payload text (client segments; on target replies, the payload bytes intercept carried, channel v2). */
  data?: string;
  /** Payload length (target replies: only the length matters, as intercept reports headers). */
  len?: number;
  win?: number;
  mss?: number;
  wscale?: number;
  tsVal?: number;
  tsEcr?: number;
}

const FLAG_BITS: Record<string, number> = { F: 1, S: 2, R: 4, P: 8, A: 16 };
function flagBits(f: string): number {
  let v = 0;
  for (const c of f) v |= FLAG_BITS[c] ?? 0;
  return v;
}
function flagText(v: number): string {
  return ['S', 'F', 'R', 'P', 'A'].filter((c) => (v & (FLAG_BITS[c] ?? 0)) !== 0).join('');
}

export interface Emitted {
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: string;
  len: number;
  data: string;
  win: number;
  mss: number;
  wscale: number;
  tsVal: number;
  tsEcr: number;
  hasTs: boolean;
}

/** The addresses of a script (IPv4 by default; IPv6 text for an IPv6 script). */
export interface ScriptAddresses {
  client: string;
  online: string;
  target: string;
}

export class Script {
  now = 1_000_000;
  readonly addrs: ScriptAddresses;
  readonly engine: ReplayEngine;
  readonly emitted: Emitted[] = [];
  readonly added: string[] = [];
  /** The payload flag of each CLIENT_ADD, in order. */
  readonly addedPayload: boolean[] = [];
  readonly removed: string[] = [];
  private readonly buf = Buffer.alloc(70000);
  private readonly seg = newSegment();

  constructor(
    over: Partial<Omit<EngineConfig, 'transfers'>> = {},
    addrs: Partial<ScriptAddresses> = {},
    transfers?: EngineConfig['transfers'],
  ) {
    this.addrs = { client: CLIENT, online: ONLINE, target: TARGET, ...addrs };
    // exact-segment tests acknowledge every batch unless a test asks for delayed ACKs
    const cfg = engineConfig(
      transfers ?? [{ onlineIp: 0, onlinePort: 80, targetIp: parseIp(this.addrs.target), targetPort: 8080 }],
      { delayedAckMs: 0, ...over },
    );
    const emitted = this.emitted;
    const seg = newSegment();
    this.engine = new ReplayEngine(cfg, {
      packet: (buf, off, len) => {
        const copy = Buffer.from(buf.subarray(off, off + len));
        if ((copy[0] as number) >>> 4 === 6) {
          assert.ok(verifyIpv6TcpChecksum(copy, 0), 'emitted IPv6 packet has a correct TCP checksum');
        } else {
          const ck = verifyIpv4TcpChecksums(copy, 0);
          assert.ok(ck.ip && ck.tcp, 'emitted packet has correct checksums');
        }
        assert.equal(parseIpTcp(copy, 0, len, seg), 'ok');
        emitted.push({
          src: ipToString(seg.srcIp),
          dst: ipToString(seg.dstIp),
          sport: seg.srcPort,
          dport: seg.dstPort,
          seq: seg.seq,
          ack: seg.ack,
          flags: flagText(seg.flags),
          len: seg.payloadLen,
          data: copy.subarray(seg.payloadOff, seg.payloadOff + seg.payloadLen).toString('latin1'),
          win: seg.window,
          mss: seg.mss,
          wscale: seg.wscale,
          tsVal: seg.tsVal,
          tsEcr: seg.tsEcr,
          hasTs: seg.hasTs,
        });
      },
      clientAdded: (ip, port, tip, tport, payload) => {
        this.added.push(`${ipToString(ip)}:${port}>${ipToString(tip)}:${tport}`);
        this.addedPayload.push(payload);
      },
      clientRemoved: (ip, port, tip, tport) =>
        this.removed.push(`${ipToString(ip)}:${port}>${ipToString(tip)}:${tport}`),
    });
  }

  private build(
    s: Seg,
    defSrc: string,
    defDst: string,
    defSport: number,
    defDport: number,
    payloadLen: number,
    payload: Buffer | null,
  ): number {
    const r = newTcpRepr();
    r.srcIp = parseIp(s.src ?? defSrc);
    r.dstIp = parseIp(s.dst ?? defDst);
    r.srcPort = s.sport ?? defSport;
    r.dstPort = s.dport ?? defDport;
    r.seq = s.seq >>> 0;
    r.ack = (s.ack ?? 0) >>> 0;
    r.flags = flagBits(s.flags);
    r.window = s.win ?? 65535;
    r.ttl = 64;
    r.mss = s.mss ?? 0;
    r.wscale = s.wscale ?? -1;
    r.hasTs = s.tsVal !== undefined;
    r.tsVal = s.tsVal ?? 0;
    r.tsEcr = s.tsEcr ?? 0;
    return emitIpTcp(r, payload, 0, payloadLen, this.buf, 0);
  }

  /** The captured client sends a segment to the online server (port 80). */
  clientSends(s: Seg, rep = 0): void {
    const data = s.data !== undefined ? Buffer.from(s.data, 'latin1') : null;
    const len = this.build(s, this.addrs.client, this.addrs.online, 40000, 80, data?.length ?? 0, data);
    assert.equal(parseIpTcp(this.buf, 0, len, this.seg), 'ok');
    this.engine.onClientPacket(this.seg, this.now, rep);
  }

  /** The online server answers the captured client (a captured server->client packet, for modules that want online replies). */
  onlineSends(s: Seg): boolean {
    const data = s.data !== undefined ? Buffer.from(s.data, 'latin1') : null;
    const len = this.build(s, this.addrs.online, this.addrs.client, 80, 40000, data?.length ?? 0, data);
    assert.equal(parseIpTcp(this.buf, 0, len, this.seg), 'ok');
    return this.engine.onOnlinePacket(this.seg, this.now);
  }

  /**
   * intercept reports a reply of the target: headers only, cut to a 64-byte record (88 for IPv6:
   * a v2 record's headers), payload length in the IP header (`len`); with `data`, intercept also
   * carried those payload bytes (the first data.length of `len`, default all), as channel v2 does
   * for a session that asked.
   */
  targetReplies(s: Seg, flush = true): void {
    const carried = s.data !== undefined ? Buffer.from(s.data, 'latin1') : null;
    const n = s.len ?? carried?.length ?? 0;
    const len = this.build(
      s,
      this.addrs.target,
      this.addrs.client,
      8080,
      40000,
      n,
      n > 0 ? Buffer.alloc(n, 0x61) : null,
    );
    const cut = (this.buf[0] as number) >>> 4 === 6 ? 84 : 64;
    const rec = Buffer.from(this.buf.subarray(0, Math.min(cut, len)));
    assert.equal(parseIpTcp(rec, 0, rec.length, this.seg, true), 'ok');
    this.engine.onReply(this.seg, this.now, carried !== null ? { buf: carried, off: 0, len: carried.length } : null);
    if (flush) this.engine.flush();
  }

  /** Advances the manual clock and runs due timers. */
  tick(ms: number): void {
    this.now += ms;
    this.engine.poll(this.now);
  }

  /** Takes what was emitted since the last call. */
  take(): Emitted[] {
    return this.emitted.splice(0, this.emitted.length);
  }

  /** Asserts the emitted segments, comparing only the fields each expectation names. */
  expectEmitted(expected: Partial<Emitted>[]): Emitted[] {
    const got = this.take();
    const view = got.map((g, i) => {
      const e = expected[i] ?? {};
      const o: Record<string, unknown> = {};
      for (const k of Object.keys(e)) o[k] = (g as unknown as Record<string, unknown>)[k];
      return o;
    });
    assert.deepEqual(
      view,
      expected,
      `emitted: ${JSON.stringify(got.map((g) => ({ seq: g.seq, ack: g.ack, flags: g.flags, len: g.len })))}`,
    );
    return got;
  }

  expectNothing(): void {
    const got = this.take();
    assert.equal(
      got.length,
      0,
      `expected nothing, emitted: ${JSON.stringify(got.map((g) => ({ seq: g.seq, ack: g.ack, flags: g.flags, len: g.len })))}`,
    );
  }
}

// ---- shared fixtures: the handshakes and connections the engine tests start from ----

export const GET_A = 'GET /a HTTP/1.1\r\nHost: x\r\n\r\n';
export const GET_B = 'GET /b HTTP/1.1\r\nHost: x\r\n\r\n';

/**
 * An ESTABLISHED session: client ISN 1000 (SYN with MSS 1460, wscale 7), online server ISN 5000
 * (seen only in the client's handshake ACK, 5001), target ISN 90000. The SYN and our ACK of the
 * SYN-ACK are asserted and taken.
 */
export function established(over: Partial<Omit<EngineConfig, 'transfers'>> = {}): Script {
  const t = new Script(over);
  t.clientSends({ seq: 1000, flags: 'S', mss: 1460, wscale: 7 });
  t.expectEmitted([
    { src: CLIENT, dst: TARGET, sport: 40000, dport: 8080, seq: 1000, flags: 'S', mss: 1460, wscale: 7, len: 0 },
  ]);
  t.clientSends({ seq: 1001, ack: 5001, flags: 'A' });
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA', mss: 1460, wscale: 7 });
  t.expectEmitted([{ seq: 1001, ack: 90001, flags: 'A', len: 0 }]);
  return t;
}

/** As established(), with timestamps: client TSval 500 (501 on its handshake ACK), target TSval 7000. */
export function establishedWithTs(over: Partial<Omit<EngineConfig, 'transfers'>> = {}): Script {
  const t = new Script(over);
  t.clientSends({ seq: 1000, flags: 'S', mss: 1460, wscale: 7, tsVal: 500 });
  t.take();
  t.clientSends({ seq: 1001, ack: 5001, flags: 'A', tsVal: 501 });
  t.targetReplies({ seq: 90000, ack: 1001, flags: 'SA', mss: 1460, wscale: 7, tsVal: 7000, tsEcr: 500 });
  t.expectEmitted([{ seq: 1001, ack: 90001, flags: 'A', hasTs: true, tsEcr: 7000 }]);
  return t;
}

/** One captured connection from client port `sport`: SYN (ISN 1000), then one request (online ISN 5000). */
export function connect(t: Script, sport: number, data = GET_A): void {
  t.clientSends({ sport, seq: 1000, flags: 'S' });
  t.clientSends({ sport, seq: 1001, ack: 5001, flags: 'PA', data });
}

/** Advances the clock by `ms` in 50 ms steps (each step runs the timers due once). */
export function runFor(t: Script, ms: number): void {
  for (let i = 0; i < ms / 50; i++) t.tick(50);
}

/** Asserts the request accounting balances (captured = replayed + lost by reason) and returns it. */
export function balanced(t: Script): ReturnType<typeof requestAccounting> {
  // in flight counted from the open sessions: nothing may be left unexplained
  const acc = requestAccounting(t.engine.stats, t.engine.requestsInFlight());
  assert.equal(acc.unexplained, 0, JSON.stringify(acc));
  assert.equal(acc.balanced, true, JSON.stringify(acc));
  const lost = Object.values(acc.lost).reduce((a, b) => a + b, 0);
  assert.equal(acc.captured, acc.replayed + lost);
  return acc;
}
