/**
 * `tcpcopy doctor -x ... -s ... [-c ...] [--client IP] [--wait MS] [--all] [--json]`, run on
 * the online host: permissions, intercept reachable, target reachable, then the end-to-end
 * probe (a synthetic SYN from a client address; its SYN-ACK must come back through
 * intercept). When the probe fails: the local checks (MTU, offloads, firewall, conntrack)
 * and the exact `intercept doctor` commands to run on the assistant and the target.
 * Exit status 0 when nothing blocks replay, 1 when something does, 2 on bad options.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { TcpcopyError } from '../core/errors';
import { CHANNEL_DEFAULT_PORT } from '../channel/constants';
import { endpointToString, ipToString, parseIp, parseIpv4 } from '../core/wire/segment';
import { isIpv6Spec, type ClientIpSpec } from '../core/client-map';
import { internIpv6Words, ipv6Word, isIpv6 } from '../core/wire/ipv6';
import { readSecret } from '../channel/secret';
import { ChannelClient } from '../io/channel-client';
import { RawSender } from '../io/raw-sender';
import { RingCapture } from '../io/ring-capture';
import { parseTcpcopyArgs } from '../cli/tcpcopy-config';
import type { TcpcopyConfig } from '../config/tcpcopy-config';
import { resolveInput } from '../run/input';
import {
  checkConntrackInvalid,
  checkConntrackTable,
  checkFirewall,
  checkMtu,
  checkOffload,
  checkProbe,
} from './checks';
import { hostCidr } from './firewall';
import { conntrackCounts, deviceMtu, ethtoolFeatures, localAddresses, readFirewall, routeGet } from './host';
import { maskOf, type IfAddr } from './parse';
import { probeIdentity, ProbeWatcher, runProbe } from './probe';
import { check, exitStatus, formatJson, formatText, type CheckResult } from './result';
import { runModuleChecks, takeModuleArgs } from './module-doctor';

/** Doctor-only options, taken out of argv before the replay options are parsed. */
export interface TcpcopyDoctorOptions {
  /** `--client IP`: probe client address; default: from -c, else derived (see pickProbeClient). */
  client: string | null;
  /** `--wait MS`: how long to wait for the SYN-ACK; default 2000. */
  waitMs: number;
  /** `--all`: run the local diagnostic checks even when the probe passes. */
  all: boolean;
  /** `--json`: print a JSON document instead of text lines. */
  json: boolean;
}

/** Usage text of `tcpcopy doctor`. */
export const TCPCOPY_DOCTOR_HELP = `Usage: tcpcopy doctor -x TRANSFERS -s INTERCEPTS [-c CLIENTS] [--client IP] [--wait MS] [--all] [--json]
                      [--module mysql --mysql-user USER:PASSWORD... | --mysql-users FILE]

Checks a deployment from the online host: raw-socket and capture permissions, the intercepts
and the targets reachable, then an end-to-end probe per transfer: a SYN from a client address
to the target whose SYN-ACK must come back through intercept. When the probe fails, the local
settings are checked and the commands to run on the assistant and the target are printed.

  --client IP   probe client address (default: the first -c address, else an address of this
                host's client-side network, the highest host address of it); IPv6 transfers
                probe from an IPv6 --client or the first IPv6 -c item (needs --secret-file)
  --wait MS     wait this long for the SYN-ACK (default 2000)
  --all         run the local checks even when the probe passes
  --json        print {ok, results, notes} as JSON
  --module mysql  also log in to each target as each configured user (--mysql-user,
                --mysql-users), answering its scramble with mysql_native_password as the replay does
Exit status: 0 nothing blocks replay, 1 something does, 2 bad options.
`;

/** Splits doctor options from the replay options. Throws ERR_BAD_OPTION. */
export function splitDoctorArgs(argv: readonly string[]): {
  opts: TcpcopyDoctorOptions;
  rest: string[];
  help: boolean;
} {
  const opts: TcpcopyDoctorOptions = { client: null, waitMs: 2000, all: false, json: false };
  const rest: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const [flag, inline] =
      a.startsWith('--') && a.includes('=')
        ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]
        : [a, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined)
        throw new TcpcopyError('ERR_BAD_OPTION', `${flag}: expects a value; see tcpcopy doctor --help`, {
          option: flag,
        });
      return v;
    };
    if (flag === '--client') {
      const v = value();
      if (parseIp(v) < 0)
        throw new TcpcopyError(
          'ERR_BAD_OPTION',
          `--client ${v}: expected an IPv4 or IPv6 address of the replayed clients, e.g. --client 198.18.1.2 or --client 2001:db8:1::9`,
          { option: '--client', value: v },
        );
      opts.client = v;
    } else if (flag === '--wait') {
      const v = value();
      if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 60000)
        throw new TcpcopyError('ERR_BAD_OPTION', `--wait ${v}: expected milliseconds 1..60000`, {
          option: '--wait',
          value: v,
        });
      opts.waitMs = Number(v);
    } else if (flag === '--all') opts.all = true;
    else if (flag === '--json') opts.json = true;
    else if (flag === '--help' || flag === '-h') help = true;
    else rest.push(a);
  }
  return { opts, rest, help };
}

/** The address a `-c` item maps a client to: exact as is, CIDR base+1, a.b.c.x -> a.b.c.1, an IPv6 prefix its ::1. */
function fromClientSpec(s: ClientIpSpec): number {
  if (s.kind === 'exact') return s.ip;
  if (s.kind === 'prefix6')
    return internIpv6Words(
      ipv6Word(s.base, 0),
      ipv6Word(s.base, 1),
      ipv6Word(s.base, 2),
      (ipv6Word(s.base, 3) + 1) >>> 0,
    );
  return (s.base + 1) >>> 0;
}

/**
 * The probe client of an IPv6 transfer: an IPv6 --client, else the first IPv6 -c item (an
 * address, or a prefix's ::1). There is no local derivation as for IPv4: null asks for one.
 */
export function pickProbeClient6(
  opts: TcpcopyDoctorOptions,
  cfg: TcpcopyConfig,
): { ip: number; net: string; why: string } | null {
  if (opts.client !== null && isIpv6(parseIp(opts.client)))
    return { ip: parseIp(opts.client), net: `${opts.client}/128`, why: '--client' };
  const c = cfg.clientIps.find(isIpv6Spec);
  if (c === undefined) return null;
  const ip = fromClientSpec(c);
  return {
    ip,
    net: c.kind === 'prefix6' ? `${ipToString(c.base)}/${c.bits}` : `${ipToString(ip)}/128`,
    why: 'first IPv6 -c item',
  };
}

/**
 * Chooses the probe client: --client, else the first -c mapping, else the highest host address
 * of the first local network that is not on the path to the targets or the intercepts (the
 * client-facing side of the online host). Returns the address and the client net (for hints).
 */
export function pickProbeClient(
  opts: TcpcopyDoctorOptions,
  cfg: TcpcopyConfig,
  addrs: readonly IfAddr[],
  lanDevs: ReadonlySet<string>,
): { ip: number; net: string; why: string } | null {
  if (opts.client !== null && parseIpv4(opts.client) >= 0)
    return { ip: parseIpv4(opts.client), net: `${opts.client}/32`, why: '--client' };
  const c0 = cfg.clientIps.find((s) => !isIpv6Spec(s));
  if (c0 !== undefined) {
    const ip = fromClientSpec(c0);
    const net =
      c0.kind === 'cidr'
        ? `${ipToString(c0.base)}/${32 - Math.log2(c0.size)}`
        : c0.kind === 'lastOctet'
          ? `${ipToString(c0.base)}/24`
          : `${ipToString(ip)}/32`;
    return { ip, net, why: 'first -c address' };
  }
  for (const a of addrs) {
    if (a.dev === 'lo' || lanDevs.has(a.dev) || a.bits > 30) continue;
    const base = (parseIpv4(a.addr) & maskOf(a.bits)) >>> 0;
    let ip = (base + 2 ** (32 - a.bits) - 2) >>> 0;
    if (ipToString(ip) === a.addr) ip = (ip - 1) >>> 0;
    return { ip, net: `${ipToString(base)}/${a.bits}`, why: `highest host of ${a.dev}'s network` };
  }
  return null;
}

function tcpConnect(
  host: string,
  port: number,
  timeoutMs: number,
): Promise<{ ok: boolean; error: string; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean, error: string): void => {
      clearTimeout(t);
      s.destroy();
      resolve({ ok, error, ms: Date.now() - t0 });
    };
    const t = setTimeout(() => done(false, `timed out after ${timeoutMs} ms`), timeoutMs);
    s.once('connect', () => done(true, ''));
    s.once('error', (e) => done(false, e.message));
  });
}

function permissionChecks(cfg: TcpcopyConfig): { results: CheckResult[]; sender: RawSender | null } {
  const results: CheckResult[] = [];
  let sender: RawSender | null = null;
  try {
    sender = new RawSender({ slots: 8 });
    results.push(check('raw-socket', 'ok', 'raw IP socket opened (IP_HDRINCL)'));
  } catch (e) {
    results.push(
      check(
        'raw-socket',
        'fail',
        (e as Error).message,
        'run as root, or setcap cap_net_raw,cap_net_admin=ep on the node binary',
      ),
    );
  }
  const input = resolveInput(cfg);
  if (input.kind === 'offline') {
    const f = input.file;
    try {
      fs.accessSync(f, fs.constants.R_OK);
      results.push(check('capture', 'ok', `capture file ${f} is readable`));
    } catch (e) {
      results.push(
        check(
          'capture',
          'fail',
          `capture file ${f}: ${(e as Error).message}`,
          'give -i an existing, readable pcap file',
        ),
      );
    }
  } else if (input.kind === 'stream') {
    results.push(
      check(
        'capture',
        'ok',
        'packets come from agents and pcap streams (-i tcp:// or -i -): see tcpcopy doctor --agent',
      ),
    );
  } else {
    for (const device of input.devices.length > 0 ? input.devices : ['any']) {
      try {
        const cap = new RingCapture({ device, filter: 'tcp', snaplen: 128, bufferMB: 1, blockKB: 64 });
        cap.open({ packet: () => undefined, batchEnd: () => undefined });
        cap.close();
        results.push(check('capture', 'ok', `packet capture on ${device} opened`));
      } catch (e) {
        results.push(
          check(
            'capture',
            'fail',
            (e as Error).message,
            'run as root (CAP_NET_RAW), and check -i names an existing device (ip link)',
          ),
        );
      }
    }
  }
  return { results, sender };
}

/** Runs `tcpcopy doctor`; writes the report to `out`; returns the exit status. */
export async function runTcpcopyDoctor(argv: readonly string[], out: NodeJS.WritableStream): Promise<number> {
  const mod = takeModuleArgs(argv, (f) => fs.readFileSync(f, 'utf8'));
  const { opts, rest, help } = splitDoctorArgs(mod.rest);
  if (help) {
    out.write(TCPCOPY_DOCTOR_HELP);
    return 0;
  }
  const cfg = parseTcpcopyArgs(rest);
  const results: CheckResult[] = [];
  const notes: string[] = [];
  const perm = permissionChecks(cfg);
  results.push(...perm.results);

  const watchers: ProbeWatcher[] = [];
  const channel = new ChannelClient(
    {
      servers: cfg.intercepts,
      connections: 1,
      reconnect: false,
      recordBytes: 64,
      connectTimeoutMs: 2000,
      // channel v2 as the replay would use it (IPv6 probes need it)
      ...(cfg.secretFile !== null ? { secret: readSecret(cfg.secretFile) } : {}),
    },
    (b, o, l) => {
      for (const w of watchers) w.onRecord(b, o, l);
    },
    { warn: () => undefined, info: () => undefined },
  );
  let channelUp = false;
  try {
    await channel.connect();
    channelUp = true;
    results.push(
      check('intercept', 'ok', `channel to ${cfg.intercepts.map((s) => `${s.host}:${s.port}`).join(', ')} connected`),
    );
  } catch (e) {
    results.push(
      check(
        'intercept',
        'fail',
        (e as Error).message.replace(/; fix: .*$/s, ''),
        `start intercept on ${cfg.intercepts[0]?.host ?? 'the assistant'} (intercept -i DEV -F 'tcp and src port TPORT'), check its port (-p) and firewall`,
      ),
    );
  }

  for (const t of cfg.transfers) {
    const host = ipToString(t.targetIp);
    const r = await tcpConnect(host, t.targetPort, 2000);
    results.push(
      r.ok
        ? check(
            'target',
            'ok',
            `${endpointToString(t.targetIp, t.targetPort)} accepts TCP connections from this host (${r.ms} ms)`,
          )
        : check(
            'target',
            'fail',
            `${endpointToString(t.targetIp, t.targetPort)}: ${r.error}`,
            `start the server on the target, or fix -x; check the route and firewall between this host and ${host}`,
          ),
    );
  }

  if (mod.module !== null)
    results.push(
      ...(await runModuleChecks(
        mod.module,
        cfg.transfers.map((t) => ({ host: ipToString(t.targetIp), port: t.targetPort })),
      )),
    );

  const addrs = await localAddresses();
  const lanDevs = new Set<string>();
  const targetRoutes = await Promise.all(cfg.transfers.map((t) => routeGet(ipToString(t.targetIp))));
  for (const r of targetRoutes) if (r.dev !== null) lanDevs.add(r.dev);
  for (const s of cfg.intercepts) {
    const r = await routeGet(s.host);
    if (r.dev !== null) lanDevs.add(r.dev);
  }
  const client = pickProbeClient(opts, cfg, addrs, lanDevs);
  const onlineSrc = targetRoutes[0]?.src ?? null;
  const assistant = cfg.intercepts[0]?.host ?? 'ASSISTANT';
  const t0 = cfg.transfers[0];
  const otherHosts = `on the assistant: \`intercept doctor${cfg.intercepts[0]?.port !== CHANNEL_DEFAULT_PORT ? ` -p ${cfg.intercepts[0]?.port ?? CHANNEL_DEFAULT_PORT}` : ''}\`; on the target: \`intercept doctor --target --client-net ${client?.net ?? 'CLIENT_NET'} --assistant ${assistant}${onlineSrc ? ` --online ${onlineSrc}` : ''}${t0 ? ` --port ${t0.targetPort}` : ''}\``;

  let probeOk = false;
  if (client === null) {
    results.push(
      check(
        'probe',
        'fail',
        'no probe client address: no -c, no --client, and no client-side network on this host',
        'give --client IP (an address of the replayed clients)',
      ),
    );
  } else if (!channelUp || perm.sender === null) {
    results.push(check('probe', 'skip', 'needs the raw socket and the intercept channel (see above)'));
  } else {
    notes.push(`probe client ${ipToString(client.ip)} (${client.why})`);
    probeOk = true;
    const client6 = pickProbeClient6(opts, cfg);
    if (client6 !== null) notes.push(`IPv6 probe client ${ipToString(client6.ip)} (${client6.why})`);
    for (const t of cfg.transfers) {
      const v6 = isIpv6(t.targetIp);
      const c = v6 ? client6 : client;
      if (v6 && (c === null || cfg.secretFile === null)) {
        probeOk = false;
        results.push(
          cfg.secretFile === null
            ? check(
                'probe',
                'fail',
                `${endpointToString(t.targetIp, t.targetPort)}: IPv6 sessions need channel v2; the 1.x channel carries IPv4 addresses only`,
                'give tcpcopy and intercept the same --secret-file',
              )
            : check(
                'probe',
                'fail',
                `${endpointToString(t.targetIp, t.targetPort)}: no IPv6 probe client address`,
                'give --client with an IPv6 address of the replayed clients (or an IPv6 -c item)',
              ),
        );
        continue;
      }
      if (c === null) continue;
      const id = probeIdentity();
      const w = new ProbeWatcher(c.ip, id.clientPort, t.targetIp, t.targetPort, id.isn);
      watchers.push(w);
      const p = await runProbe(channel, perm.sender, w, {
        clientIp: c.ip,
        clientPort: id.clientPort,
        targetIp: t.targetIp,
        targetPort: t.targetPort,
        isn: id.isn,
        waitMs: opts.waitMs,
      });
      const res = checkProbe(p, otherHosts);
      if (res.verdict !== 'ok') probeOk = false;
      results.push(res);
    }
  }
  perm.sender?.close();
  await channel.close();

  if (!probeOk || opts.all) {
    const dev = targetRoutes[0]?.dev ?? null;
    results.push(checkMtu(cfg.mtu, dev, dev === null ? null : deviceMtu(dev)));
    const input = resolveInput(cfg);
    const capDevs =
      input.kind === 'live'
        ? input.devices.length > 0
          ? input.devices
          : [...new Set(addrs.map((a) => a.dev))].filter((d) => d !== 'lo' && !lanDevs.has(d))
        : [];
    for (const d of capDevs) results.push(checkOffload(d, await ethtoolFeatures(d), 'tcpcopy'));
    const fw = await readFirewall();
    const src = client === null ? null : hostCidr(ipToString(client.ip));
    const copyFlows = cfg.transfers.map((t) => ({
      hooks: ['output', 'postrouting'] as const,
      src,
      dst: hostCidr(ipToString(t.targetIp)),
      proto: 'tcp',
      sport: null,
      dport: t.targetPort,
    }));
    for (const f of copyFlows)
      results.push(
        checkFirewall(
          'firewall-copies',
          `copies to ${f.dst === null ? '?' : ipToString(f.dst.base)}:${f.dport} (OUTPUT)`,
          fw.rules,
          { ...f, hooks: [...f.hooks] },
        ),
      );
    for (const s of cfg.intercepts) {
      results.push(
        checkFirewall('firewall-channel', `channel to ${s.host}:${s.port} (OUTPUT)`, fw.rules, {
          hooks: ['output', 'postrouting'],
          src: null,
          dst: hostCidr(s.host),
          proto: 'tcp',
          sport: null,
          dport: s.port,
        }),
      );
    }
    results.push(
      checkConntrackInvalid(
        fw.rules,
        copyFlows.map((f) => ({ ...f, hooks: [...f.hooks] })),
      ),
    );
    const ct = conntrackCounts();
    results.push(checkConntrackTable(ct.count, ct.max));
    if (!probeOk) notes.push(`next: ${otherHosts}`);
  }
  out.write(opts.json ? formatJson(results, notes) : formatText(results) + notes.map((n) => `note: ${n}\n`).join(''));
  return exitStatus(results);
}
