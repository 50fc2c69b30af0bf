import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHECK_MS, GC_EVERY_MS, IDLE_SHED_MS, MemoryGovernor, SETTLE_MS } from '../../../src/run/memory-governor';
import { memoryBudgetOf, sessionBacklogOf } from '../../../src/run/replay';
import { requestAccounting } from '../../../src/run/report';
import { drive, simReplay, simConfig } from '../../sim/replay-harness';

/** An engine stand-in that records what the governor asked of it. */
function fakeEngine(waiting: number[], idle: number[] = []) {
  const calls: string[] = [];
  return {
    calls,
    setAdmitting(open: boolean): void {
      calls.push(open ? 'open' : 'close');
    },
    shedLargest(): number {
      const n = waiting.shift() ?? 0;
      calls.push(`shed:${n}`);
      return n;
    },
    /** Ends the next count of `idle` (nothing recorded when none is left). */
    shedIdle(_now: number, idleMs: number, max: number): number {
      const n = idle.shift();
      if (n === undefined) return 0;
      calls.push(`idle:${n}@${idleMs}/${max}`);
      return n;
    },
  };
}

function quietLog() {
  const lines: string[] = [];
  return { lines, warn: (m: string) => lines.push(`warn: ${m}`), info: (m: string) => lines.push(`info: ${m}`) };
}

test('over the budget: admission closes and a collection runs; under 85% it opens again', () => {
  const eng = fakeEngine([]);
  let gcs = 0;
  const log = quietLog();
  const g = new MemoryGovernor(100, eng, () => gcs++, log);
  g.check(99, 0);
  assert.deepEqual(eng.calls, []);
  g.check(101, 100);
  assert.deepEqual(eng.calls, ['close']);
  assert.equal(gcs, 1);
  assert.ok(g.closed);
  // 90 MiB is under the budget but not under 85% of it: still closed, nothing shed
  g.check(90, 200);
  assert.ok(g.closed);
  g.check(84, 300);
  assert.deepEqual(eng.calls, ['close', 'open']);
  assert.equal(g.stats.overBudget, 1);
  assert.equal(g.stats.closedMs, 200);
  assert.equal(g.stats.sessionsShed, 0);
  assert.match(log.lines[0] ?? '', /reached --memory-budget 100 MiB: new connections are not replayed/);
  assert.match(log.lines[1] ?? '', /replayed again/);
});

test('still over after a collection: one session given up per collection, a collection every second', () => {
  const eng = fakeEngine([7, 3, 0]);
  let gcs = 0;
  const g = new MemoryGovernor(100, eng, () => gcs++, quietLog());
  let t = 0;
  g.check(150, t); // close + gc
  // before SETTLE_MS nothing is shed
  for (t = CHECK_MS; t < SETTLE_MS; t += CHECK_MS) g.check(150, t);
  assert.deepEqual(eng.calls, ['close']);
  // SETTLE_MS after the collection one session is given up, and no other before the next
  // collection
  for (; t < GC_EVERY_MS; t += CHECK_MS) g.check(150, t);
  assert.deepEqual(eng.calls, ['close', 'shed:7']);
  g.check(150, GC_EVERY_MS);
  assert.equal(gcs, 2, 'a second collection after GC_EVERY_MS');
  // then the next one SETTLE_MS after that collection, and so on: about one a second
  for (t = GC_EVERY_MS + CHECK_MS; t < 3 * GC_EVERY_MS; t += CHECK_MS) g.check(150, t);
  assert.deepEqual(eng.calls, ['close', 'shed:7', 'shed:3', 'shed:0']);
  assert.equal(gcs, 3);
  assert.equal(g.stats.sessionsShed, 2, 'shed:0 gave up nothing and is not counted');
});

test('eight sessions over the budget for 3 s: at most three are given up, not all eight', () => {
  const eng = fakeEngine([9, 9, 9, 9, 9, 9, 9, 9]);
  const g = new MemoryGovernor(110, eng, () => undefined, quietLog());
  for (let t = 0; t <= 3000; t += CHECK_MS) g.check(112, t);
  assert.equal(g.stats.sessionsShed, 3);
});

test('over the budget, idle sessions with nothing waiting are ended at every check, and counted', () => {
  const eng = fakeEngine([], [5, 0, 2]);
  const g = new MemoryGovernor(100, eng, () => undefined, quietLog());
  g.check(99, 0); // under the budget: none ended
  assert.deepEqual(eng.calls, []);
  g.check(120, 100);
  g.check(120, 200);
  g.check(120, 300);
  g.check(80, 400); // under: none ended, admission opens
  assert.deepEqual(eng.calls, [
    `idle:5@${IDLE_SHED_MS}/Infinity`,
    'close',
    `idle:0@${IDLE_SHED_MS}/Infinity`,
    `idle:2@${IDLE_SHED_MS}/Infinity`,
    'open',
  ]);
  assert.equal(g.stats.sessionsIdleEnded, 7);
});

test('the default budget applies to capture from this host only', () => {
  assert.equal(memoryBudgetOf('auto', 'live'), 110);
  assert.equal(memoryBudgetOf('auto', 'offline'), 0);
  assert.equal(memoryBudgetOf('auto', 'stream'), 0);
  assert.equal(memoryBudgetOf(0, 'live'), 0);
  assert.equal(memoryBudgetOf(300, 'offline'), 300);
  // --compare: the comparison's own cap on top of auto's
  assert.equal(memoryBudgetOf('auto', 'live', 64), 174);
  assert.equal(memoryBudgetOf(300, 'live', 64), 300);
  assert.equal(memoryBudgetOf('auto', 'offline', 64), 0);
  // a protocol module or a comparison: 256, their sessions hold messages during logins
  assert.equal(memoryBudgetOf('auto', 'live', 0, true), 256);
  assert.equal(memoryBudgetOf('auto', 'live', 64, true), 320);
  assert.equal(memoryBudgetOf('auto', 'offline', 0, true), 0);
  assert.equal(memoryBudgetOf(96, 'live', 0, true), 96);
  assert.equal(simConfig().memoryBudgetMB, 'auto', 'auto by default');
  assert.equal(simConfig(['--memory-budget', 'auto']).memoryBudgetMB, 'auto');
  assert.equal(simConfig(['--memory-budget', '96']).memoryBudgetMB, 96);
  assert.throws(() => simConfig(['--memory-budget', 'lots']), /--memory-budget/);
});

const SHAPE = { requests: 4, reqLen: 120, respLen: 900 };

test('a whole replay over its budget: the connections begun meanwhile are counted as overload, the rest replayed', async () => {
  const sim = simReplay(
    SHAPE,
    { sessions: 60, sessionGapMs: 50, stepMs: 10 },
    { latencyMs: 2, loss: 0, seed: 7 },
    simConfig(['--memory-budget', 'auto']),
  );
  const { clock, capture, replay, memory } = sim;
  const run = replay.run();
  const e = replay.engine.stats;
  // about a third of the way in, the resident set passes the auto budget (110 MiB) for a second
  assert.ok(await drive(clock, () => e.sessionsCreated >= 20, 60_000));
  memory.rssMB = 130;
  const overAt = clock.now();
  assert.ok(await drive(clock, () => clock.now() >= overAt + 1000, 60_000));
  memory.rssMB = 80;
  assert.ok(await drive(clock, () => capture.remaining === 0 && replay.engine.busySessions() === 0, 60_000));
  replay.stop('test over');
  await drive(clock, () => false, 5000);
  await run;
  const refused = e.outcomes.overload;
  // ~1 s of 50 ms gaps: about 20 connections began while over; none of them replayed, none lost silently
  assert.ok(refused >= 15 && refused <= 22, `refused ${refused}`);
  assert.equal(e.outcomes.completed + refused, 60, JSON.stringify(e.outcomes));
  assert.equal(e.requestsLost.overload, refused * SHAPE.requests);
  const acc = requestAccounting(e, replay.engine.requestsInFlight());
  assert.ok(acc.balanced, JSON.stringify(acc));
  assert.equal(acc.captured, 60 * SHAPE.requests);
  assert.ok(memory.collections >= 1, 'a full collection was asked for');
  assert.match(sim.stdout.text, /memory {5}budget 110 MiB: over it 1 time\(s\), new connections refused for 1\.\d s/);
  assert.ok(sim.log.lines.some((l) => /reached --memory-budget 110 MiB/.test(l)));
  assert.ok(sim.log.lines.some((l) => /replayed again/.test(l)));
});

test('over the budget with a backlog and nothing new to refuse: the sessions with most waiting are given up', async () => {
  // a slow target (400 ms each way): the requests of 10 keep-alive connections wait
  const sim = simReplay(
    { requests: 40, reqLen: 120, respLen: 900 },
    { sessions: 10, sessionGapMs: 1, stepMs: 5 },
    { latencyMs: 400, loss: 0, seed: 3 },
    simConfig(['--memory-budget', '120']),
  );
  const { clock, capture, replay, memory } = sim;
  const run = replay.run();
  const e = replay.engine.stats;
  assert.ok(await drive(clock, () => capture.remaining === 0, 60_000));
  memory.rssMB = 200; // and it stays there
  const at = clock.now();
  // one given up per collection (a second apart): three in 2.5 s
  assert.ok(await drive(clock, () => clock.now() >= at + 2500, 60_000));
  memory.rssMB = 60;
  assert.ok(await drive(clock, () => replay.engine.busySessions() === 0, 120_000));
  replay.stop('test over');
  await drive(clock, () => false, 5000);
  await run;
  assert.ok(e.outcomes.overload >= 3, `sessions given up: ${JSON.stringify(e.outcomes)}`);
  assert.equal(e.outcomes.overload + e.outcomes.completed, 10, JSON.stringify(e.outcomes));
  assert.ok(e.requestsLost.overload > 0);
  const acc = requestAccounting(e, replay.engine.requestsInFlight());
  assert.ok(acc.balanced, JSON.stringify(acc));
  assert.equal(acc.captured, 400);
  assert.match(sim.stdout.text, /session\(s\) given up/);
});

test('under the budget but above 85% of it: collected again each second, open again 2 s after it was reached', () => {
  const eng = fakeEngine([]);
  let gcs = 0;
  const g = new MemoryGovernor(100, eng, () => gcs++, quietLog());
  g.check(101, 0);
  for (let t = 100; t < 2000; t += 100) g.check(95, t);
  assert.ok(g.closed, 'still closed inside the band');
  assert.equal(gcs, 2, 'the first collection and one a second later');
  g.check(95, 2000);
  assert.ok(!g.closed, 'open 2 s after it was reached');
  assert.deepEqual(eng.calls, ['close', 'open']);
});

test('--session-backlog auto: 1024 KiB live, 16 MiB live with a module or a comparison (their sessions hold messages during logins), off for files', () => {
  assert.equal(sessionBacklogOf('auto', 'live'), 1024 * 1024);
  assert.equal(sessionBacklogOf('auto', 'live', true), 16384 * 1024);
  assert.equal(sessionBacklogOf('auto', 'offline', true), Infinity);
  assert.equal(sessionBacklogOf('auto', 'stream'), Infinity);
  assert.equal(sessionBacklogOf(512, 'live', true), 512 * 1024);
  assert.equal(sessionBacklogOf(0, 'live'), Infinity);
});
