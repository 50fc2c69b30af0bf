import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTcpcopyArgs } from '../../../src/cli/tcpcopy-config';
import { helpText, TCPCOPY_OPTIONS } from '../../../src/cli/tcpcopy-options';
import { INTERCEPT_HELP, INTERCEPT_OPTIONS, parseInterceptArgs } from '../../../src/cli/intercept-options';
import { defaultTcpcopyConfig, TCPCOPY_DEFAULTS } from '../../../src/config/tcpcopy-config';
import { INTERCEPT_DEFAULTS } from '../../../src/config/intercept-config';
import { ENGINE_DEFAULTS } from '../../../src/core/engine-config';
import { CHANNEL_DEFAULT_PORT } from '../../../src/channel/constants';

const BASE = ['-x', '80-198.18.0.2:8080', '-s', '198.18.0.3'];

test('tcpcopy: a command line without options gets exactly TCPCOPY_DEFAULTS', () => {
  const c = parseTcpcopyArgs(BASE);
  const { channelPort, ...d } = TCPCOPY_DEFAULTS;
  for (const [k, v] of Object.entries(d)) assert.deepEqual(c[k as keyof typeof c], v, k);
  assert.equal(c.intercepts[0]?.port, channelPort);
  assert.equal(channelPort, CHANNEL_DEFAULT_PORT);
  // -h / -v configs carry the same defaults
  const h = parseTcpcopyArgs(['-h']);
  assert.equal(h.help, true);
  assert.deepEqual({ ...h, help: false }, defaultTcpcopyConfig());
  for (const [k, v] of Object.entries(d)) assert.deepEqual(h[k as keyof typeof h], v, k);
});

test('the engine and the CLI agree: engine-backed defaults are ENGINE_DEFAULTS (600 s for -t/-k)', () => {
  assert.equal(ENGINE_DEFAULTS.sessionTimeoutMs, 600_000);
  assert.equal(ENGINE_DEFAULTS.keepaliveTimeoutMs, 600_000);
  const c = parseTcpcopyArgs(BASE);
  assert.equal(c.sessionTimeoutMs, ENGINE_DEFAULTS.sessionTimeoutMs);
  assert.equal(c.keepaliveTimeoutMs, ENGINE_DEFAULTS.keepaliveTimeoutMs);
  assert.equal(c.rtoMs, ENGINE_DEFAULTS.rtoInitialMs);
  assert.equal(c.mss, ENGINE_DEFAULTS.mss);
  assert.equal(c.mtu, ENGINE_DEFAULTS.mtu);
  assert.equal(c.delayedAckMs, ENGINE_DEFAULTS.delayedAckMs);
  assert.equal(c.replicas, ENGINE_DEFAULTS.replicas);
  assert.equal(c.samplePercent, ENGINE_DEFAULTS.samplePercent);
});

test('help shows the typed defaults in the units of the option', () => {
  const h = helpText('1');
  const line = (long: string): string => h.split('\n').find((l) => l.includes(`--${long} `)) ?? '';
  assert.match(line('session-timeout'), /\(default: 600\)$/);
  assert.match(line('status'), new RegExp(`\\(default: ${TCPCOPY_DEFAULTS.statusIntervalMs / 1000}\\)$`));
  assert.match(line('port'), new RegExp(`\\(default: ${CHANNEL_DEFAULT_PORT}\\)$`));
  assert.ok(TCPCOPY_OPTIONS.find((o) => o.long === 'buffer')?.def === String(TCPCOPY_DEFAULTS.bufferMB));
});

test('intercept: a command line without options gets INTERCEPT_DEFAULTS; help lists every option', () => {
  const c = parseInterceptArgs([]);
  assert.ok(c.kind === 'run');
  if (c.kind !== 'run') return;
  const d = INTERCEPT_DEFAULTS;
  assert.deepEqual(
    [
      c.config.device,
      c.config.port,
      c.config.bind,
      c.config.routeTimeoutS,
      c.config.snaplen,
      c.config.captureDelayMs,
      c.config.logLevel,
      c.config.logFormat,
      c.config.maxRoutes,
      c.config.queueMaxLen,
    ],
    [d.device, d.port, d.bind, d.routeTimeoutS, d.snaplen, d.captureDelayMs, d.logLevel, d.logFormat, d.maxRoutes, 0],
  );
  assert.equal(c.config.filter, `tcp and not port ${d.port}`);
  for (const o of INTERCEPT_OPTIONS) {
    assert.ok(INTERCEPT_HELP.includes(`${o.short !== undefined ? `-${o.short}, ` : ''}--${o.long}`), o.long);
    if (o.def !== undefined) assert.ok(INTERCEPT_HELP.includes(`(default: ${o.def})`), o.long);
  }
});
