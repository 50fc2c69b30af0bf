/**
 * Builds and removes the lab's network namespaces, bridge and veth pairs (see doc/lab.md).
 *
 * Every veth pair is created directly inside its two namespaces (`ip link add A netns X type
 * veth peer name B netns Y`), so nothing ever appears in the root namespace and removing the
 * namespaces removes every link.
 */
import { TcpcopyError } from '../core/errors';
import {
  CLIENT_NETS,
  CLIENT_NETS6,
  HOST_NAMES,
  LAN,
  LAN6,
  clientAddressList6,
  allNamespaces,
  clientAddressList,
  nsName,
  type HostName,
  type VethPair,
} from './names';
import { run, runOk, sleep } from './sh';

/** A host as the lab built it. */
export interface LabHost {
  /** Role of the host. */
  name: HostName;
  /** Network namespace name (`ip netns exec <ns> ...`). */
  ns: string;
  /** Main address of the host. */
  ip: string;
  /** Main interface inside the namespace (the one `ip` is on). */
  dev: string;
  /** Every address of the host (client hosts: the main one first, then the extra client addresses). */
  addresses: readonly string[];
  /** online/online2 only: the interface towards the client (where client traffic arrives; tcpcopy's capture device). */
  clientDev?: string;
  /** Dual-stack lab only: the main IPv6 address (2001:2::/48). */
  ip6?: string;
  /** Dual-stack lab only: every IPv6 address (client hosts: the main one first, then the extra ones). */
  addresses6?: readonly string[];
}

/** What {@link buildTopology} needs. */
export interface TopologySpec {
  /** Name prefix (validated by the caller). */
  prefix: string;
  /** Extra client addresses beyond the main one (198.18.1.3 ..). */
  clientAddresses: number;
  /** Build online2 and client2 too. */
  online2: boolean;
  /** Build the replay host (198.18.0.5) too. */
  replay?: boolean;
  /** net.ipv4.conf.{all,default,<dev>}.rp_filter on the target. */
  targetRpFilter: number;
  /** Dual stack: IPv6 addresses in 2001:2::/48 next to the IPv4 ones (LAN6, CLIENT_NETS6). Default false. */
  ipv6?: boolean;
  /** Logger for non-fatal problems. */
  log: (msg: string) => void;
}

/** The built topology. */
export interface Topology {
  /** Hosts by role (online2/client2 only when requested). */
  hosts: Partial<Record<HostName, LabHost>>;
  /** Namespaces created, switch included. */
  namespaces: string[];
  /** veth pairs created. */
  veths: VethPair[];
  /** Bridge name inside the switch namespace. */
  bridge: string;
}

/** Lists namespace names (`ip netns list`). */
export async function listNamespaces(): Promise<string[]> {
  const r = await runOk(['ip', 'netns', 'list']);
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((s) => s !== '');
}

/** Pids of processes inside a namespace (`ip netns pids`); empty when the namespace is gone. */
export async function namespacePids(ns: string): Promise<number[]> {
  const r = await run(['ip', 'netns', 'pids', ns], { timeoutMs: 10_000 });
  if (r.code !== 0) return [];
  return r.stdout
    .split(/\s+/)
    .filter((s) => /^\d+$/.test(s))
    .map(Number);
}

/**
 * Deletes the given namespaces. Processes still inside one of them (left by a crashed run:
 * they can only have been started in the lab) get SIGKILL by pid first. Never throws;
 * returns a list of problems.
 */
export async function removeNamespaces(names: readonly string[], log: (m: string) => void): Promise<string[]> {
  const problems: string[] = [];
  const present = new Set(await listNamespaces().catch(() => [] as string[]));
  for (const ns of names) {
    if (!present.has(ns)) continue;
    const pids = await namespacePids(ns);
    for (const pid of pids) {
      if (pid === process.pid) continue;
      log(`lab: killing leftover pid ${pid} in namespace ${ns}`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    if (pids.length > 0) await sleep(100);
    const r = await run(['ip', 'netns', 'del', ns], { timeoutMs: 10_000 }).catch((e: Error) => ({
      code: -1,
      stdout: '',
      stderr: e.message,
    }));
    if (r.code !== 0) problems.push(`ip netns del ${ns}: ${r.stderr.trim()}`);
  }
  return problems;
}

/** Removes every namespace a lab with this prefix could have left behind (exact names only). */
export async function removeStale(prefix: string, log: (m: string) => void): Promise<string[]> {
  return removeNamespaces(allNamespaces(prefix), log);
}

/** Runs `ip -n ns -batch -` with the given lines. */
async function ipBatch(ns: string | null, lines: string[]): Promise<void> {
  if (lines.length === 0) return;
  const argv = ns === null ? ['ip', '-batch', '-'] : ['ip', '-n', ns, '-batch', '-'];
  await runOk(argv, { input: lines.join('\n') + '\n' });
}

/** `sysctl -w` inside a namespace. */
async function sysctl(ns: string, settings: Record<string, string | number>): Promise<void> {
  const args = Object.entries(settings).map(([k, v]) => `${k}=${v}`);
  await runOk(['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-w', ...args]);
}

const OFFLOADS = ['tso', 'gso', 'gro', 'tx', 'rx'];

/**
 * Turns checksum and segmentation offloads off on a device, so captures show MTU-sized
 * segments with real checksums. Features the driver cannot change are ignored; a missing
 * ethtool is an error (ERR_LAB_EXEC).
 */
export async function offloadsOff(ns: string, dev: string, log: (m: string) => void): Promise<void> {
  const all = await run(['ip', 'netns', 'exec', ns, 'ethtool', '-K', dev, ...OFFLOADS.flatMap((f) => [f, 'off'])]);
  if (all.code === 0) return;
  for (const f of OFFLOADS) {
    const r = await run(['ip', 'netns', 'exec', ns, 'ethtool', '-K', dev, f, 'off']);
    if (r.code !== 0) log(`lab: ethtool -K ${dev} ${f} off in ${ns}: ${r.stderr.trim()} (ignored)`);
  }
}

/**
 * Creates the namespaces, bridge, veths, addresses, routes and sysctls. On error the caller
 * removes what exists (removeNamespaces of `allNamespaces(prefix)`).
 */
export async function buildTopology(spec: TopologySpec): Promise<Topology> {
  const p = spec.prefix;
  const eth = await run(['ethtool', '--version']).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
  if (eth.code !== 0)
    throw new TcpcopyError(
      'ERR_LAB_EXEC',
      `ethtool is missing or broken (apt-get install ethtool): ${eth.stderr.trim()}`,
    );
  const roles: HostName[] = HOST_NAMES.filter(
    (h) => (spec.online2 || (h !== 'online2' && h !== 'client2')) && (spec.replay === true || h !== 'replay'),
  );
  const sw = nsName(p, 'switch');
  const namespaces = [...roles.map((h) => nsName(p, h)), sw];
  for (const ns of namespaces) await runOk(['ip', 'netns', 'add', ns]);

  const bridge = `${p}br`;
  const ns = (h: HostName): string => nsName(p, h);
  // LAN: one veth per LAN host to the bridge; client links: online<->client, online2<->client2.
  const lanShort: Partial<Record<HostName, string>> = {
    online: 'on',
    target: 'tg',
    assistant: 'as',
    online2: 'on2',
    replay: 'rp',
  };
  const veths: VethPair[] = [];
  const lanDev: Partial<Record<HostName, string>> = {};
  for (const h of roles) {
    const s = lanShort[h];
    if (s === undefined) continue;
    const devHost = `${p}${s}-sw`;
    veths.push({ nsA: ns(h), a: devHost, nsB: sw, b: `${p}sw-${s}` });
    lanDev[h] = devHost;
  }
  veths.push({ nsA: ns('online'), a: `${p}on-cl`, nsB: ns('client'), b: `${p}cl-on` });
  if (spec.online2) veths.push({ nsA: ns('online2'), a: `${p}o2-c2`, nsB: ns('client2'), b: `${p}c2-o2` });

  const rootLines = veths.map((v) => `link add ${v.a} netns ${v.nsA} type veth peer name ${v.b} netns ${v.nsB}`);
  await ipBatch(null, rootLines);

  const lines = new Map<string, string[]>(namespaces.map((n) => [n, ['link set lo up']]));
  const add = (n: string, l: string): void => {
    lines.get(n)?.push(l);
  };
  add(sw, `link add ${bridge} type bridge stp_state 0 forward_delay 0`);
  add(sw, `link set ${bridge} up`);
  for (const v of veths) {
    if (v.nsB === sw) add(sw, `link set ${v.b} master ${bridge}`);
    add(v.nsA, `link set ${v.a} up`);
    add(v.nsB, `link set ${v.b} up`);
  }
  const hosts: Partial<Record<HostName, LabHost>> = {};
  const v6 = spec.ipv6 === true;
  const lanHost = (h: 'online' | 'target' | 'assistant' | 'online2' | 'replay'): void => {
    const dev = lanDev[h];
    if (dev === undefined) return;
    add(ns(h), `address add ${LAN[h]}/${LAN.prefixLen} dev ${dev}`);
    hosts[h] = { name: h, ns: ns(h), ip: LAN[h], dev, addresses: [LAN[h]] };
    if (v6) {
      // nodad: usable at once (no duplicate address detection wait)
      add(ns(h), `address add ${LAN6[h]}/${LAN6.prefixLen} dev ${dev} nodad`);
      hosts[h] = { ...hosts[h], ip6: LAN6[h], addresses6: [LAN6[h]] };
    }
  };
  for (const h of ['online', 'target', 'assistant', 'online2', 'replay'] as const) if (roles.includes(h)) lanHost(h);
  const clientSide = (server: 'online' | 'online2', client: 'client' | 'client2', sDev: string, cDev: string): void => {
    const net = CLIENT_NETS[client];
    add(ns(server), `address add ${net}.1/24 dev ${sDev}`);
    const addrs = clientAddressList(net, spec.clientAddresses);
    for (const a of addrs) add(ns(client), `address add ${a}/24 dev ${cDev}`);
    hosts[client] = { name: client, ns: ns(client), ip: addrs[0] ?? `${net}.2`, dev: cDev, addresses: addrs };
    const sh = hosts[server];
    if (sh) hosts[server] = { ...sh, addresses: [...sh.addresses, `${net}.1`], clientDev: sDev };
    if (!v6) return;
    const net6 = CLIENT_NETS6[client];
    add(ns(server), `address add ${net6}::1/64 dev ${sDev} nodad`);
    const a6 = clientAddressList6(net6, spec.clientAddresses);
    for (const a of a6) add(ns(client), `address add ${a}/64 dev ${cDev} nodad`);
    hosts[client] = { ...hosts[client], ip6: a6[0] ?? `${net6}::2`, addresses6: a6 };
    const s6 = hosts[server];
    if (s6) hosts[server] = { ...s6, addresses6: [...(s6.addresses6 ?? []), `${net6}::1`] };
  };
  clientSide('online', 'client', `${p}on-cl`, `${p}cl-on`);
  if (spec.online2) clientSide('online2', 'client2', `${p}o2-c2`, `${p}c2-o2`);
  // The target's replies to client addresses go to the assistant, which drops them (no forwarding).
  const tgDev = lanDev.target ?? '';
  add(ns('target'), `route add ${CLIENT_NETS.client}.0/24 via ${LAN.assistant} dev ${tgDev}`);
  add(ns('target'), `route add ${CLIENT_NETS.client2}.0/24 via ${LAN.assistant} dev ${tgDev}`);
  if (v6) {
    add(ns('target'), `route add ${CLIENT_NETS6.client}::/64 via ${LAN6.assistant} dev ${tgDev}`);
    add(ns('target'), `route add ${CLIENT_NETS6.client2}::/64 via ${LAN6.assistant} dev ${tgDev}`);
  }
  for (const [n, l] of lines) await ipBatch(n, l);

  // Sysctls. New namespaces may inherit conf/{all,default} from the root namespace, so set
  // what matters explicitly.
  await sysctl(ns('assistant'), { 'net.ipv4.ip_forward': 0 });
  await sysctl(ns('online'), { 'net.ipv4.ip_forward': 0 });
  if (spec.online2) await sysctl(ns('online2'), { 'net.ipv4.ip_forward': 0 });
  if (spec.replay === true) await sysctl(ns('replay'), { 'net.ipv4.ip_forward': 0 });
  const rp = spec.targetRpFilter;
  await sysctl(ns('target'), {
    'net.ipv4.ip_forward': 0,
    'net.ipv4.conf.all.rp_filter': rp,
    'net.ipv4.conf.default.rp_filter': rp,
    [`net.ipv4.conf.${tgDev}.rp_filter`]: rp,
  });
  if (v6) {
    // the assistant must drop what the target routes to it (IPv6 forwarding off everywhere)
    const off = { 'net.ipv6.conf.all.forwarding': 0, 'net.ipv6.conf.default.forwarding': 0 };
    for (const h of roles) if (h !== 'client' && h !== 'client2') await sysctl(ns(h), off);
  }
  // Keep the bridge from calling iptables on bridged frames (br_netfilter, if loaded).
  await run(['ip', 'netns', 'exec', sw, 'sysctl', '-q', '-w', 'net.bridge.bridge-nf-call-iptables=0']);

  await Promise.all(veths.flatMap((v) => [offloadsOff(v.nsA, v.a, spec.log), offloadsOff(v.nsB, v.b, spec.log)]));
  return { hosts, namespaces, veths, bridge };
}
