import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { allNamespaces } from '../../src/lab/names';
import { listNamespaces } from '../../src/lab/topology';
import { skipUnlessRoot } from './replay-helpers';

const DEMO = path.join(__dirname, '..', '..', 'src', 'lab', 'demo-main.js');
const TCPCOPY = path.join(__dirname, '..', '..', 'src', 'cli', 'tcpcopy-main.js');

/** Runs the demo entry (or `args`) as a child (it owns SIGINT handling and the lab); resolves exit code and output. */
function runDemoChild(timeoutMs: number, args: string[] = [DEMO]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      out += b.toString();
    });
    // the demo removes its lab on SIGINT too
    const t = setTimeout(() => child.kill('SIGINT'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out });
    });
  });
}

/**
 * `npm run demo`'s program: live tcpcopy in the lab, real traffic, the demo checks the target's
 * access log itself; here we check its verdict, that its printed counts agree, and that the
 * lab is gone afterwards.
 */
test(
  'the demo replays live traffic to the target and reports OK, then removes its lab',
  { skip: skipUnlessRoot(), timeout: 180_000 },
  async () => {
    const r = await runDemoChild(150_000);
    process.stdout.write(`# ${r.out.trim().split('\n').slice(-22).join('\n# ')}\n`);
    assert.equal(r.code, 0, `demo exit code (output above)`);
    const m = /^demo: OK: the target received (\d+) of (\d+) requests \((\d+\.\d)%\)$/m.exec(r.out);
    assert.ok(m, 'verdict line');
    const [, got, want] = m;
    assert.equal(got, want);
    assert.ok(Number(want) >= 3000, `at least 3000 requests expected, got ${want}`);
    const onlineLine = /online nginx \(198\.18\.0\.1:80\) logged\s+(\d+) requests/.exec(r.out);
    const targetLine = /target nginx \(198\.18\.0\.2:8080\) logged\s+(\d+) requests/.exec(r.out);
    const acct = /captured (\d+), replayed (\d+), lost none/.exec(r.out);
    assert.equal(onlineLine?.[1], want);
    assert.equal(targetLine?.[1], want);
    assert.equal(acct?.[1], want, 'tcpcopy captured every request');
    assert.equal(acct?.[2], want, 'tcpcopy replayed every request');
    assert.match(r.out, /every request reached the target from an original client address/);
    // npm run demo is dual stack: each family fully on the target
    const fam = /by family\s+IPv4 online (\d+), target (\d+); IPv6 online (\d+), target (\d+)/.exec(r.out);
    assert.ok(fam, 'per-family line');
    assert.equal(fam[1], fam[2], 'IPv4: target = online');
    assert.equal(fam[3], fam[4], 'IPv6: target = online');
    assert.ok(Number(fam[3]) >= 1500, `IPv6 requests: ${fam[3]}`);
    const mine = new Set(allNamespaces('demo'));
    const left = (await listNamespaces()).filter((n) => mine.has(n));
    assert.deepEqual(left, [], 'no demo namespaces remain');
  },
);

/** `tcpcopy lab run --agent`: the same demo with the agent on online and the replay on a fifth host (issue 17). */
test(
  'lab run --agent: the agent on online, the replayer on the replay host, every request on the target',
  { skip: skipUnlessRoot(), timeout: 180_000 },
  async () => {
    const r = await runDemoChild(150_000, [TCPCOPY, 'lab', 'run', '--agent']);
    process.stdout.write(`# ${r.out.trim().split('\n').slice(-22).join('\n# ')}\n`);
    assert.equal(r.code, 0, `exit code (output above)`);
    const m = /^demo: OK: the target received (\d+) of (\d+) requests/m.exec(r.out);
    assert.ok(m, 'verdict line');
    assert.equal(m[1], m[2]);
    assert.ok(Number(m[2]) >= 3000, `at least 3000 requests expected, got ${m[2]}`);
    const targetLine = /target nginx \(198\.18\.0\.2:8080\) logged\s+(\d+) requests/.exec(r.out);
    assert.equal(targetLine?.[1], m[2]);
    assert.match(r.out, /on online: +ip netns exec demoonline tcpcopy agent -i \S+ -x 80 --to 198\.18\.0\.5:36525/);
    assert.match(r.out, /on replay: +ip netns exec demoreplay tcpcopy -i tcp:\/\/198\.18\.0\.5:36525/);
    assert.match(r.out, /agent \| .*connected|agent \| .*streaming to replayer/);
    const mine = new Set(allNamespaces('demo'));
    const left = (await listNamespaces()).filter((n) => mine.has(n));
    assert.deepEqual(left, [], 'no demo namespaces remain');
  },
);

/** `tcpcopy lab run --ipv6`: the dual-stack demo (issue 16): both families at once, channel v2. */
test(
  'lab run --ipv6: IPv4 and IPv6 clients at once, every request of each family on the target',
  { skip: skipUnlessRoot(), timeout: 180_000 },
  async () => {
    const r = await runDemoChild(150_000, [TCPCOPY, 'lab', 'run', '--ipv6']);
    process.stdout.write(`# ${r.out.trim().split('\n').slice(-22).join('\n# ')}\n`);
    assert.equal(r.code, 0, `exit code (output above)`);
    const m = /^demo: OK: the target received (\d+) of (\d+) requests/m.exec(r.out);
    assert.ok(m, 'verdict line');
    assert.equal(m[1], m[2]);
    const fam = /by family\s+IPv4 online (\d+), target (\d+); IPv6 online (\d+), target (\d+)/.exec(r.out);
    assert.ok(fam, 'per-family line');
    assert.equal(fam[1], fam[2], 'IPv4: target = online');
    assert.equal(fam[3], fam[4], 'IPv6: target = online');
    assert.ok(Number(fam[3]) >= 1500, `at least 1500 IPv6 requests expected, got ${fam[3]}`);
    assert.match(r.out, /-x '80-198\.18\.0\.2:8080,80-\[2001:2::2\]:8080' -s 198\.18\.0\.3 --secret-file /);
    const mine = new Set(allNamespaces('demo'));
    const left = (await listNamespaces()).filter((n) => mine.has(n));
    assert.deepEqual(left, [], 'no demo namespaces remain');
  },
);
