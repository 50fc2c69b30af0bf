/**
 * `intercept doctor` (on the assistant) and `intercept doctor --target --client-net CIDR
 * --assistant IP [--online IP] [--port PORT]` (on the target). Exit status 0 when nothing
 * blocks replay, 1 when something does, 2 on bad options.
 */
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { TcpcopyError } from '../core/errors';
import { ipToString, parseIpv4 } from '../core/wire/segment';
import { CHANNEL_DEFAULT_PORT } from '../channel/constants';
import { RingCapture } from '../io/ring-capture';
import {
  checkConntrackInvalid,
  checkConntrackTable,
  checkFirewall,
  checkIpForward,
  checkIpv6Forward,
  checkOffload,
  checkRoute,
  checkRpFilter,
  checkRpFilter6,
} from './checks';
import type { FwFlow } from './firewall';
import {
  conntrackCounts,
  ethtoolFeatures,
  localAddresses,
  readFirewall,
  readFirewall6,
  readSysctl,
  routeGet,
  run,
} from './host';
import { parseCidr, parseCidr6, type Cidr, type Cidr6 } from './parse';
import { parseIpv6 } from '../core/wire/ipv6';
import { check, exitStatus, formatJson, formatText, type CheckResult } from './result';

/** Options of `intercept doctor`. */
export interface InterceptDoctorOptions {
  /** `--target`: run the target-side checks instead of the assistant's. */
  target: boolean;
  /** `--client-net CIDR` (target mode, required): the replayed clients' range, e.g. 198.18.1.0/24 (IPv4). */
  clientNet: Cidr | null;
  /** `--client-net PREFIX` given as an IPv6 prefix, e.g. 2001:2:0:1::/64 (then `clientNet` is null). */
  clientNet6: Cidr6 | null;
  /** `--assistant IP` (target mode, required): where the replies must be routed. */
  assistant: string | null;
  /** `--online IP` (target mode): the online host's address as the target sees it; tells which interface the copies arrive on. Default: every interface is considered. */
  online: string | null;
  /** `--port PORT` (target mode): the target server port of -x; default: any port. */
  port: number | null;
  /** `-p PORT` (assistant mode): the channel port; default 36524 (intercept's -p). */
  channelPort: number;
  /** `-i DEV` (assistant mode): the capture device; default 'any' (intercept's -i). */
  device: string;
  /** `--json`. */
  json: boolean;
}

/** Usage text of `intercept doctor`. */
export const INTERCEPT_DOCTOR_HELP = `Usage: intercept doctor [-i DEV] [-p PORT] [--json]
       intercept doctor --target --client-net CIDR --assistant IP [--online IP] [--port PORT] [--json]

On the assistant: ip_forward off, capture permission, the channel port, firewall rules on the
channel port, receive offloads, the conntrack table.
On the target (--target): the route for the client net via the assistant (ip route get),
rp_filter on an asymmetric path, firewall rules dropping the copies or the replies, conntrack.
An IPv6 --client-net (e.g. 2001:2:0:1::/64, with an IPv6 --assistant) checks the IPv6 route,
reverse-path rules and the ip6tables/nft rules; on the assistant IPv6 forwarding is checked too.
Exit status: 0 nothing blocks replay, 1 something does, 2 bad options.
`;

function bad(option: string, value: string, fix: string): TcpcopyError {
  return new TcpcopyError('ERR_BAD_OPTION', `${option} ${value}: ${fix}`, { option, value });
}

/** Parses `intercept doctor` options (argv after `doctor`). Throws ERR_BAD_OPTION. */
export function parseInterceptDoctorArgs(argv: readonly string[]): InterceptDoctorOptions | 'help' {
  let v;
  try {
    v = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        target: { type: 'boolean' },
        'client-net': { type: 'string' },
        assistant: { type: 'string' },
        online: { type: 'string' },
        port: { type: 'string' },
        'channel-port': { type: 'string', short: 'p' },
        device: { type: 'string', short: 'i' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (e) {
    throw new TcpcopyError('ERR_BAD_OPTION', `${(e as Error).message}; see intercept doctor --help`);
  }
  if (v.help) return 'help';
  const target = v.target === true;
  const clientNet = v['client-net'] === undefined ? null : parseCidr(v['client-net']);
  const clientNet6 = v['client-net'] === undefined || clientNet !== null ? null : parseCidr6(v['client-net']);
  if (v['client-net'] !== undefined && clientNet === null && clientNet6 === null)
    throw bad('--client-net', v['client-net'], 'expected a CIDR block, e.g. 198.18.1.0/24 or 2001:2:0:1::/64');
  const family = clientNet6 !== null ? 6 : 4;
  for (const k of ['assistant', 'online'] as const) {
    const x = v[k];
    if (x === undefined) continue;
    const ok = family === 6 ? parseIpv6(x) >= 0 : parseIpv4(x) >= 0;
    if (!ok)
      throw bad(
        `--${k}`,
        x,
        `expected an IPv${family} address (the family of --client-net${v['client-net'] !== undefined ? ` ${v['client-net']}` : ''})`,
      );
  }
  if (target && ((clientNet === null && clientNet6 === null) || v.assistant === undefined)) {
    throw new TcpcopyError(
      'ERR_BAD_OPTION',
      '--target needs --client-net CIDR and --assistant IP, e.g. intercept doctor --target --client-net 198.18.1.0/24 --assistant 198.18.0.3',
      { option: '--target' },
    );
  }
  const port =
    v.port === undefined
      ? null
      : /^\d+$/.test(v.port) && Number(v.port) >= 1 && Number(v.port) <= 65535
        ? Number(v.port)
        : -1;
  if (port === -1) throw bad('--port', String(v.port), 'expected a TCP port 1..65535');
  const cp = v['channel-port'] ?? String(CHANNEL_DEFAULT_PORT);
  if (!/^\d+$/.test(cp) || Number(cp) < 1 || Number(cp) > 65535) throw bad('-p', cp, 'expected a TCP port 1..65535');
  return {
    target,
    clientNet,
    clientNet6,
    assistant: v.assistant ?? null,
    online: v.online ?? null,
    port,
    channelPort: Number(cp),
    device: v.device ?? 'any',
    json: v.json === true,
  };
}

/** Ports in LISTEN state from /proc/net/tcp (this namespace). */
export function listeningPorts(procNetTcp: string): Set<number> {
  const out = new Set<number>();
  for (const line of procNetTcp.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[3] === '0A' && f[1] !== undefined) out.add(parseInt(f[1].split(':')[1] ?? '', 16));
  }
  return out;
}

async function assistantChecks(o: InterceptDoctorOptions): Promise<CheckResult[]> {
  const results: CheckResult[] = [
    checkIpForward(readSysctl('net.ipv4.ip_forward')),
    checkIpv6Forward(readSysctl('net.ipv6.conf.all.forwarding')),
  ];
  try {
    const cap = new RingCapture({ device: o.device, filter: 'tcp', snaplen: 128, bufferMB: 1, blockKB: 64 });
    cap.open({ packet: () => undefined, batchEnd: () => undefined });
    cap.close();
    results.push(check('capture', 'ok', `packet capture on ${o.device} opened`));
  } catch (e) {
    results.push(
      check(
        'capture',
        'fail',
        (e as Error).message,
        'run intercept as root (CAP_NET_RAW); -i must name an existing device (ip link)',
      ),
    );
  }
  let listening = new Set<number>();
  try {
    listening = listeningPorts(fs.readFileSync('/proc/net/tcp', 'utf8'));
  } catch {
    /* leave empty */
  }
  results.push(
    listening.has(o.channelPort)
      ? check('channel-port', 'ok', `port ${o.channelPort} is listening (intercept running?)`)
      : check(
          'channel-port',
          'warn',
          `nothing listens on port ${o.channelPort}: tcpcopy cannot connect`,
          `start intercept: intercept -i ${o.device} -F 'tcp and src port TPORT'${o.channelPort !== CHANNEL_DEFAULT_PORT ? ` -p ${o.channelPort}` : ''}`,
        ),
  );
  const fw = await readFirewall();
  results.push(
    checkFirewall('firewall-channel', `tcpcopy's channel connections to port ${o.channelPort} (INPUT)`, fw.rules, {
      hooks: ['prerouting', 'input'],
      src: null,
      dst: null,
      proto: 'tcp',
      sport: null,
      dport: o.channelPort,
    }),
  );
  const devs =
    o.device === 'any'
      ? [...new Set((await localAddresses()).map((a) => a.dev))].filter((d) => d !== 'lo')
      : [o.device];
  for (const d of devs) results.push(checkOffload(d, await ethtoolFeatures(d), 'intercept'));
  const ct = conntrackCounts();
  results.push(checkConntrackTable(ct.count, ct.max));
  return results;
}

/**
 * The target's checks for an IPv6 client prefix: the route for it via the assistant (`ip route
 * get` of an address in it), reverse-path rules (IPv6 has no rp_filter sysctl), the IPv6
 * firewall (ip6tables, nft ip6/inet) on the copies and the replies, conntrack.
 */
async function targetChecks6(o: InterceptDoctorOptions, net: Cidr6): Promise<CheckResult[]> {
  const assistant = o.assistant as string;
  const route = await routeGet(net.probe);
  const results: CheckResult[] = [checkRoute(route, net.probe, net.text, assistant)];
  const fw = await readFirewall6();
  results.push(checkRpFilter6(fw.rules, net.text));
  let inIface: string | null = null;
  if (o.online !== null) inIface = (await routeGet(o.online)).dev;
  // addresses in IPv6 rules are not compared (any rule of the hook, protocol and ports is reported)
  const inFlow: FwFlow = {
    hooks: ['prerouting', 'input'],
    src: null,
    dst: null,
    proto: 'tcp',
    sport: null,
    dport: o.port,
  };
  if (inIface !== null) inFlow.inIface = inIface;
  const outFlow: FwFlow = {
    hooks: ['output', 'postrouting'],
    src: null,
    dst: null,
    proto: 'tcp',
    sport: o.port,
    dport: null,
  };
  if (route.dev !== null) outFlow.outIface = route.dev;
  const portText = o.port === null ? 'the target port' : `port ${o.port}`;
  results.push(
    checkFirewall('firewall-copies', `copies from ${net.text} to ${portText} (ip6tables/nft INPUT)`, fw.rules, inFlow),
  );
  results.push(checkFirewall('firewall-replies', `replies to ${net.text} (ip6tables/nft OUTPUT)`, fw.rules, outFlow));
  results.push(checkConntrackInvalid(fw.rules, [inFlow, outFlow]));
  const ct = conntrackCounts();
  results.push(checkConntrackTable(ct.count, ct.max));
  return results;
}

async function targetChecks(o: InterceptDoctorOptions): Promise<CheckResult[]> {
  if (o.clientNet6 !== null) return targetChecks6(o, o.clientNet6);
  const net = o.clientNet as Cidr;
  const assistant = o.assistant as string;
  const netText = `${ipToString(net.base)}/${net.bits}`;
  const probe = ipToString(net.bits >= 31 ? net.base : (net.base + 1) >>> 0);
  const route = await routeGet(probe);
  const results: CheckResult[] = [checkRoute(route, probe, netText, assistant)];

  const addrs = (await localAddresses()).filter((a) => a.dev !== 'lo');
  let inDevs = [...new Set(addrs.map((a) => a.dev))];
  let inDevKnown = false;
  if (o.online !== null) {
    const r = await routeGet(o.online);
    if (r.dev !== null) {
      inDevs = [r.dev];
      inDevKnown = true;
    }
  }
  const perDev = new Map<string, number | null>();
  const kernel = new Map<string, 'pass' | 'drop'>();
  for (const d of inDevs) {
    perDev.set(d, readSysctl(`net.ipv4.conf.${d}.rp_filter`));
    const local = addrs.find((a) => a.dev === d)?.addr;
    if (local === undefined) continue;
    const k = await run('ip', ['route', 'get', local, 'from', probe, 'iif', d]);
    kernel.set(d, k.code === 0 ? 'pass' : 'drop');
  }
  // the kernel also drops when the source is unroutable; that is the route check's finding, not rp_filter's
  if (!route.ok) kernel.clear();
  results.push(
    checkRpFilter(
      { all: readSysctl('net.ipv4.conf.all.rp_filter'), perDev, replyDev: route.dev, inDevs, inDevKnown, kernel },
      netText,
    ),
  );

  const fw = await readFirewall();
  const inFlow: FwFlow = {
    hooks: ['prerouting', 'input'],
    src: net,
    dst: null,
    proto: 'tcp',
    sport: null,
    dport: o.port,
  };
  if (inDevKnown && inDevs[0] !== undefined) inFlow.inIface = inDevs[0];
  const outFlow: FwFlow = {
    hooks: ['output', 'postrouting'],
    src: null,
    dst: net,
    proto: 'tcp',
    sport: o.port,
    dport: null,
  };
  if (route.dev !== null) outFlow.outIface = route.dev;
  const portText = o.port === null ? 'the target port' : `port ${o.port}`;
  results.push(checkFirewall('firewall-copies', `copies from ${netText} to ${portText} (INPUT)`, fw.rules, inFlow));
  results.push(checkFirewall('firewall-replies', `replies to ${netText} (OUTPUT)`, fw.rules, outFlow));
  results.push(checkConntrackInvalid(fw.rules, [inFlow, outFlow]));
  const ct = conntrackCounts();
  results.push(checkConntrackTable(ct.count, ct.max));
  return results;
}

/** Runs `intercept doctor`; writes the report to `out`; returns the exit status. */
export async function runInterceptDoctor(argv: readonly string[], out: NodeJS.WritableStream): Promise<number> {
  const o = parseInterceptDoctorArgs(argv);
  if (o === 'help') {
    out.write(INTERCEPT_DOCTOR_HELP);
    return 0;
  }
  const results = o.target ? await targetChecks(o) : await assistantChecks(o);
  out.write(o.json ? formatJson(results) : formatText(results));
  return exitStatus(results);
}
