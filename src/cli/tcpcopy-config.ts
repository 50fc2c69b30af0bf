/**
 * tcpcopy's command line: parsed once, with the option table (tcpcopy-options.ts) and the
 * shared machinery (option-table.ts), into a frozen TcpcopyConfig (src/config/). Pure: the
 * parser reads no file; whether `-i` names a file or devices is decided by the runner
 * (src/run/input.ts).
 */
import { TcpcopyError } from '../core/errors';
import { type ClientIpSpec, parseClientIpList } from '../core/client-map';
import { ipToString, parseIpv4 } from '../core/wire/segment';
import { IPV6_LOOPBACK, ipv6Word, isIpv6, parseIpv6 } from '../core/wire/ipv6';
import {
  defaultTcpcopyConfig,
  type InterceptAddress,
  RAMP_MS,
  TCPCOPY_DEFAULTS as D,
  type TcpcopyConfig,
} from '../config/tcpcopy-config';
import { MODULE_OPTION_OWNER, TCPCOPY_OPTIONS } from './tcpcopy-options';
import { BUILTIN_MODULES, isBuiltinModule, isModulePath } from '../modules/registry';
import type { ModuleChoice } from '../config/tcpcopy-config';
import { parseTransferList } from './transfer';
import { parseCompareChoice } from './compare-options';
import { parseMetricsAddress } from '../io/metrics-server';
import {
  badOption,
  choiceArg,
  intArg,
  numArg,
  optionError,
  type ParsedOptions,
  parseOptionTable,
} from './option-table';

/**
 * Parses -H: an IPv4 address outside 127.0.0.0/8 (for 127.x clients), an IPv6 address other
 * than ::1 and :: (for ::1 clients), or one of each, comma separated.
 */
function parseLocalhostIp(text: string | undefined): { v4: number; v6: number } {
  const out = { v4: D.localhostIp, v6: D.localhostIp6 };
  if (text === undefined) return out;
  const fix = 'an IPv4 address outside 127.0.0.0/8 and/or an IPv6 address other than ::1, e.g. -H 198.18.1.9,2001:2::9';
  const items = text.split(',').map((s) => s.trim());
  if (items.length > 2) throw badOption('-H', text, fix);
  for (const item of items) {
    if (item.includes(':')) {
      const ip = parseIpv6(item);
      if (ip < 0 || ip === IPV6_LOOPBACK || ip === parseIpv6('::') || out.v6 !== 0) throw badOption('-H', text, fix);
      out.v6 = ip;
    } else {
      const ip = parseIpv4(item);
      if (ip < 0 || ip >>> 24 === 127 || ip === 0 || out.v4 !== 0) throw badOption('-H', text, fix);
      out.v4 = ip;
    }
  }
  return out;
}

/**
 * Why an address cannot be a replayed client's (the target's replies to it would never reach
 * intercept), or null: unspecified (0.0.0.0/8), loopback, multicast, reserved and broadcast.
 */
function unusableClientAddress(ip: number): string | null {
  if (isIpv6(ip)) {
    if (ip === IPV6_LOOPBACK) return 'is the loopback address';
    if (ipv6Word(ip, 0) === 0 && ipv6Word(ip, 1) === 0 && ipv6Word(ip, 2) === 0 && ipv6Word(ip, 3) === 0)
      return 'is the unspecified address';
    if (ipv6Word(ip, 0) >>> 24 === 0xff) return 'is a multicast address';
    return null;
  }
  const top = ip >>> 24;
  if (top === 0) return 'is in 0.0.0.0/8 (unspecified)';
  if (top === 127) return 'is a loopback address';
  if (top >= 224 && top < 240) return 'is a multicast address';
  if (top >= 240) return ip === 0xffffffff ? 'is the broadcast address' : 'is in the reserved 240.0.0.0/4';
  return null;
}

/** Parses -c and refuses addresses that no target reply can come back to. */
function parseClientIps(text: string | undefined): readonly ClientIpSpec[] {
  if (text === undefined) return [];
  const r = parseClientIpList(text);
  if (!r.ok) {
    const fix =
      'expected a comma-separated list of IPv4 addresses, a.b.c.x patterns, CIDR blocks, IPv6 addresses or IPv6 prefixes (keep the low bits), e.g. 198.18.5.x or 2001:2:5::/64';
    throw new TcpcopyError('ERR_BAD_CLIENT_IP', `-c ${text}: ${r.reason}; ${fix}`, { option: '-c', value: text });
  }
  const specs = r.specs;
  for (const s of specs) {
    const ip = s.kind === 'exact' ? s.ip : s.base;
    if (s.kind === 'prefix6' && s.bits < 128) continue; // the client's own low bits complete it
    const why = unusableClientAddress(ip);
    if (why !== null)
      throw new TcpcopyError(
        'ERR_BAD_CLIENT_IP',
        `-c ${text}: ${ipToString(ip)} ${why}; the target must be able to answer the client addresses through intercept, e.g. -c 198.18.5.x routed via the assistant`,
        { option: '-c', value: text },
      );
  }
  return specs;
}

/** Parses `-s ip[:port],...`. */
export function parseInterceptList(text: string, defPort: number): InterceptAddress[] {
  const out: InterceptAddress[] = [];
  for (const raw of text.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const [host, portText, extra] = item.split(':');
    if (host === undefined || extra !== undefined || parseIpv4(host) < 0)
      throw badOption('-s', text, 'IP[:PORT],... e.g. 198.18.0.3 or 198.18.0.3:36524');
    let port = defPort;
    if (portText !== undefined) {
      port = Number(portText);
      if (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65535)
        throw optionError('-s', item, `the port "${portText}" is not a TCP port 1..65535; e.g. -s ${host}:36524`);
    }
    out.push({ host, port });
  }
  if (out.length === 0) throw badOption('-s', text, 'at least one intercept address');
  if (out.length > 32) throw badOption('-s', text, 'at most 32 intercepts');
  return out;
}

/**
 * Accepts the two-word `--report json FILE` by joining it into `--report json:FILE` (parseArgs
 * takes one value per option); `--report json` followed by an option is left alone.
 */
export function joinReportArgs(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const next = argv[i + 2];
    if (a === '--report' && argv[i + 1] === 'json' && next !== undefined && !next.startsWith('-')) {
      out.push(a, `json:${next}`);
      i += 2;
    } else {
      out.push(a);
    }
  }
  return out;
}

/** A file name option: undefined stays null, an empty name is refused. */
function fileArg(flag: string, text: string | undefined): string | null {
  if (text === '') throw badOption(flag, "''", 'a file name');
  return text ?? null;
}

/**
 * `--module`, `--module-opt` and the built-ins' own options. A built-in's options need that
 * --module; --module-opt needs a module file. Files are not read here (the runner does).
 */
export function parseModuleChoice(o: ParsedOptions): ModuleChoice | null {
  const spec = o.str('module');
  const given = [...MODULE_OPTION_OWNER.keys()].filter((k) => o.given(k));
  const moduleOpts = o.list('module-opt');
  if (spec === undefined) {
    if (given.length > 0) {
      const k = given[0] as string;
      throw optionError(`--${k}`, o.list(k)[0] ?? '', `needs --module ${MODULE_OPTION_OWNER.get(k) ?? ''}`);
    }
    if (moduleOpts.length > 0) throw optionError('--module-opt', moduleOpts[0] ?? '', 'needs --module PATH');
    return null;
  }
  if (spec === '') throw badOption('--module', "''", 'a module name or file');
  const builtin = !isModulePath(spec);
  if (builtin && !isBuiltinModule(spec))
    throw optionError(
      '--module',
      spec,
      `not a built-in module (built-ins: ${BUILTIN_MODULES.join(', ')}) nor a module file (a path such as ./my-module.js)`,
    );
  const options: Record<string, readonly string[]> = {};
  for (const k of given) {
    const owner = MODULE_OPTION_OWNER.get(k) ?? '';
    if (owner !== spec)
      throw optionError(`--${k}`, o.list(k)[0] ?? '', `is an option of --module ${owner}, not of ${spec}`);
    options[k] = Object.freeze([...o.list(k)]);
  }
  if (moduleOpts.length > 0) {
    if (builtin)
      throw optionError('--module-opt', moduleOpts[0] ?? '', `--module ${spec} takes its own options (see tcpcopy -h)`);
    const byKey: Record<string, string[]> = {};
    for (const kv of moduleOpts) {
      const i = kv.indexOf('=');
      if (i <= 0) throw badOption('--module-opt', kv, 'KEY=VALUE, e.g. --module-opt header=X-Replay');
      (byKey[kv.slice(0, i)] ??= []).push(kv.slice(i + 1));
    }
    for (const [k, v] of Object.entries(byKey)) options[k] = Object.freeze(v);
  }
  return Object.freeze({ spec, builtin, options: Object.freeze(options) });
}

/** Parses tcpcopy's argv (without node and script) into a frozen config; throws TcpcopyError on bad input. */
export function parseTcpcopyArgs(argv: readonly string[]): TcpcopyConfig {
  const o = parseOptionTable('tcpcopy', TCPCOPY_OPTIONS, joinReportArgs(argv));
  const help = o.bool('help');
  const version = o.bool('version');
  if (help || version) return Object.freeze({ ...defaultTcpcopyConfig(), help, version });

  const xText = o.str('transfer');
  if (xText === undefined)
    throw new TcpcopyError(
      'ERR_BAD_OPTION',
      '-x is required: say what to copy, e.g. -x 80-198.18.0.2:8080 (see tcpcopy -h)',
      { option: '-x' },
    );
  const transfers = parseTransferList(xText);
  const channelPort = intArg('-p', o.str('port'), D.channelPort, 1, 65535);
  const sText = o.str('intercept');
  if (sText === undefined)
    throw new TcpcopyError('ERR_BAD_OPTION', '-s is required: the intercept address(es), e.g. -s 198.18.0.3', {
      option: '-s',
    });
  const intercepts = parseInterceptList(sText, channelPort);
  const sendDevice = o.str('send-device') ?? null;
  if (sendDevice !== null && transfers.some((t) => t.targetMac === null)) {
    throw new TcpcopyError(
      'ERR_BAD_OPTION',
      `-o ${sendDevice}: every -x transfer needs the next-hop MAC, e.g. -x 80-198.18.0.2:8080@02:00:00:00:00:02`,
      { option: '-o' },
    );
  }
  const reportText = fileArg('--report', o.str('report'));
  const metricsText = o.str('metrics');
  const offlineOptions = (
    [
      ['-a', 'accelerate'],
      ['-T', 'repeat'],
      ['-I', 'idle-gap'],
      ['--max-gap', 'max-gap'],
    ] as const
  )
    .filter(([, long]) => o.given(long))
    .map(([flag]) => flag);
  const replicas = intArg('-n', o.str('replicas'), D.replicas, 1, 1023);
  const module = parseModuleChoice(o);
  const cfg: TcpcopyConfig = {
    help,
    version,
    transfers,
    intercepts,
    connections: intArg('-C', o.str('connections'), D.connections, 1, 11),
    reconnect: o.bool('reconnect'),
    secretFile: fileArg('--secret-file', o.str('secret-file')),
    respPayload: o.bool('resp-payload'),
    module,
    compare: parseCompareChoice(o, transfers, replicas, module),
    clientIps: parseClientIps(o.str('client-ip')),
    ...((h) => ({ localhostIp: h.v4, localhostIp6: h.v6 }))(parseLocalhostIp(o.str('localhost-ip'))),
    replicas,
    portOffset: intArg('-f', o.str('port-offset'), D.portOffset, 0, 63),
    samplePercent: intArg('-r', o.str('rate'), D.samplePercent, 1, 100),
    rampMs: o.bool('ramp') ? RAMP_MS : D.rampMs,
    input: o.str('input') ?? null,
    offlineFile: fileArg('--offline', o.str('offline')),
    offlineOptions: Object.freeze(offlineOptions),
    filter: o.str('filter') ?? null,
    bufferMB: intArg('-B', o.str('buffer'), D.bufferMB, 1, 4096),
    snaplen: intArg('-S', o.str('snaplen'), D.snaplen, 64, 262144),
    captureDelayMs: intArg('--capture-delay', o.str('capture-delay'), D.captureDelayMs, 1, 1000),
    sendDevice,
    accelerate: numArg('-a', o.str('accelerate'), D.accelerate, 0, 1_000_000),
    idleGapMs: numArg('-I', o.str('idle-gap'), D.idleGapMs, 0, 1e12),
    maxGapMs: numArg('--max-gap', o.str('max-gap'), D.maxGapMs / 1000, 0, 1e9) * 1000,
    repeats: intArg('-T', o.str('repeat'), D.repeats, 1, 1_000_000),
    sessionTimeoutMs: numArg('-t', o.str('session-timeout'), D.sessionTimeoutMs / 1000, 0.001, 1e7) * 1000,
    keepaliveTimeoutMs: numArg('-k', o.str('keepalive-timeout'), D.keepaliveTimeoutMs / 1000, 0.001, 1e7) * 1000,
    noWait: o.bool('no-wait'),
    onlySyn: o.bool('only-syn'),
    mss: intArg('-D', o.str('mss'), D.mss, 88, 65495),
    mtu: intArg('-M', o.str('mtu'), D.mtu, 128, 65535),
    rtoMs: numArg('-R', o.str('rtt'), D.rtoMs, 1, 60_000),
    delayedAckMs: numArg('--delayed-ack', o.str('delayed-ack'), D.delayedAckMs, 0, 500),
    memoryMB: intArg('-m', o.str('memory'), D.memoryMB, 0, 1_000_000),
    memoryBudgetMB:
      o.str('memory-budget') === undefined
        ? D.memoryBudgetMB
        : o.str('memory-budget') === 'auto'
          ? 'auto'
          : intArg('--memory-budget', o.str('memory-budget'), 0, 0, 1_000_000),
    sessionBacklogKB:
      o.str('session-backlog') === undefined
        ? D.sessionBacklogKB
        : o.str('session-backlog') === 'auto'
          ? 'auto'
          : o.str('session-backlog') === 'off'
            ? 0
            : intArg('--session-backlog', o.str('session-backlog'), 0, 0, 1_000_000_000),
    nice: intArg('--nice', o.str('nice'), D.nice, -20, 19),
    logFile: fileArg('-l', o.str('log')),
    pidFile: fileArg('-P', o.str('pidfile')),
    daemon: o.bool('daemon'),
    logFormat: choiceArg('--log-format', o.str('log-format'), D.logFormat, ['text', 'json']),
    debug: o.bool('debug'),
    reportFile: reportText === null ? null : reportText.replace(/^json:/, ''),
    statusIntervalMs: numArg('--status', o.str('status'), D.statusIntervalMs / 1000, 0, 86400) * 1000,
    statusStyle: choiceArg('--status-style', o.str('status-style'), D.statusStyle, ['auto', 'line', 'plain']),
    metrics: metricsText === undefined ? null : parseMetricsAddress(metricsText),
  };
  return Object.freeze(cfg);
}
