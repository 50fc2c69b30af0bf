import { test } from 'node:test';
import assert from 'node:assert/strict';
import { abLine, matchLags, parseLoads, parseModels, type LabAbResult, type LabRow } from '../../../bench/lab';
import type { AccessRecord } from '../../../src/lab/access-log';

test('bench loads: ka:RATE and short:RATE with the default concurrencies; bad items are refused', () => {
  assert.deepEqual(parseLoads('ka:2000,short:4000'), [
    { keepAlive: true, rate: 2000, concurrency: 32 },
    { keepAlive: false, rate: 4000, concurrency: 16 },
  ]);
  assert.deepEqual(parseLoads(''), []);
  assert.throws(() => parseLoads('ka:2000,fast:10'), /fast:10.*expected ka:RATE or short:RATE/);
  assert.throws(() => parseLoads('ka:'), /expected/);
});

test('bench models: remote and inline only', () => {
  assert.deepEqual(parseModels('remote,inline'), ['remote', 'inline']);
  assert.deepEqual(parseModels('inline'), ['inline']);
  assert.throws(() => parseModels('remote,local'), /"local": expected remote or inline/);
});

test('bench lag matching: target requests matched to online ones by client address, port and order', () => {
  const rec = (addr: string, port: number, msec: number): AccessRecord =>
    ({ remoteAddr: addr, remotePort: port, msec }) as AccessRecord;
  const online = [rec('198.18.2.1', 1000, 100), rec('198.18.2.1', 1000, 200), rec('198.18.2.2', 1000, 150)];
  const target = [
    rec('198.18.2.2', 1000, 160),
    rec('198.18.2.1', 1000, 107),
    rec('198.18.2.1', 1000, 230),
    rec('198.18.2.9', 5, 1),
  ];
  assert.deepEqual(matchLags(online, target), [7, 10, 30]);
});

test('bench A/B line: medians of both sides, ratio per pair, worst fidelity', () => {
  const row = (cpu: number, lag: number, fidelity: number, stealPct = 0): LabRow =>
    ({ tcpcopyCpuUsPerRequest: cpu, lagP99Ms: lag, fidelity, stealPct }) as LabRow;
  const r: LabAbResult = {
    load: { keepAlive: true, rate: 2000, concurrency: 32 },
    model: 'remote',
    a: { tcpcopyArgs: [], nodeArgs: [] },
    b: { tcpcopyArgs: ['--capture-delay', '20'], nodeArgs: [] },
    rowsA: [row(20, 10, 1), row(30, 12, 0.999, 9)],
    rowsB: [row(10, 15, 1), row(15, 20, 1)],
    cpuRatios: [0.5, 0.5],
    cpuRatioMedian: 0.5,
    lagP99Deltas: [5, 8],
    quietPairs: [0],
    cpuRatioMedianQuiet: 0.5,
    maxStealPct: 3,
  };
  const line = abLine(r);
  assert.match(
    line,
    /^ab\[remote\]: keepalive 2000\/s: tcpcopy us\/req A 20\.0 B 10\.0; B\/A per pair 0\.50 0\.50\* \(median 0\.50; 0\.50 over 1 quiet pairs; \* = steal over 3%\)/,
  );
  assert.match(line, /lag p99 A 10 B 15 ms/);
  assert.match(line, /fidelity A 99\.90% B 100\.00% \(worst\)/);
});
