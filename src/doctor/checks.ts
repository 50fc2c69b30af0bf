/**
 * The doctor's checks as pure functions: facts in (sysctl values, parsed `ip route get`,
 * parsed firewall rules...), one CheckResult out, with the verdict and the fix. The original
 * TCPCopy README's troubleshooting chapter, made executable.
 */
import { endpointToString } from '../core/wire/segment';
import { check, type CheckResult } from './result';
import { isInvalidOnly, rulesThatCouldDrop, type FwFlow, type FwRule } from './firewall';
import type { EthtoolFeature, RouteGet } from './parse';

/** Assistant: net.ipv4.ip_forward must be 0, or the captured replies also reach the real clients. */
export function checkIpForward(value: number | null): CheckResult {
  if (value === null) return check('ip_forward', 'skip', 'cannot read /proc/sys/net/ipv4/ip_forward');
  if (value === 0)
    return check('ip_forward', 'ok', "net.ipv4.ip_forward=0: the target's replies end here after capture");
  return check(
    'ip_forward',
    'fail',
    `net.ipv4.ip_forward=${value}: this host forwards the target's replies to the real clients (they answer with RSTs, sessions break)`,
    'sysctl -w net.ipv4.ip_forward=0 (and set it in /etc/sysctl.conf)',
  );
}

/**
 * Assistant: net.ipv6.conf.all.forwarding should be 0, or the target's replies to IPv6 clients
 * reach the real clients (a warning: it matters only when IPv6 sessions are replayed).
 */
export function checkIpv6Forward(value: number | null): CheckResult {
  if (value === null) return check('ipv6-forwarding', 'skip', 'no /proc/sys/net/ipv6 (IPv6 disabled on this host)');
  if (value === 0)
    return check('ipv6-forwarding', 'ok', 'net.ipv6.conf.all.forwarding=0: replies to IPv6 clients end here too');
  return check(
    'ipv6-forwarding',
    'warn',
    `net.ipv6.conf.all.forwarding=${value}: with IPv6 transfers this host forwards the target's replies to the real clients (they answer with RSTs)`,
    'sysctl -w net.ipv6.conf.all.forwarding=0 (and set it in /etc/sysctl.conf)',
  );
}

/** Target, IPv6 client prefix: there is no rp_filter for IPv6; only an ip6tables/nft rpfilter match could drop the copies. */
export function checkRpFilter6(rules: readonly FwRule[] | null, clientNet: string): CheckResult {
  const rp = (rules ?? []).filter((r) => /\brpfilter\b|\bfib saddr\b/.test(r.text));
  if (rp.length === 0)
    return check(
      'rp_filter',
      'ok',
      `IPv6 has no rp_filter sysctl and no reverse-path rule drops copies from ${clientNet}`,
    );
  return check(
    'rp_filter',
    'fail',
    `reverse-path filter rule(s) drop copies from ${clientNet} (their source is routed via the assistant, not where they arrive): ${rp.map((r) => r.text).join(' | ')}`,
    'delete the rpfilter rule, or exempt the client prefix from it',
  );
}

/** Target: the client range must be routed to the assistant (`ip route get CLIENT`). */
export function checkRoute(route: RouteGet, clientAddr: string, clientNet: string, assistant: string): CheckResult {
  const fix = `ip route replace ${clientNet} via ${assistant}`;
  if (!route.ok)
    return check(
      'route',
      'fail',
      `ip route get ${clientAddr}: ${route.error ?? 'no route'}: the replies to the copies cannot leave`,
      fix,
    );
  if (route.type !== 'unicast')
    return check(
      'route',
      'fail',
      `ip route get ${clientAddr}: route type ${route.type}: the replies never reach the assistant ${assistant}`,
      fix,
    );
  if (route.via === assistant)
    return check('route', 'ok', `replies to ${clientNet} go via the assistant ${assistant} (dev ${route.dev ?? '?'})`);
  const how = route.via === null ? `directly on dev ${route.dev ?? '?'}` : `via ${route.via} dev ${route.dev ?? '?'}`;
  return check(
    'route',
    'fail',
    `replies to ${clientAddr} go ${how}, not via the assistant ${assistant}: intercept never sees them (and the real clients may get them)`,
    fix,
  );
}

/** Facts for the rp_filter check on the target. */
export interface RpFilterFacts {
  /** net.ipv4.conf.all.rp_filter. */
  all: number | null;
  /** net.ipv4.conf.DEV.rp_filter per interface. */
  perDev: ReadonlyMap<string, number | null>;
  /** Device the replies to the clients leave by (from `ip route get CLIENT`), null when unrouted. */
  replyDev: string | null;
  /** Devices the copies may arrive on. */
  inDevs: readonly string[];
  /** True when inDevs is known (from `--online`), false when it is every interface (a guess). */
  inDevKnown: boolean;
  /** The kernel's own answer (`ip route get TARGET from CLIENT iif DEV`) per device: 'pass' or 'drop'. */
  kernel: ReadonlyMap<string, 'pass' | 'drop'>;
}

/** The effective rp_filter of a device: the maximum of conf.all and conf.DEV (Linux rule). */
export function effectiveRp(all: number | null, dev: number | null): number {
  return Math.max(all ?? 0, dev ?? 0);
}

/**
 * Target: strict reverse-path filtering (rp_filter=1) drops copies whose source (a client
 * address) is routed out of another interface than the one they arrive on.
 */
export function checkRpFilter(f: RpFilterFacts, clientNet: string): CheckResult {
  const bad: string[] = [];
  for (const dev of f.inDevs) {
    const eff = effectiveRp(f.all, f.perDev.get(dev) ?? null);
    const k = f.kernel.get(dev);
    if (k === 'drop' || (k === undefined && eff === 1 && f.replyDev !== null && dev !== f.replyDev))
      bad.push(`${dev} (rp_filter=${eff})`);
  }
  const fix = `sysctl -w net.ipv4.conf.all.rp_filter=2 ${bad.map((b) => `net.ipv4.conf.${b.split(' ')[0] as string}.rp_filter=2`).join(' ')} (loose; or 0)`;
  if (bad.length > 0) {
    const why = `strict rp_filter: copies from ${clientNet} arriving on ${bad.join(', ')} are dropped, because the route back to ${clientNet} leaves by ${f.replyDev ?? 'no interface'} (asymmetric path)`;
    return check('rp_filter', f.inDevKnown || [...f.kernel.values()].includes('drop') ? 'fail' : 'warn', why, fix);
  }
  const vals = f.inDevs.map((d) => `${d}=${effectiveRp(f.all, f.perDev.get(d) ?? null)}`).join(' ');
  return check(
    'rp_filter',
    'ok',
    `copies pass reverse-path filtering (effective rp_filter ${vals || 'n/a'}, replies leave by ${f.replyDev ?? '?'})`,
  );
}

/** Firewall: DROP/REJECT rules that could match a flow, as one result; `what` names the flow. */
export function checkFirewall(name: string, what: string, rules: readonly FwRule[] | null, flow: FwFlow): CheckResult {
  if (rules === null) return check(name, 'skip', `${what}: neither iptables-save nor nft could be read`);
  const hits = rulesThatCouldDrop(rules, flow).filter((r) => !isInvalidOnly(r));
  if (hits.length > 0) {
    const texts = hits.map((r) => `[${r.source} ${r.table} ${r.chain}] ${r.text}`);
    const del =
      hits[0]?.source === 'iptables' && hits[0].text.startsWith('-A ')
        ? `iptables${hits[0].table === 'filter' ? '' : ` -t ${hits[0].table}`} ${hits[0].text.replace(/^-A /, '-D ')}`
        : 'delete the rule (nft delete rule ... handle N; see nft -a list ruleset)';
    return check(
      name,
      'fail',
      `${what} could be dropped by: ${texts.join(' ; ')}`,
      `${del}, or add an ACCEPT rule before it`,
    );
  }
  const pols = rules.filter((r) => r.policy && flow.hooks.includes(r.hook));
  if (pols.length > 0) {
    return check(
      name,
      'warn',
      `${what}: no rule drops it, but ${pols.map((p) => `${p.table} ${p.chain}`).join(', ')} has policy DROP (an ACCEPT rule must let it through)`,
      'make sure an ACCEPT rule matches this traffic',
    );
  }
  return check(name, 'ok', `${what}: no DROP/REJECT rule matches`);
}

/** Conntrack INVALID drops on the flows (the classic killer of replayed mid-stream sessions). */
export function checkConntrackInvalid(rules: readonly FwRule[] | null, flows: readonly FwFlow[]): CheckResult {
  if (rules === null) return check('conntrack-invalid', 'skip', 'firewall rules could not be read');
  const hits = new Set<FwRule>();
  for (const f of flows) for (const r of rulesThatCouldDrop(rules, f)) if (isInvalidOnly(r)) hits.add(r);
  if (hits.size === 0)
    return check('conntrack-invalid', 'ok', 'no rule drops conntrack INVALID packets of the replayed traffic');
  return check(
    'conntrack-invalid',
    'warn',
    `${[...hits].map((r) => `[${r.table} ${r.chain}] ${r.text}`).join(' ; ')}: conntrack calls out-of-window or mid-stream segments INVALID and these rules drop them (replayed sessions stall)`,
    'exempt the replayed traffic (e.g. iptables -t raw -I PREROUTING -s CLIENT_NET -j NOTRACK) or sysctl -w net.netfilter.nf_conntrack_tcp_be_liberal=1',
  );
}

/** The conntrack table must not be full (new connections are dropped when count reaches max). */
export function checkConntrackTable(count: number | null, max: number | null): CheckResult {
  if (count === null || max === null || max <= 0)
    return check('conntrack-table', 'ok', 'nf_conntrack not loaded (no connection tracking)');
  const pct = Math.round((count / max) * 100);
  if (count >= max)
    return check(
      'conntrack-table',
      'fail',
      `nf_conntrack table full: ${count}/${max}: new connections are dropped`,
      `sysctl -w net.netfilter.nf_conntrack_max=${max * 4}`,
    );
  if (pct >= 80)
    return check(
      'conntrack-table',
      'warn',
      `nf_conntrack table ${pct}% full (${count}/${max})`,
      `sysctl -w net.netfilter.nf_conntrack_max=${max * 4}`,
    );
  return check('conntrack-table', 'ok', `nf_conntrack ${count}/${max} entries`);
}

/**
 * Receive offloads (GRO/LRO) on a capture device merge segments, so captures show packets
 * larger than the MTU: harmless for intercept (headers only) and split by tcpcopy (-M), but
 * sizes in captures do not match the wire.
 */
export function checkOffload(
  dev: string,
  features: ReadonlyMap<string, EthtoolFeature> | null,
  role: string,
): CheckResult {
  const name = `offload ${dev}`;
  if (features === null) return check(name, 'skip', `ethtool -k ${dev} failed (is ethtool installed?)`);
  const on = ['generic-receive-offload', 'large-receive-offload'].filter((k) => features.get(k)?.on === true);
  if (on.length === 0) return check(name, 'ok', 'GRO/LRO off: captured segments are MTU-sized');
  return check(
    name,
    'warn',
    `${on.join(', ')} on: ${role} captures segments larger than the MTU (merged by the NIC/kernel)`,
    `ethtool -K ${dev} gro off lro off`,
  );
}

/** tcpcopy -M must not exceed the MTU of the device that sends to the target. */
export function checkMtu(cfgMtu: number, dev: string | null, devMtu: number | null): CheckResult {
  if (dev === null || devMtu === null) return check('mtu', 'skip', 'no route to the target, MTU unknown');
  if (cfgMtu > devMtu) {
    return check(
      'mtu',
      'fail',
      `-M ${cfgMtu} is larger than the MTU ${devMtu} of ${dev}: copies larger than the MTU are refused (DF set)`,
      `tcpcopy -M ${devMtu}`,
    );
  }
  return check('mtu', 'ok', `copies up to ${cfgMtu} bytes fit the MTU ${devMtu} of ${dev}`);
}

/** Result of the end-to-end probe. */
export interface ProbeOutcome {
  /** Probe client address and port. */
  clientIp: number;
  clientPort: number;
  targetIp: number;
  targetPort: number;
  /** What came back over the channel for the probe's 4-tuple: 'synack', 'rst', or 'none'. */
  reply: 'synack' | 'rst' | 'none';
  /** Milliseconds until the reply (or the wait). */
  ms: number;
}

/** The probe's verdict. */
export function checkProbe(p: ProbeOutcome, assistantHint: string): CheckResult {
  const flow = `${endpointToString(p.clientIp, p.clientPort)} -> ${endpointToString(p.targetIp, p.targetPort)}`;
  if (p.reply === 'synack')
    return check('probe', 'ok', `SYN ${flow}: the target's SYN-ACK came back through intercept in ${p.ms} ms`);
  if (p.reply === 'rst') {
    return check(
      'probe',
      'fail',
      `SYN ${flow}: the target answered RST (nothing listens on port ${p.targetPort} there?) in ${p.ms} ms`,
      `start the server on ${endpointToString(p.targetIp, p.targetPort)} or fix -x`,
    );
  }
  return check(
    'probe',
    'fail',
    `SYN ${flow}: no SYN-ACK came back through intercept within ${p.ms} ms`,
    `see the checks below, then run on the other hosts: ${assistantHint}`,
  );
}
