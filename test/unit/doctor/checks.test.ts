import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkConntrackInvalid,
  checkConntrackTable,
  checkFirewall,
  checkIpForward,
  checkMtu,
  checkOffload,
  checkProbe,
  checkRoute,
  checkRpFilter,
  effectiveRp,
} from '../../../src/doctor/checks';
import { parseIptablesSave, type FwFlow } from '../../../src/doctor/firewall';
import { parseCidr, parseEthtoolFeatures, parseRouteGet } from '../../../src/doctor/parse';
import { exitStatus, formatJson, formatText } from '../../../src/doctor/result';
import { parseIpv4 } from '../../../src/core/wire/segment';

test('ip_forward on the assistant', () => {
  assert.equal(checkIpForward(0).verdict, 'ok');
  const f = checkIpForward(1);
  assert.equal(f.verdict, 'fail');
  assert.match(f.fix ?? '', /net\.ipv4\.ip_forward=0/);
  assert.equal(checkIpForward(null).verdict, 'skip');
});

test('route on the target: via the assistant, elsewhere, missing', () => {
  const ok = checkRoute(
    parseRouteGet('198.18.1.1 via 198.18.0.3 dev tg src 198.18.0.2 uid 0\n', '', 0),
    '198.18.1.1',
    '198.18.1.0/24',
    '198.18.0.3',
  );
  assert.equal(ok.verdict, 'ok');
  const other = checkRoute(
    parseRouteGet('198.18.1.1 via 198.18.0.9 dev tg src 198.18.0.2 uid 0\n', '', 0),
    '198.18.1.1',
    '198.18.1.0/24',
    '198.18.0.3',
  );
  assert.equal(other.verdict, 'fail');
  assert.match(other.detail, /via 198\.18\.0\.9/);
  const none = checkRoute(
    parseRouteGet('', 'RTNETLINK answers: Network is unreachable', 2),
    '198.18.1.1',
    '198.18.1.0/24',
    '198.18.0.3',
  );
  assert.equal(none.verdict, 'fail');
  assert.equal(none.fix, 'ip route replace 198.18.1.0/24 via 198.18.0.3');
});

test('rp_filter: strict on an asymmetric path fails, loose or symmetric passes', () => {
  assert.equal(effectiveRp(0, 1), 1);
  assert.equal(effectiveRp(2, 1), 2);
  const base = {
    all: 1,
    perDev: new Map([['eth0', 0]]),
    replyDev: 'eth1',
    inDevs: ['eth0'],
    inDevKnown: true,
    kernel: new Map<string, 'pass' | 'drop'>(),
  };
  const strict = checkRpFilter(base, '198.18.1.0/24');
  assert.equal(strict.verdict, 'fail');
  assert.match(strict.detail, /eth0.*asymmetric/);
  assert.equal(checkRpFilter({ ...base, all: 2 }, 'n').verdict, 'ok');
  assert.equal(checkRpFilter({ ...base, replyDev: 'eth0' }, 'n').verdict, 'ok');
  assert.equal(checkRpFilter({ ...base, inDevKnown: false }, 'n').verdict, 'warn');
  // the kernel's answer wins over the sysctl arithmetic
  assert.equal(
    checkRpFilter({ ...base, inDevKnown: false, kernel: new Map([['eth0', 'drop' as const]]) }, 'n').verdict,
    'fail',
  );
  assert.equal(checkRpFilter({ ...base, kernel: new Map([['eth0', 'pass' as const]]) }, 'n').verdict, 'ok');
});

test('firewall, conntrack INVALID and table checks', () => {
  const rules = parseIptablesSave(
    '*filter\n:INPUT ACCEPT [0:0]\n:OUTPUT DROP [0:0]\n-A INPUT -s 198.18.1.0/24 -p tcp -m tcp --dport 8080 -j DROP\n-A INPUT -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n',
  ).rules;
  const copies: FwFlow = {
    hooks: ['prerouting', 'input'],
    src: parseCidr('198.18.1.0/24'),
    dst: null,
    proto: 'tcp',
    sport: null,
    dport: 8080,
  };
  const f = checkFirewall('firewall-copies', 'copies', rules, copies);
  assert.equal(f.verdict, 'fail');
  assert.match(f.detail, /--dport 8080 -j DROP/);
  assert.equal(
    f.fix,
    'iptables -D INPUT -s 198.18.1.0/24 -p tcp -m tcp --dport 8080 -j DROP, or add an ACCEPT rule before it',
  );
  assert.equal(checkFirewall('x', 'copies', rules, { ...copies, dport: 80 }).verdict, 'ok');
  assert.equal(
    checkFirewall('x', 'replies', rules, {
      hooks: ['output'],
      src: null,
      dst: null,
      proto: 'tcp',
      sport: 8080,
      dport: null,
    }).verdict,
    'warn',
  ); // policy DROP
  assert.equal(checkFirewall('x', 'y', null, copies).verdict, 'skip');
  const inv = checkConntrackInvalid(rules, [copies]);
  assert.equal(inv.verdict, 'warn');
  assert.match(inv.detail, /INVALID/);
  assert.equal(checkConntrackTable(10, 100).verdict, 'ok');
  assert.equal(checkConntrackTable(85, 100).verdict, 'warn');
  assert.equal(checkConntrackTable(100, 100).verdict, 'fail');
  assert.equal(checkConntrackTable(null, null).verdict, 'ok');
});

test('offload, MTU, probe verdicts; text and JSON output; exit status', () => {
  assert.equal(
    checkOffload('eth0', parseEthtoolFeatures('generic-receive-offload: on\n'), 'intercept').verdict,
    'warn',
  );
  assert.equal(checkOffload('eth0', parseEthtoolFeatures('generic-receive-offload: off\n'), 'intercept').verdict, 'ok');
  assert.equal(checkMtu(1500, 'eth0', 1400).verdict, 'fail');
  assert.equal(checkMtu(1500, 'eth0', 1500).verdict, 'ok');
  const p = {
    clientIp: parseIpv4('198.18.1.254'),
    clientPort: 40000,
    targetIp: parseIpv4('198.18.0.2'),
    targetPort: 8080,
    ms: 3,
  };
  assert.equal(checkProbe({ ...p, reply: 'synack' }, 'hint').verdict, 'ok');
  assert.match(checkProbe({ ...p, reply: 'rst' }, 'hint').detail, /RST/);
  const none = checkProbe({ ...p, reply: 'none', ms: 2000 }, 'run X');
  assert.equal(none.verdict, 'fail');
  const results = [checkIpForward(0), checkIpForward(1)];
  assert.equal(
    formatText(results),
    "[ OK ] ip_forward: net.ipv4.ip_forward=0: the target's replies end here after capture\n" +
      "[FAIL] ip_forward: net.ipv4.ip_forward=1: this host forwards the target's replies to the real clients (they answer with RSTs, sessions break)\n" +
      '       fix: sysctl -w net.ipv4.ip_forward=0 (and set it in /etc/sysctl.conf)\n',
  );
  assert.equal(exitStatus(results), 1);
  assert.equal(exitStatus([checkIpForward(0), checkConntrackTable(85, 100)]), 0);
  const j = JSON.parse(formatJson(results, ['n'])) as { ok: boolean; results: unknown[]; notes: string[] };
  assert.equal(j.ok, false);
  assert.equal(j.results.length, 2);
});
