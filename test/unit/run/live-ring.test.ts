import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LIVE_RING_BLOCK_TIMEOUT_MS, liveCaptures, liveRingGeometry } from '../../../src/run/live-input';
import { parseTcpcopyArgs } from '../../../src/cli/tcpcopy-config';

test('live capture ring: smallest power-of-two block that holds one snaplen packet, 10 ms retire', () => {
  assert.deepEqual(liveRingGeometry(65535), { blockKB: 128, blockTimeoutMs: LIVE_RING_BLOCK_TIMEOUT_MS });
  assert.equal(liveRingGeometry(1500).blockKB, 4);
  assert.equal(liveRingGeometry(200).blockKB, 4);
  assert.equal(liveRingGeometry(262144).blockKB, 512);
  // a 16 MiB ring then covers well over a second at moderate packet rates
  const g = liveRingGeometry(65535);
  assert.ok(((16 * 1024) / g.blockKB) * g.blockTimeoutMs >= 1000);
});

test('live capture ring: --capture-delay sets the retire timeout', () => {
  assert.equal(liveRingGeometry(65535, 40).blockTimeoutMs, 40);
  assert.equal(liveRingGeometry(65535, 40).blockKB, 128);
});

test('live captures: client packets inbound; with online replies one capture of both directions (replies stay in order with their commands)', () => {
  const cfg = parseTcpcopyArgs(['-x', '3306-198.18.0.2:3306', '-s', '198.18.0.3']);
  assert.deepEqual(liveCaptures(cfg, false), [['tcp and (dst port 3306)', 'in']]);
  assert.deepEqual(liveCaptures(cfg, true), [['tcp and (dst port 3306 or src port 3306)', 'both']]);
  const hosted = parseTcpcopyArgs(['-x', '198.18.1.1:3306-198.18.0.2:3306', '-s', '198.18.0.3']);
  assert.deepEqual(liveCaptures(hosted, true), [
    ['tcp and ((dst host 198.18.1.1 and dst port 3306) or (src host 198.18.1.1 and src port 3306))', 'both'],
  ]);
  const own = parseTcpcopyArgs(['-x', '3306-198.18.0.2:3306', '-s', '198.18.0.3', '-F', 'tcp port 3306']);
  assert.deepEqual(liveCaptures(own, true), [['tcp port 3306', 'both']]);
});
