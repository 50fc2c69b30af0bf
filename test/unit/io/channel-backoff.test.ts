import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { BACKOFF_MAX_MS, ChannelClient } from '../../../src/io/channel-client';
import type { TimerHandle } from '../../../src/io/types';
import { ManualClock } from '../../sim/manual-clock';

/**
 * Issue 18 item 10: against an intercept that accepts and then fails at once, the reconnect
 * delay grows (it was 100 ms for ever: 80 reconnects and 80 warnings in 6 s), and the log
 * gets a summary instead of a line per attempt. The backoff runs on a manual clock; the
 * sockets are real (loopback), awaited by event, never by a wall-clock margin.
 */

/** A ManualClock that records the delays of the reconnect timers (armed with unref). */
class RecordingClock extends ManualClock {
  readonly redials: number[] = [];
  override setTimeout(fn: () => void, ms: number, unref?: boolean): TimerHandle {
    if (unref === true) this.redials.push(ms);
    return super.setTimeout(fn, ms);
  }
}

/** Waits (bounded) until `cond()`; each wait is one real event-loop turn. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 20_000 && !cond(); i++) await new Promise((r) => setTimeout(r, 1));
  assert.ok(cond(), `timed out waiting for ${what}`);
}

test('reconnect backoff grows against an intercept that accepts and fails; one summary line, not one per attempt', async () => {
  let accepted = 0;
  const srv = net.createServer((s) => {
    accepted++;
    s.on('error', () => {});
    s.destroy();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  const clock = new RecordingClock();
  const warns: string[] = [];
  const infos: string[] = [];
  const c = new ChannelClient(
    { servers: [{ host: '127.0.0.1', port }], connections: 1, reconnect: true, recordBytes: 64, clock },
    () => {},
    { warn: (m) => warns.push(m), info: (m) => infos.push(m) },
  );
  const downs: string[] = [];
  c.onDown = (ev) => downs.push(ev.reason);
  try {
    await c.connect();
    const LOSSES = 9;
    for (let k = 1; k <= LOSSES; k++) {
      await until(() => clock.redials.length === k, `reconnect timer ${k}`);
      assert.equal(clock.pending, 1, 'only the reconnect timer is armed');
      if (k < LOSSES) assert.ok(clock.step(), 'the reconnect attempt runs');
    }
    assert.deepEqual(clock.redials, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    assert.ok(clock.redials.every((d) => d <= BACKOFF_MAX_MS));
    assert.ok(accepted >= 2, `intercept accepted ${accepted} connections`);
    // first failure in full, then a summary once 10 s of failures have passed
    assert.ok(warns.length >= 2 && warns.length <= 3, warns.join('\n'));
    assert.match(warns[0] ?? '', /connection lost .*reconnecting in 100 ms/);
    assert.match(warns[1] ?? '', /still failing: \d+ more failures in the last 1\d s \(\d+ in a row; last: /);
    assert.ok(infos.length <= 3, `reconnected lines are rate-limited too: ${infos.join('\n')}`);
  } finally {
    await c.close();
    await new Promise<void>((r) => srv.close(() => r()));
  }
});

test('a connection that stayed up STABLE_MS starts the backoff over', async () => {
  const socks: net.Socket[] = [];
  const srv = net.createServer((s) => {
    s.on('error', () => {});
    socks.push(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  const clock = new RecordingClock();
  const c = new ChannelClient(
    { servers: [{ host: '127.0.0.1', port }], connections: 1, reconnect: true, recordBytes: 64, clock },
    () => {},
    { warn() {}, info() {} },
  );
  try {
    await c.connect();
    // three quick losses: 100, 200, 400
    for (let k = 1; k <= 3; k++) {
      await until(() => socks.length === k, `connection ${k}`);
      socks[k - 1]?.destroy();
      await until(() => clock.redials.length === k, `reconnect timer ${k}`);
      clock.step();
    }
    await until(() => socks.length === 4 && c.up, 'connection 4 up');
    clock.advance(15_000); // up for longer than STABLE_MS
    socks[3]?.destroy();
    await until(() => clock.redials.length === 4, 'reconnect timer 4');
    assert.deepEqual(clock.redials, [100, 200, 400, 100]);
  } finally {
    await c.close();
    for (const s of socks) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  }
});
