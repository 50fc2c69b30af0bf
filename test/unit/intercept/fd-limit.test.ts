import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { Intercept } from '../../../src/intercept/intercept';
import type { Logger } from '../../../src/intercept/types';
import type { PacketReceiver, PacketSource, SourceStats } from '../../../src/io/types';
import { raiseNofileLimit } from '../../../src/io/native';

/**
 * Issue 18 item 7: file-descriptor exhaustion is logged (rate-limited) and counted, and the
 * soft RLIMIT_NOFILE is raised to the hard limit at start-up.
 */

const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;

class NoSource implements PacketSource {
  async start(_rx: PacketReceiver): Promise<void> {}
  async stop(): Promise<void> {}
  stats(): SourceStats {
    return { received: 0, dropped: 0 };
  }
}

function recLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const w = (m: string): void => {
    lines.push(m);
  };
  return { lines, debug: w, info: w, warn: w, error: w };
}

function softNofile(): number {
  const line = fs
    .readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const m = /^Max open files\s+(\S+)/.exec(line ?? '');
  return m?.[1] === 'unlimited' ? -1 : Number(m?.[1]);
}

test('raiseNofileLimit lifts a lowered soft limit to the hard one', { skip: !hasPrlimit && 'no prlimit' }, () => {
  const first = raiseNofileLimit();
  assert.ok(first !== null, 'the addon has nofileLimit');
  const hard = first.hard;
  const low = hard === -1 ? 1024 : Math.min(256, hard);
  const r = spawnSync('prlimit', ['--pid', String(process.pid), `--nofile=${low}:${hard === -1 ? 'unlimited' : hard}`]);
  assert.equal(r.status, 0, String(r.stderr));
  assert.equal(softNofile(), low, 'prlimit lowered this process');
  const got = raiseNofileLimit();
  assert.ok(got !== null);
  assert.equal(got.before, low);
  assert.equal(got.error, '');
  assert.equal(got.soft, softNofile());
  if (hard !== -1) assert.equal(got.soft, hard);
  else assert.ok(got.soft > low);
});

test('the fd budget: a connection beyond maxConnections is closed, counted and logged', async () => {
  const log = recLogger();
  const icp = new Intercept({ host: '127.0.0.1', port: 0, maxConnections: 2 }, new NoSource(), log);
  await icp.start();
  const socks: net.Socket[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      const s = net.connect(icp.port, '127.0.0.1');
      s.on('error', () => {});
      socks.push(s);
      await new Promise((r) => s.once('connect', r));
    }
    // the 3rd and 4th are closed by intercept
    await Promise.all(socks.slice(2).map((s) => new Promise((r) => (s.destroyed ? r(null) : s.once('close', r)))));
    assert.equal(icp.stats().fdExhausted, 2);
    const warn = log.lines.filter((l) => /file-descriptor limit/.test(l));
    assert.equal(warn.length, 1, `rate-limited to one line: ${log.lines.join('\n')}`);
    assert.match(warn[0] ?? '', /raise the open-files limit/);
  } finally {
    for (const s of socks) s.destroy();
    await icp.stop();
  }
});

test(
  'EMFILE: with the process out of descriptors, intercept says so and counts it',
  { skip: !hasPrlimit && 'no prlimit', timeout: 30_000 },
  async () => {
    const dist = path.resolve(__dirname, '..', '..', '..', 'src');
    const code = `
      const { Intercept } = require(${JSON.stringify(path.join(dist, 'intercept', 'intercept.js'))});
      const { consoleLogger } = require(${JSON.stringify(path.join(dist, 'intercept', 'types.js'))});
      const src = { start: async () => {}, stop: async () => {}, stats: () => ({ received: 0, dropped: 0 }) };
      const icp = new Intercept({ host: '127.0.0.1', port: 0, helloTimeoutMs: 60000 }, src, consoleLogger('info'));
      icp.start().then(() => process.stdout.write(JSON.stringify({ port: icp.port }) + '\\n'));
      process.stdin.on('data', () => process.stdout.write(JSON.stringify(icp.stats()) + '\\n'));
    `;
    const child = spawn('prlimit', ['--nofile=64:64', process.execPath, '-e', code], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const socks: net.Socket[] = [];
    const until = async (cond: () => boolean): Promise<void> => {
      while (!cond()) {
        assert.equal(child.exitCode, null, `child exited: ${err}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      await until(() => out.includes('\n'));
      const { port } = JSON.parse(out.split('\n')[0] as string) as { port: number };
      // far more connections than 64 descriptors allow: the later ones are accepted and closed by libuv
      for (let i = 0; i < 100; i++) {
        const s = net.connect(port, '127.0.0.1');
        s.on('error', () => {});
        socks.push(s);
        await new Promise((r) => {
          s.once('connect', r);
          s.once('close', r);
        });
      }
      await until(() => /EMFILE/.test(err));
      assert.match(err, /out of file descriptors \(EMFILE: this process is at its RLIMIT_NOFILE/);
      assert.match(err, /raise the open-files limit/);
      out = '';
      child.stdin.write('\n');
      await until(() => out.includes('\n'));
      const st = JSON.parse(out.split('\n')[0] as string) as { fdExhausted: number; badHello: number };
      assert.ok(st.fdExhausted >= 1, `fdExhausted ${st.fdExhausted}`);
    } finally {
      for (const s of socks) s.destroy();
      child.kill('SIGKILL');
    }
  },
);
