/**
 * Fact gathering on the local host for the doctor (the I/O edge): runs `ip`, `ethtool`,
 * `iptables-save`, `nft` with a timeout and reads /proc/sys. Nothing here throws: a missing
 * tool or file gives null.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { mergeRulesets, parseIptablesSave, parseNftRuleset, type FwRule } from './firewall';
import {
  parseEthtoolFeatures,
  parseIpAddrOneline,
  parseRouteGet,
  parseSysctlInt,
  type EthtoolFeature,
  type IfAddr,
  type RouteGet,
} from './parse';

/** Output of a finished command. */
export interface CmdResult {
  /** Exit status (-1 when it could not be started or timed out). */
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command (no shell) with a timeout in ms (default 5000); never rejects. */
export function run(cmd: string, args: readonly string[], timeoutMs = 5000): Promise<CmdResult> {
  return new Promise((resolve) => {
    execFile(cmd, [...args], { timeout: timeoutMs, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      const code =
        err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1;
      resolve({
        code,
        stdout: String(stdout),
        stderr: String(stderr) || (err !== null && code === -1 ? err.message : ''),
      });
    });
  });
}

/** Reads a sysctl by dotted name (`net.ipv4.ip_forward`) from /proc/sys; null when absent. */
export function readSysctl(name: string): number | null {
  // interface names may contain dots: only the first 3 separators are path separators for conf.DEV.x
  const parts = name.split('.');
  let rel: string;
  if (parts[0] === 'net' && parts[1] === 'ipv4' && parts[2] === 'conf' && parts.length > 5) {
    rel = ['net', 'ipv4', 'conf', parts.slice(3, -1).join('.'), parts[parts.length - 1] as string].join('/');
  } else {
    rel = parts.join('/');
  }
  try {
    return parseSysctlInt(fs.readFileSync(`/proc/sys/${rel}`, 'utf8'));
  } catch {
    return null;
  }
}

/** `ip route get ADDR [extra...]`, parsed. */
export async function routeGet(addr: string, extra: readonly string[] = []): Promise<RouteGet> {
  const r = await run('ip', ['route', 'get', addr, ...extra]);
  return parseRouteGet(r.stdout, r.stderr, r.code);
}

/** IPv4 addresses of the local interfaces (`ip -4 -o addr show`). */
export async function localAddresses(): Promise<IfAddr[]> {
  const r = await run('ip', ['-4', '-o', 'addr', 'show']);
  return r.code === 0 ? parseIpAddrOneline(r.stdout) : [];
}

/** `ethtool -k DEV` features, null when ethtool fails. */
export async function ethtoolFeatures(dev: string): Promise<Map<string, EthtoolFeature> | null> {
  const r = await run('ethtool', ['-k', dev]);
  return r.code === 0 ? parseEthtoolFeatures(r.stdout) : null;
}

/** A device's MTU from /sys, null when unknown. */
export function deviceMtu(dev: string): number | null {
  try {
    return parseSysctlInt(fs.readFileSync(`/sys/class/net/${dev}/mtu`, 'utf8'));
  } catch {
    return null;
  }
}

/** The raw listings, kept for --json and for tests. */
export interface FirewallListing {
  iptablesSave: string | null;
  nftRuleset: string | null;
}

/** Runs iptables-save and nft list ruleset; rules null when neither worked. */
export async function readFirewall(): Promise<{ rules: FwRule[] | null; listing: FirewallListing }> {
  const [ipt, nft] = await Promise.all([run('iptables-save', []), run('nft', ['list', 'ruleset'])]);
  const iptText = ipt.code === 0 ? ipt.stdout : null;
  const nftText = nft.code === 0 ? nft.stdout : null;
  const listing = { iptablesSave: iptText, nftRuleset: nftText };
  if (iptText === null && nftText === null) return { rules: null, listing };
  return {
    rules: mergeRulesets(
      iptText === null ? null : parseIptablesSave(iptText),
      nftText === null ? null : parseNftRuleset(nftText),
    ),
    listing,
  };
}

/**
 * The IPv6 firewall: `ip6tables-save` and the nft rules of the families that see IPv6 (`ip6`,
 * `inet`, `bridge`, `netdev`; `ip` tables are IPv4-only). With the ip6tables-nft backend its
 * tables also appear in the nft ruleset (as `ip6 filter`...): those copies are dropped.
 */
export async function readFirewall6(): Promise<{ rules: FwRule[] | null; listing: FirewallListing }> {
  const [ipt, nft] = await Promise.all([run('ip6tables-save', []), run('nft', ['list', 'ruleset'])]);
  const iptText = ipt.code === 0 ? ipt.stdout : null;
  const nftText = nft.code === 0 ? nft.stdout : null;
  const listing = { iptablesSave: iptText, nftRuleset: nftText };
  if (iptText === null && nftText === null) return { rules: null, listing };
  const p = iptText === null ? null : parseIptablesSave(iptText);
  const out = p ? [...p.rules] : [];
  for (const r of nftText === null ? [] : parseNftRuleset(nftText)) {
    const [family, name] = r.table.split(' ');
    if (family === 'ip') continue;
    if (p && p.nftBackend && family === 'ip6' && name !== undefined && p.tables.has(name)) continue;
    out.push(r);
  }
  return { rules: out, listing };
}

/** nf_conntrack count and max, null when the module is not loaded in this namespace. */
export function conntrackCounts(): { count: number | null; max: number | null } {
  return { count: readSysctl('net.netfilter.nf_conntrack_count'), max: readSysctl('net.netfilter.nf_conntrack_max') };
}
