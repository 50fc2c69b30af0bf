import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TcpcopyError } from '../../../src/core/errors';
import { checkReportFile, writeReportFile } from '../../../src/run/report-file';
import { drive, simConfig, simReplay } from '../../sim/replay-harness';

/**
 * Issue 18 item 2: `--report json:PATH` is checked when the replay starts, and written at the
 * end through a temporary file, so a failure there is reported and loses nothing else.
 */

const SHAPE = { requests: 2, reqLen: 100, respLen: 300 };
const PACE = { sessions: 3, sessionGapMs: 5, stepMs: 10 };
const LINK = { latencyMs: 2, loss: 0, seed: 7 };

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'tcpcopy-report-'));
}

/** Runs a small simulated replay to its end; returns the exit code. */
async function runToEnd(sim: ReturnType<typeof simReplay>, midway?: () => void): Promise<number> {
  let code: number | null = null;
  let failure: unknown = null;
  sim.replay.run().then(
    (c) => (code = c),
    (e: unknown) => (failure = e),
  );
  await drive(sim.clock, () => sim.capture.remaining === 0 && sim.replay.engine.busySessions() === 0, 60_000);
  midway?.();
  sim.replay.stop('test over');
  await drive(sim.clock, () => code !== null || failure !== null, 60_000);
  if (failure !== null) throw failure instanceof Error ? failure : new Error(JSON.stringify(failure));
  assert.ok(code !== null, 'run() resolved');
  return code;
}

test('--report json: an unwritable path fails at start-up, naming the option, before anything is replayed', async () => {
  const file = path.join(tmpDir(), 'no-such-dir', 'r.json');
  const sim = simReplay(SHAPE, PACE, LINK, simConfig(['--report', `json:${file}`]));
  await assert.rejects(sim.replay.run(), (e: unknown) => {
    assert.ok(e instanceof TcpcopyError);
    assert.equal(e.code, 'ERR_REPORT_FILE');
    assert.match(e.message, /^--report json:.*no-such-dir.*r\.json: cannot write the report there \(ENOENT\)/);
    return true;
  });
  assert.deepEqual(sim.io.asked, [], 'no sender, channel or capture was opened');
  assert.equal(sim.net.toTarget, 0);
});

test('--report json: a directory in place of the file, or a read-only directory, is refused too', () => {
  const dir = tmpDir();
  assert.throws(() => checkReportFile(dir), /it is a directory/);
  assert.doesNotThrow(() => checkReportFile(path.join(dir, 'new.json')));
  if (process.getuid?.() !== 0) {
    const ro = path.join(dir, 'ro');
    fs.mkdirSync(ro, 0o500);
    assert.throws(() => checkReportFile(path.join(ro, 'r.json')), /EACCES/);
  }
});

test('--report json: written at the end through a temporary file (complete JSON, nothing left over)', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'r.json');
  fs.writeFileSync(file, 'an older report\n');
  const sim = simReplay(SHAPE, PACE, LINK, simConfig(['--report', `json:${file}`]));
  assert.equal(await runToEnd(sim), 0);
  const json = JSON.parse(fs.readFileSync(file, 'utf8')) as {
    stopReason: string;
    accounting: { captured: number; replayed: number };
  };
  assert.equal(json.stopReason, 'test over');
  assert.deepEqual([json.accounting.captured, json.accounting.replayed], [6, 6]);
  assert.deepEqual(fs.readdirSync(dir), ['r.json'], 'no temporary file left');
});

test('--report json: a write that fails at the end is logged with exit code 1; the text report is printed, run() resolves', async () => {
  const dir = tmpDir();
  const sub = path.join(dir, 'sub');
  fs.mkdirSync(sub);
  const file = path.join(sub, 'r.json');
  const sim = simReplay(SHAPE, PACE, LINK, simConfig(['--report', `json:${file}`]));
  const code = await runToEnd(sim, () => fs.rmSync(sub, { recursive: true }));
  assert.equal(code, 1);
  assert.match(sim.stdout.text, /tcpcopy report \(live/);
  assert.ok(
    sim.log.lines.some((l) => /^error: --report json:.*r\.json: cannot write the report there \(ENOENT\)/.test(l)),
    sim.log.lines.join('\n'),
  );
  assert.ok(sim.net.sender.closed && sim.net.simChannel?.closed === true, 'the edges were still closed');
});

test('writeReportFile: replaces the file whole, or fails leaving the old one', () => {
  const dir = tmpDir();
  const file = path.join(dir, 'r.json');
  writeReportFile(file, '{"a":1}\n');
  writeReportFile(file, '{"a":2}\n');
  assert.equal(fs.readFileSync(file, 'utf8'), '{"a":2}\n');
  assert.throws(
    () => writeReportFile(path.join(dir, 'gone', 'r.json'), '{}'),
    (e: unknown) => {
      assert.ok(e instanceof TcpcopyError);
      assert.equal(e.code, 'ERR_REPORT_FILE');
      return true;
    },
  );
  assert.deepEqual(fs.readdirSync(dir), ['r.json']);
});
