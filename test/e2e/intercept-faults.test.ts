import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { InterceptStats } from '../../src/intercept/types';
import { withLab } from '../../src/lab/lab';
import {
  skipUnlessRoot,
  TCPCOPY,
  startIntercept,
  startLiveTcpcopy,
  waitSettled,
  type TcpcopyJsonReport,
  accessLogLines,
} from './replay-helpers';

/**
 * Issue 6 part 4: intercept killed (SIGKILL) and restarted during a live replay. tcpcopy -L
 * reconnects by itself, the replay continues, and what the target misses is only what the
 * outage explains (sessions that lost their SYN-ACK while the channel was down end with the
 * 'channelDown' outcome and their requests are counted as lost with that reason).
 */

const TARGET = '198.18.0.2';

function say(line: string): void {
  process.stdout.write(`# ${line}\n`);
}

type Report = TcpcopyJsonReport & { channel: Record<string, number>; engine: { repliesNoSession: number } };

test(
  'intercept killed and restarted during a live replay (issue 6)',
  { skip: skipUnlessRoot(), timeout: 300_000 },
  async () => {
    await withLab({ prefix: 'tcf3', clientAddresses: 20 }, async (lab) => {
      const on = await lab.startNginx('online', { port: 80 });
      const tg = await lab.startNginx('target', { port: 8080 });
      let icp = await startIntercept(lab);
      const tc = await startLiveTcpcopy(lab, ['-x', `80-${TARGET}:8080`, '-s', '198.18.0.3', '-L']);
      const mo = accessLogLines(on),
        mt = accessLogLines(tg);
      // 12 s of short connections at 200/s, plus 4 keep-alive connections at 100/s in total
      const loads = Promise.all([
        lab.load('client', {
          url: 'http://198.18.1.1/',
          requests: 2400,
          durationMs: 12_000,
          rate: 200,
          concurrency: 10,
          keepAlive: false,
        }),
        lab.load('client', {
          url: 'http://198.18.1.1/',
          requests: 1200,
          durationMs: 12_000,
          rate: 100,
          concurrency: 4,
          keepAlive: true,
        }),
      ]);
      // the fault comes once the replay is under way: the target has logged a quarter of the load
      for (let i = 0; i < 600 && accessLogLines(tg) - mt < 900; i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(accessLogLines(tg) - mt >= 900, 'the replay got under way before the fault');
      const atKill = { online: accessLogLines(on) - mo, target: accessLogLines(tg) - mt };
      await icp.stop('SIGKILL', 1000);
      const killedAt = Date.now();
      await new Promise((r) => setTimeout(r, 2000));
      icp = await startIntercept(lab);
      const restartedAt = Date.now();
      const atRestart = { online: accessLogLines(on) - mo, target: accessLogLines(tg) - mt };
      // load after the restart, whatever the first load's timing: the check of the replay after
      // the restart must have requests to look at (it was 0 of 0 when intercept's start outlasted
      // the first load)
      const afterLoad = await lab.load('client', {
        url: 'http://198.18.1.1/after',
        requests: 600,
        durationMs: 30_000,
        rate: 200,
        concurrency: 10,
        keepAlive: false,
      });
      await loads;
      const online = accessLogLines(on) - mo;
      const target = await waitSettled(() => accessLogLines(tg) - mt, online, 20_000, 1500);
      const r = await tc.stop();
      await icp.stop('SIGINT', 5000);
      const rp = r.report as Report | null;
      assert.ok(rp, 'tcpcopy wrote its report');
      const lost = Object.entries(rp.engine.requestsLost).filter(([, v]) => v > 0);
      const lostTotal = lost.reduce((a, [, v]) => a + v, 0);
      const after = online - atRestart.online;
      // the requests the online server logged from restart + 1 s on (the load started after the
      // restart among them), and how many of those very requests (client address, port, URL)
      // the target logged
      const key = (x: { remoteAddr: string; remotePort: number; url: string }): string =>
        `${x.remoteAddr}:${x.remotePort} ${x.url}`;
      const tgKeys = new Set(tg.readLog().records.slice(mt).map(key));
      const onAfter = on
        .readLog()
        .records.slice(mo)
        .filter((x) => x.msec >= restartedAt + 1000 || x.path === '/after');
      const onlineAfter = onAfter.length;
      const afterRestart = onAfter.filter((x) => tgKeys.has(key(x))).length;
      say(
        `faults: outage ${restartedAt - killedAt} ms; online=${online} target=${target} missing=${online - target}; at kill online/target=${atKill.online}/${atKill.target}, at restart ${atRestart.online}/${atRestart.target}; after restart online=${after}`,
      );
      say(
        `faults: from restart+1s: online=${onlineAfter} target=${afterRestart}; tcpcopy channel=${JSON.stringify(rp.channel)} outcomes=${JSON.stringify(rp.engine.outcomes)} requestsLost=${JSON.stringify(Object.fromEntries(lost))}`,
      );
      assert.equal(r.code, 0, r.stderr.slice(-2000));
      assert.match(r.stderr, /reconnected/, 'tcpcopy logged its reconnection');
      assert.ok((rp.channel['reconnects'] ?? 0) >= 1, 'tcpcopy reconnected by itself');
      assert.ok(
        afterLoad.responsesOk >= 500 && onlineAfter >= afterLoad.responsesOk,
        `load after the restart: ${afterLoad.responsesOk} answered, online logged ${onlineAfter}`,
      );
      assert.ok(
        afterRestart >= onlineAfter * 0.999,
        `replay continued after the restart: ${afterRestart}/${onlineAfter}`,
      );
      assert.ok(
        online - target <= lostTotal,
        `every missing request is counted as lost (missing ${online - target}, counted ${lostTotal})`,
      );
      // the loss is the outage's: counted as channelDown, no other reason (not a wall-clock bound)
      assert.deepEqual(
        lost.map(([k]) => k).filter((k) => k !== 'channelDown'),
        [],
        'every lost request is blamed on the channel outage',
      );
    });
  },
);

test(
  'channel v2: wrong --secret-file refused, garbage on 36524 disconnected, intercept keeps serving (issue 6)',
  { skip: skipUnlessRoot(), timeout: 300_000 },
  async () => {
    await withLab({ prefix: 'tcf4', clientAddresses: 10 }, async (lab) => {
      const on = await lab.startNginx('online', { port: 80 });
      const tg = await lab.startNginx('target', { port: 8080 });
      const good = path.join(lab.dir, 'secret'),
        wrong = path.join(lab.dir, 'wrong');
      fs.writeFileSync(good, 'k7Qh2mT9vB4xW1pL6sN3zR8c\n');
      fs.writeFileSync(wrong, 'not-the-right-secret-at-all\n');
      const rep = path.join(lab.dir, 'icp.json');
      const icp = await startIntercept(lab, ['--secret-file', good, '--report', rep]);
      const bad = await lab.exec(
        'online',
        [
          process.execPath,
          TCPCOPY,
          '-x',
          `80-${TARGET}:8080`,
          '-s',
          '198.18.0.3',
          '--secret-file',
          wrong,
          '--status',
          '0',
        ],
        { timeoutMs: 20_000 },
      );
      say(
        `v2 wrong secret: tcpcopy exit ${bad.code}: ${bad.stderr
          .trim()
          .split('\n')
          .filter((l) => /secret/.test(l))
          .join(' | ')}`,
      );
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /refused the shared secret: --secret-file differs/);
      assert.match(icp.stderr, /refused: wrong shared secret/);
      const stray =
        "const s=require('net').connect(36524,'198.18.0.3',()=>{s.write('GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n');s.write(require('crypto').randomBytes(4096));});s.on('error',()=>{});s.on('close',()=>{console.log('closed');});setTimeout(()=>{console.log('still open');process.exit(1);},5000).unref();";
      const g = await lab.exec('online', [process.execPath, '-e', stray], { timeoutMs: 20_000 });
      assert.match(g.stdout, /closed/);
      const mo = accessLogLines(on),
        mt = accessLogLines(tg);
      const tc = await startLiveTcpcopy(lab, ['-x', `80-${TARGET}:8080`, '-s', '198.18.0.3', '--secret-file', good]);
      await lab.load('client', {
        url: 'http://198.18.1.1/',
        requests: 1000,
        durationMs: 10_000,
        concurrency: 10,
        keepAlive: false,
      });
      const online = accessLogLines(on) - mo;
      const got = await waitSettled(() => accessLogLines(tg) - mt, online, 20_000, 1500);
      const r = await tc.stop();
      await icp.stop('SIGINT', 5000);
      const st = JSON.parse(fs.readFileSync(rep, 'utf8')) as InterceptStats;
      say(
        `v2: online=${online} target=${got}; intercept authOk=${st.authOk} authRefused=${st.authRefused} badHello=${st.badHello} routed=${st.routed}`,
      );
      assert.equal(r.code, 0, r.stderr.slice(-1500));
      assert.ok(got / online >= 0.999, `${got}/${online}`);
      assert.ok(st.authRefused >= 1 && st.authOk >= 2 && st.badHello >= 1);
    });
  },
);
