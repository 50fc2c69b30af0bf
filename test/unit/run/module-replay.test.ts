/**
 * A protocol module end to end through the real runner and engine against the simulated
 * target: the worked example (examples/modules/http-host.js, loaded with --module PATH) rewrites
 * the Host header of every request, the target must receive exactly the rewritten bytes (the
 * length changed, so sequence numbers were mapped), every request counts as replayed, and a
 * lossy link makes the engine retransmit the rewritten bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { LINKTYPE_RAW } from '../../../src/core/wire/link';
import { TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN } from '../../../src/core/wire/segment';
import type { PacketReceiver, PacketSource, SourceStats, TimerHandle } from '../../../src/io/types';
import { Replay } from '../../../src/run/replay';
import type { ReplayIo } from '../../../src/run/replay-io';
import { checkReportFile, writeReportFile } from '../../../src/run/report-file';
import { formatReport, requestAccounting } from '../../../src/run/report';
import { ManualClock } from '../../sim/manual-clock';
import { SimNetwork } from '../../sim/network';
import { clientOf, ONLINE_IP, ONLINE_PORT, SimTarget, writeHeader } from '../../sim/target';
import { drive, LineLog, simConfig, TextSink } from '../../sim/replay-harness';

const EXAMPLE = path.resolve(__dirname, '../../../../examples/modules/http-host.js');
const RESP = 100;

function request(i: number, k: number): string {
  return `GET /s${i}/r${k} HTTP/1.1\r\nHost: online.example\r\nAccept: */*\r\n\r\n`;
}

/** A live capture of keep-alive HTTP connections with real request text, on the manual clock. */
class HttpCapture implements PacketSource {
  private rx: PacketReceiver | null = null;
  private readonly timers: TimerHandle[] = [];
  private readonly buf = Buffer.alloc(2048);
  received = 0;

  constructor(
    private readonly clock: ManualClock,
    private readonly sessions: number,
    private readonly requests: number,
  ) {}

  async start(rx: PacketReceiver): Promise<void> {
    this.rx = rx;
    for (let i = 0; i < this.sessions; i++)
      for (let step = 0; step < this.requests + 3; step++)
        this.timers.push(this.clock.setTimeout(() => this.capture(i, step), i * 3 + step * 20));
  }

  private capture(i: number, step: number): void {
    const rx = this.rx;
    if (rx === null) return;
    const c = clientOf(i);
    const isn = 1_000_000 + i;
    const b = this.buf;
    let len: number;
    let seq = isn + 1;
    for (let k = 0; k < Math.min(step - 2, this.requests); k++) seq += request(i, k).length;
    const ack = 5_000_001 + Math.max(0, Math.min(step - 2, this.requests)) * RESP;
    if (step === 0) len = writeHeader(b, 0, c.ip, ONLINE_IP, c.port, ONLINE_PORT, isn, 0, TCP_SYN, 0);
    else if (step === 1) len = writeHeader(b, 0, c.ip, ONLINE_IP, c.port, ONLINE_PORT, isn + 1, 5_000_001, TCP_ACK, 0);
    else if (step - 2 < this.requests) {
      const text = Buffer.from(request(i, step - 2), 'latin1');
      const h = writeHeader(b, 0, c.ip, ONLINE_IP, c.port, ONLINE_PORT, seq, ack, TCP_ACK | TCP_PSH, text.length);
      text.copy(b, h);
      len = h + text.length;
    } else len = writeHeader(b, 0, c.ip, ONLINE_IP, c.port, ONLINE_PORT, seq, ack, TCP_ACK | TCP_FIN, 0);
    this.received++;
    rx.packet(LINKTYPE_RAW, b, 0, len, len, this.clock.now());
    rx.batchEnd(this.clock.now());
  }

  async stop(): Promise<void> {
    this.rx = null;
    for (const t of this.timers) this.clock.clearTimeout(t);
  }

  stats(): SourceStats {
    return { received: this.received, dropped: 0 };
  }
}

async function runExample(loss: number, sessions: number, requests: number) {
  const clock = new ManualClock();
  const target = new SimTarget(RESP);
  target.received = new Map();
  const net = new SimNetwork(clock, target, { latencyMs: 1, loss, seed: 7 });
  const capture = new HttpCapture(clock, sessions, requests);
  const stdout = new TextSink();
  const io: ReplayIo = {
    clock,
    sender: () => net.sender,
    channel: (onRecord) => net.channel((buf, off, len) => onRecord(buf, off, len, null)),
    captures: () => [capture],
    feed: () => {
      throw new Error('live');
    },
    stdout,
    stderr: new TextSink(),
    checkReportFile,
    writeReportFile,
    rssMB: () => 64,
    collectGarbage: null,
  };
  const log = new LineLog();
  const cfg = simConfig(['--module', EXAMPLE, '--module-opt', 'host=staging.example', '-k', '2']);
  const replay = new Replay(cfg, log, io);
  const done = replay.run();
  const all = sessions * requests;
  await drive(clock, () => replay.engine.stats.requestsReplayed >= all && replay.engine.activeSessions === 0, 60_000);
  replay.stop('test');
  await drive(clock, () => false, 1000);
  assert.equal(await done, 0);
  return { replay, target, log, stdout };
}

test('the worked example module through the runner: the target receives the rewritten requests, all replayed', async () => {
  const { replay, target, log, stdout } = await runExample(0, 3, 4);
  assert.ok(
    log.lines.some((l) => l.includes('module httphost')),
    log.lines.join('\n'),
  );
  for (let i = 0; i < 3; i++) {
    const c = clientOf(i);
    const got = Buffer.concat(target.received?.get(c.ip * 65536 + c.port) ?? []).toString('latin1');
    let want = '';
    for (let k = 0; k < 4; k++) want += request(i, k).replace('Host: online.example', 'Host: staging.example');
    assert.equal(got, want, `session ${i}`);
  }
  const e = replay.engine.stats;
  assert.equal(e.module?.counters['rewritten'], 12);
  const acc = requestAccounting(e, replay.engine.requestsInFlight());
  assert.equal(acc.captured, 12);
  assert.equal(acc.replayed, 12);
  assert.equal(acc.balanced, true);
  assert.equal(e.outcomes.completed, 3);
  assert.match(stdout.text, /module +httphost: 12 messages \(12 replaced/);
});

test('over a lossy link the rewritten bytes are what is retransmitted: the target still gets exactly them', async () => {
  const { replay, target } = await runExample(0.1, 4, 3);
  assert.ok(replay.engine.stats.retransTimeout + replay.engine.stats.retransFast > 0, 'the link made it retransmit');
  for (let i = 0; i < 4; i++) {
    const c = clientOf(i);
    const got = Buffer.concat(target.received?.get(c.ip * 65536 + c.port) ?? []).toString('latin1');
    let want = '';
    for (let k = 0; k < 3; k++) want += request(i, k).replace('Host: online.example', 'Host: staging.example');
    assert.equal(got, want, `session ${i}`);
  }
  assert.equal(requestAccounting(replay.engine.stats, replay.engine.requestsInFlight()).replayed, 12);
  assert.ok(formatReport(replay.report()).includes('httphost'));
});
