import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { TcpcopyError } from '../core/errors';
import { type ClientIpSpec, parseClientIpList } from '../core/client-map';
import { parseIpv4 } from '../core/wire/segment';
import { TCPCOPY_OPTIONS } from './tcpcopy-options';
import { parseTransferList, type Transfer } from './transfer';
import { type MetricsAddress, parseMetricsAddress } from '../io/metrics-server';
import { LIVE_RING_BLOCK_TIMEOUT_MS } from '../run/live-input';

/** Where packets come from. */
export type InputSpec = { kind: 'offline'; file: string } | { kind: 'live'; devices: readonly string[] };

/** tcpcopy's validated, frozen configuration: parsed once from argv, read-only afterwards. */
export interface TcpcopyConfig {
  /** -x */
  transfers: readonly Transfer[];
  /** -s with -p as the default port */
  intercepts: readonly { host: string; port: number }[];
  /** -C connections per intercept (1..11), default 2 */
  connections: number;
  /** -L reconnect when intercept goes away */
  reconnect: boolean;
  /** --secret-file: channel v2 shared secret file (intercept needs the same); null = 1.x channel. Not in the original. */
  secretFile: string | null;
  /** -c */
  clientIps: readonly ClientIpSpec[];
  /** -H: replaces 127.0.0.0/8 client addresses; 0 = off */
  localhostIp: number;
  /** -n 1..1023 */
  replicas: number;
  /** -f 0..63 */
  portOffset: number;
  /** -r 1..100 */
  samplePercent: number;
  /** -g: ramp over 100 s (ms), 0 = off */
  rampMs: number;
  /** -i / --offline */
  input: InputSpec;
  /** -F, null = built from the transfers */
  filter: string | null;
  /** -B MiB */
  bufferMB: number;
  /** -S bytes */
  snaplen: number;
  /** --capture-delay ms (no original flag): live ring block retire timeout; default 10 */
  captureDelayMs: number;
  /** -o device, null = raw IP send */
  sendDevice: string | null;
  /** -a (0 = unpaced) */
  accelerate: number;
  /** -I ms, 0 = off */
  idleGapMs: number;
  /** -T */
  repeats: number;
  /** -t in ms */
  sessionTimeoutMs: number;
  /** -k in ms */
  keepaliveTimeoutMs: number;
  /** -W */
  noWait: boolean;
  /** -O */
  onlySyn: boolean;
  /** -D */
  mss: number;
  /** -M */
  mtu: number;
  /** -R in ms */
  rtoMs: number;
  /** --delayed-ack in ms */
  delayedAckMs: number;
  /** --nice: niceness applied at start (-20..19) */
  nice: number;
  /** -m MiB, 0 = off */
  memoryMB: number;
  /** -l */
  logFile: string | null;
  /** -P */
  pidFile: string | null;
  /** -d */
  daemon: boolean;
  logFormat: 'text' | 'json';
  debug: boolean;
  /** --report json:FILE */
  reportFile: string | null;
  /** --status seconds (0 = none) */
  statusIntervalMs: number;
  /** --status-style: 'line' refreshes one terminal line every second, 'plain' logs lines every --status S, 'auto' (default) picks line when stderr is a TTY. */
  statusStyle: 'auto' | 'line' | 'plain';
  /** --metrics HOST:PORT: Prometheus endpoint address; null (default) = off. */
  metrics: MetricsAddress | null;
  help: boolean;
  version: boolean;
}

function badOption(flag: string, value: string, expected: string): TcpcopyError {
  return new TcpcopyError('ERR_BAD_OPTION', `${flag} ${value}: expected ${expected}`, { option: flag, value });
}

function intOption(flag: string, text: string | undefined, def: number, min: number, max: number): number {
  if (text === undefined) return def;
  if (!/^\d+$/.test(text)) throw badOption(flag, text, `an integer ${min}..${max}`);
  const v = Number(text);
  if (v < min || v > max) throw badOption(flag, text, `an integer ${min}..${max}`);
  return v;
}

function numOption(flag: string, text: string | undefined, def: number, min: number, max: number): number {
  if (text === undefined) return def;
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < min || v > max)
    throw badOption(flag, text, `a number ${min}..${max}`);
  return v;
}

/** Parses --nice: an integer -20..19. */
function niceOption(text: string | undefined): number {
  if (text === undefined) return 0;
  const v = Number(text);
  if (!/^-?\d+$/.test(text) || v < -20 || v > 19) throw badOption('--nice', text, 'an integer -20..19');
  return v;
}

/** Parses -H: an IPv4 address that is not itself a loopback address. */
function parseLocalhostIp(text: string | undefined): number {
  if (text === undefined) return 0;
  const ip = parseIpv4(text);
  if (ip < 0 || ip >>> 24 === 127 || ip === 0)
    throw badOption('-H', text, 'an IPv4 address outside 127.0.0.0/8, e.g. -H 198.18.1.9');
  return ip;
}

/** Parses `-s ip[:port],...`. */
export function parseInterceptList(text: string, defPort: number): { host: string; port: number }[] {
  const out: { host: string; port: number }[] = [];
  for (const raw of text.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const [host, portText] = item.split(':');
    if (host === undefined || parseIpv4(host) < 0)
      throw badOption('-s', text, 'IP[:PORT],... e.g. 198.18.0.3 or 198.18.0.3:36524');
    const port = portText === undefined ? defPort : intOption('-s', portText, defPort, 1, 65535);
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

/** Parses tcpcopy's argv (without node and script) into a frozen config; throws TcpcopyError on bad input. */
export function parseTcpcopyArgs(argv: readonly string[]): TcpcopyConfig {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const o of TCPCOPY_OPTIONS)
    options[o.long] = o.short !== undefined ? { type: o.kind, short: o.short } : { type: o.kind };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: joinReportArgs(argv), options, strict: true, allowPositionals: false }) as {
      values: Record<string, string | boolean | undefined>;
    });
  } catch (e) {
    throw new TcpcopyError(
      'ERR_BAD_OPTION',
      `${(e as Error).message.replace(/\. To specify.*$/s, '')}; see tcpcopy -h`,
    );
  }
  const str = (k: string): string | undefined => (typeof values[k] === 'string' ? values[k] : undefined);
  const bool = (k: string): boolean => values[k] === true;
  const help = bool('help');
  const version = bool('version');
  const base = { help, version };
  if (help || version) return Object.freeze({ ...emptyConfig(), ...base });

  const xText = str('transfer');
  if (xText === undefined)
    throw new TcpcopyError(
      'ERR_BAD_OPTION',
      '-x is required: say what to copy, e.g. -x 80-198.18.0.2:8080 (see tcpcopy -h)',
      { option: '-x' },
    );
  const transfers = parseTransferList(xText);
  const channelPort = intOption('-p', str('port'), 36524, 1, 65535);
  const sText = str('intercept');
  if (sText === undefined)
    throw new TcpcopyError('ERR_BAD_OPTION', '-s is required: the intercept address(es), e.g. -s 198.18.0.3', {
      option: '-s',
    });
  const intercepts = parseInterceptList(sText, channelPort);

  let input: InputSpec;
  const offline = str('offline');
  const iText = str('input');
  if (offline !== undefined) {
    input = { kind: 'offline', file: offline };
  } else if (iText !== undefined && (fs.existsSync(iText) || /\.(pcap|pcapng|cap|dump)$/i.test(iText))) {
    input = { kind: 'offline', file: iText };
  } else {
    input = {
      kind: 'live',
      devices:
        iText === undefined
          ? []
          : iText
              .split(',')
              .map((d) => d.trim())
              .filter((d) => d !== ''),
    };
  }
  const sendDevice = str('send-device') ?? null;
  if (sendDevice !== null && transfers.some((t) => t.targetMac === null)) {
    throw new TcpcopyError(
      'ERR_BAD_OPTION',
      `-o ${sendDevice}: every -x transfer needs the next-hop MAC, e.g. -x 80-198.18.0.2:8080@02:00:00:00:00:02`,
      { option: '-o' },
    );
  }
  const reportText = str('report');
  const logFormat = str('log-format') ?? 'text';
  if (logFormat !== 'text' && logFormat !== 'json') throw badOption('--log-format', logFormat, 'text or json');
  const cText = str('client-ip');
  const statusStyle = str('status-style') ?? 'auto';
  if (statusStyle !== 'auto' && statusStyle !== 'line' && statusStyle !== 'plain')
    throw badOption('--status-style', statusStyle, 'auto, line or plain');
  const metricsText = str('metrics');
  const cfg: TcpcopyConfig = {
    ...base,
    transfers,
    intercepts,
    connections: intOption('-C', str('connections'), 2, 1, 11),
    reconnect: bool('reconnect'),
    secretFile: str('secret-file') ?? null,
    clientIps: cText === undefined ? [] : clientIpsOption(cText),
    localhostIp: parseLocalhostIp(str('localhost-ip')),
    replicas: intOption('-n', str('replicas'), 1, 1, 1023),
    portOffset: intOption('-f', str('port-offset'), 0, 0, 63),
    samplePercent: intOption('-r', str('rate'), 100, 1, 100),
    rampMs: bool('ramp') ? 100_000 : 0,
    input,
    filter: str('filter') ?? null,
    bufferMB: intOption('-B', str('buffer'), 16, 1, 4096),
    snaplen: intOption('-S', str('snaplen'), 65535, 64, 262144),
    captureDelayMs: intOption('--capture-delay', str('capture-delay'), LIVE_RING_BLOCK_TIMEOUT_MS, 1, 1000),
    sendDevice,
    accelerate: numOption('-a', str('accelerate'), 1, 0, 1_000_000),
    idleGapMs: numOption('-I', str('idle-gap'), 0, 0, 1e12),
    repeats: intOption('-T', str('repeat'), 1, 1, 1_000_000),
    sessionTimeoutMs: numOption('-t', str('session-timeout'), 600, 0.001, 1e7) * 1000,
    keepaliveTimeoutMs: numOption('-k', str('keepalive-timeout'), 600, 0.001, 1e7) * 1000,
    noWait: bool('no-wait'),
    onlySyn: bool('only-syn'),
    mss: intOption('-D', str('mss'), 1460, 88, 65495),
    mtu: intOption('-M', str('mtu'), 1500, 128, 65535),
    rtoMs: numOption('-R', str('rtt'), 100, 1, 60_000),
    delayedAckMs: numOption('--delayed-ack', str('delayed-ack'), 40, 0, 500),
    memoryMB: intOption('-m', str('memory'), 0, 0, 1_000_000),
    nice: niceOption(str('nice')),
    logFile: str('log') ?? null,
    pidFile: str('pidfile') ?? null,
    daemon: bool('daemon'),
    logFormat,
    debug: bool('debug'),
    reportFile: reportText === undefined ? null : reportText.replace(/^json:/, ''),
    statusIntervalMs: numOption('--status', str('status'), 5, 0, 86400) * 1000,
    statusStyle,
    metrics: metricsText === undefined ? null : parseMetricsAddress(metricsText),
  };
  if (
    input.kind === 'live' &&
    (values['accelerate'] !== undefined || values['repeat'] !== undefined || values['idle-gap'] !== undefined)
  ) {
    throw new TcpcopyError(
      'ERR_BAD_OPTION',
      `-a/-T/-I apply to offline replay; -i ${iText ?? '(none)'} is not an existing capture file`,
      { option: '-i' },
    );
  }
  return Object.freeze(cfg);
}

function emptyConfig(): TcpcopyConfig {
  return {
    help: false,
    version: false,
    transfers: [],
    intercepts: [],
    connections: 2,
    reconnect: false,
    secretFile: null,
    clientIps: [],
    localhostIp: 0,
    replicas: 1,
    portOffset: 0,
    samplePercent: 100,
    rampMs: 0,
    input: { kind: 'live', devices: [] },
    filter: null,
    bufferMB: 16,
    snaplen: 65535,
    captureDelayMs: LIVE_RING_BLOCK_TIMEOUT_MS,
    sendDevice: null,
    accelerate: 1,
    idleGapMs: 0,
    repeats: 1,
    sessionTimeoutMs: 600_000,
    keepaliveTimeoutMs: 600_000,
    noWait: false,
    onlySyn: false,
    mss: 1460,
    mtu: 1500,
    rtoMs: 100,
    delayedAckMs: 40,
    nice: 0,
    memoryMB: 0,
    logFile: null,
    pidFile: null,
    daemon: false,
    logFormat: 'text',
    debug: false,
    reportFile: null,
    statusIntervalMs: 5000,
    statusStyle: 'auto',
    metrics: null,
  };
}

/** -c: the client address list, or ERR_BAD_CLIENT_IP naming the bad item and the fix. */
function clientIpsOption(text: string): ClientIpSpec[] {
  const r = parseClientIpList(text);
  if (r.ok) return r.specs;
  const fix = 'expected a comma-separated list of IPv4 addresses, a.b.c.x patterns or CIDR blocks, e.g. 198.18.5.x';
  throw new TcpcopyError('ERR_BAD_CLIENT_IP', `-c ${text}: ${r.reason}; ${fix}`, { option: '-c', value: text });
}
