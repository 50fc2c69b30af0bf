import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { withLab, type Lab } from '../../src/lab/lab';
import { skipUnlessRoot, INTERCEPT, startIntercept, TCPCOPY } from './replay-helpers';

interface DoctorJson {
  ok: boolean;
  results: { name: string; verdict: string; detail: string; fix?: string }[];
  notes: string[];
}

/** Runs a doctor in a lab host with --json; returns exit code, parsed document, failing check names. */
async function doctor(
  lab: Lab,
  host: 'online' | 'assistant' | 'target',
  args: string[],
): Promise<{ code: number; doc: DoctorJson; failed: string[]; text: string }> {
  const cli = host === 'online' ? TCPCOPY : INTERCEPT;
  const r = await lab.exec(host, [process.execPath, cli, 'doctor', ...args, '--json'], { timeoutMs: 30_000 });
  let doc: DoctorJson;
  try {
    doc = JSON.parse(r.stdout) as DoctorJson;
  } catch {
    throw new Error(`${host} doctor printed no JSON (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
  const failed = doc.results.filter((x) => x.verdict === 'fail').map((x) => x.name);
  return {
    code: r.code,
    doc,
    failed,
    text: doc.results.map((x) => `${x.verdict} ${x.name}: ${x.detail}`).join('\n# '),
  };
}

/**
 * Issue 5 part 2: `tcpcopy doctor` / `intercept doctor` in the lab. A healthy lab passes on
 * all three hosts; then each setting is broken in turn (and restored) and the verdict must
 * name it: (a) the target's route to the client net removed, (b) ip_forward on the
 * assistant, (c) strict rp_filter on a real asymmetric path (a second target<->assistant
 * link carries the replies), (d) an iptables DROP for the copies on the target.
 */
test(
  'doctor: healthy lab passes; a missing route, ip_forward, strict rp_filter and an iptables drop are named',
  { skip: skipUnlessRoot() },
  async () => {
    await withLab({ prefix: 'tcxd', clientAddresses: 2 }, async (lab) => {
      await lab.startNginx('target', { port: 8080 });
      await startIntercept(lab);
      const asDev = lab.hosts.assistant.dev;
      const tcp = (): ReturnType<typeof doctor> =>
        doctor(lab, 'online', ['-x', '80-198.18.0.2:8080', '-s', '198.18.0.3', '--wait', '1000']);
      const asst = (): ReturnType<typeof doctor> => doctor(lab, 'assistant', ['-i', asDev]);
      const tgt = (assistant = '198.18.0.3'): ReturnType<typeof doctor> =>
        doctor(lab, 'target', [
          '--target',
          '--client-net',
          '198.18.1.0/24',
          '--assistant',
          assistant,
          '--online',
          '198.18.0.1',
          '--port',
          '8080',
        ]);
      const sh = async (host: 'target' | 'assistant', cmd: string): Promise<void> => {
        const r = await lab.exec(host, ['sh', '-c', cmd]);
        assert.equal(r.code, 0, `${cmd}: ${r.stderr}`);
      };
      const healthy = async (when: string): Promise<void> => {
        const [t, a, g] = [await tcp(), await asst(), await tgt()];
        process.stdout.write(`# ${when}: tcpcopy doctor ${t.code}, intercept doctor ${a.code}, --target ${g.code}\n`);
        assert.equal(t.code, 0, `tcpcopy doctor (${when}):\n# ${t.text}`);
        assert.equal(t.doc.results.find((x) => x.name === 'probe')?.verdict, 'ok');
        assert.equal(a.code, 0, `intercept doctor (${when}):\n# ${a.text}`);
        assert.equal(g.code, 0, `intercept doctor --target (${when}):\n# ${g.text}`);
      };
      await healthy('healthy lab');

      // (a) no route for the client net on the target: the probe fails, the target check names the route
      await sh('target', 'ip route del 198.18.1.0/24');
      const a1 = await tcp();
      assert.equal(a1.code, 1);
      assert.ok(a1.failed.includes('probe'), a1.text);
      assert.ok(
        a1.doc.notes.some((n) =>
          n.includes('intercept doctor --target --client-net 198.18.1.0/24 --assistant 198.18.0.3'),
        ),
        a1.doc.notes.join('\n'),
      );
      const a2 = await tgt();
      assert.equal(a2.code, 1);
      assert.deepEqual(a2.failed, ['route'], a2.text);
      assert.match(a2.doc.results[0]?.fix ?? '', /ip route replace 198\.18\.1\.0\/24 via 198\.18\.0\.3/);
      await sh('target', `ip route add 198.18.1.0/24 via 198.18.0.3 dev ${lab.hosts.target.dev}`);

      // (b) forwarding on the assistant: the probe may still pass, the assistant check must fail
      await sh('assistant', 'sysctl -qw net.ipv4.ip_forward=1');
      const b1 = await asst();
      assert.equal(b1.code, 1);
      assert.deepEqual(b1.failed, ['ip_forward'], b1.text);
      await sh('assistant', 'sysctl -qw net.ipv4.ip_forward=0');

      // (c) an asymmetric path: replies to the clients leave by a second link to the assistant,
      // copies arrive on the LAN link; strict rp_filter drops them
      execFileSync('ip', [
        'link',
        'add',
        'tcxdtg-as',
        'netns',
        'tcxdtarget',
        'type',
        'veth',
        'peer',
        'name',
        'tcxdas-tg',
        'netns',
        'tcxdassist',
      ]);
      await sh(
        'target',
        'ip addr add 198.18.4.2/24 dev tcxdtg-as && ip link set tcxdtg-as up && ip route replace 198.18.1.0/24 via 198.18.4.3 dev tcxdtg-as',
      );
      await sh('assistant', 'ip addr add 198.18.4.3/24 dev tcxdas-tg && ip link set tcxdas-tg up');
      await sh('target', 'sysctl -qw net.ipv4.conf.all.rp_filter=1');
      const c1 = await tgt('198.18.4.3');
      assert.equal(c1.code, 1);
      assert.deepEqual(c1.failed, ['rp_filter'], c1.text);
      assert.match(c1.doc.results.find((x) => x.name === 'rp_filter')?.detail ?? '', /tcxdtg-sw.*asymmetric/);
      const c2 = await tcp();
      assert.ok(c2.failed.includes('probe'), `strict rp_filter drops the probe SYN:\n# ${c2.text}`);
      await sh('target', 'sysctl -qw net.ipv4.conf.all.rp_filter=0');
      const c3 = await tgt('198.18.4.3');
      assert.equal(c3.code, 0, `rp_filter=0 on the asymmetric path passes:\n# ${c3.text}`);
      await sh(
        'target',
        `ip route replace 198.18.1.0/24 via 198.18.0.3 dev ${lab.hosts.target.dev} && ip link del tcxdtg-as`,
      );

      // (d) an iptables DROP for the copies on the target
      const rule = '-s 198.18.1.0/24 -p tcp --dport 8080 -j DROP';
      await sh('target', `iptables -I INPUT ${rule}`);
      const d1 = await tgt();
      assert.equal(d1.code, 1);
      assert.deepEqual(d1.failed, ['firewall-copies'], d1.text);
      assert.match(
        d1.doc.results.find((x) => x.name === 'firewall-copies')?.detail ?? '',
        /-A INPUT -s 198\.18\.1\.0\/24 -p tcp -m tcp --dport 8080 -j DROP/,
      );
      const d2 = await tcp();
      assert.ok(d2.failed.includes('probe'), d2.text);
      await sh('target', `iptables -D INPUT ${rule}`);

      await healthy('restored lab');
    });
  },
);
