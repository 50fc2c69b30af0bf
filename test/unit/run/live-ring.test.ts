import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LIVE_RING_BLOCK_TIMEOUT_MS, liveRingGeometry } from '../../../src/run/live-input';

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
