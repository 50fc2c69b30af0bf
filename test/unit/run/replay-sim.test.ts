import { test } from 'node:test';
import assert from 'node:assert/strict';
import { requestAccounting } from '../../../src/run/report';
import { drive, simReplay } from '../../sim/replay-harness';

/**
 * A whole Replay (capture -> decode -> engine -> sender, channel -> engine) on a manual clock
 * against a simulated target over a network with latency and 5% loss each way (issue 12 item 5).
 */

const SHAPE = { requests: 4, reqLen: 120, respLen: 900 };
const SESSIONS = 60;
const PACE = { sessions: SESSIONS, sessionGapMs: 7, stepMs: 25 };

test('replay over a lossy simulated network: every request is acknowledged, and the loss happened', async () => {
  const sim = simReplay(SHAPE, PACE, { latencyMs: 4, loss: 0.05, seed: 20261201 });
  const { clock, net, capture, replay } = sim;
  let code: number | null = null;
  const run = replay.run().then((c) => (code = c));
  const e = replay.engine.stats;
  const total = SESSIONS * SHAPE.requests;
  const finished = await drive(
    clock,
    () => capture.remaining === 0 && replay.engine.busySessions() === 0 && e.sessionsActive === 0,
    10 * 60_000,
  );
  assert.ok(finished, `sessions still busy: ${replay.engine.busySessions()}\n${sim.log.lines.join('\n')}`);
  replay.stop('test over');
  assert.ok(await drive(clock, () => code !== null, 60_000), 'run() resolves after stop()');
  await run;
  assert.equal(code, 0);

  // the loss really happened, both ways, and was repaired by retransmission
  assert.ok(net.lostToTarget > 0, `packets lost towards the target: ${net.lostToTarget} of ${net.toTarget}`);
  assert.ok(net.lostToIntercept > 0, `answers lost: ${net.lostToIntercept} of ${net.toIntercept}`);
  const lossShare = (net.lostToTarget + net.lostToIntercept) / (net.toTarget + net.toIntercept);
  assert.ok(lossShare > 0.02 && lossShare < 0.1, `about 5% lost: ${lossShare}`);
  assert.ok(e.retransTimeout + e.retransFast > 0, 'the engine retransmitted');
  assert.ok(net.target.answersResent > 0, 'the target answered retransmissions');

  // every request captured, sent once in order to the target, and acknowledged
  assert.equal(capture.received, SESSIONS * (SHAPE.requests + 3));
  assert.equal(e.sessionsCreated, SESSIONS);
  assert.equal(e.outcomes.completed, SESSIONS, JSON.stringify(e.outcomes));
  assert.equal(e.requestsCaptured, total);
  assert.equal(e.requestsReplayed, total, 'every request acknowledged by the target');
  assert.equal(net.target.segmentsInOrder, total, 'the target received each request once, in order');
  const acc = requestAccounting(e);
  assert.equal(acc.captured, total);
  assert.equal(acc.replayed, total);
  assert.ok(acc.balanced);
  assert.deepEqual(acc.lost, { sampledOut: 0 });

  // the channel carried the routes, the edges were closed, the report went to stdout
  const ch = net.simChannel;
  assert.ok(ch !== null && ch.closed, 'the channel was closed');
  assert.equal(ch.routes.size, 0, 'every route added was removed again (CLIENT_DEL)');
  assert.equal(net.unrouted, 0, 'no reply came for a client without a route');
  assert.match(sim.stdout.text, /tcpcopy report \(live/);
  assert.match(sim.stdout.text, new RegExp(`requests   ${total} captured, ${total} replayed`));
  assert.ok(net.sender.closed, 'the sender was closed');
  assert.deepEqual(sim.io.asked, ['sender', 'channel', 'captures']);
});

test('the same replay without loss: nothing retransmitted, nothing resent', async () => {
  const sim = simReplay(SHAPE, { ...PACE, sessions: 10 }, { latencyMs: 4, loss: 0, seed: 1 });
  const { clock, net, capture, replay } = sim;
  const run = replay.run();
  assert.ok(await drive(clock, () => capture.remaining === 0 && replay.engine.busySessions() === 0, 60_000));
  replay.stop('test over');
  let done = false;
  void run.then(() => (done = true));
  assert.ok(await drive(clock, () => done, 60_000));
  const e = replay.engine.stats;
  assert.equal(net.lostToTarget + net.lostToIntercept, 0);
  assert.equal(e.retransTimeout + e.retransFast, 0);
  assert.equal(net.target.answersResent, 0);
  assert.equal(e.requestsReplayed, 10 * SHAPE.requests);
});
