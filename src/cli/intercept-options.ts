/**
 * The `intercept` command line: one option table (parsed with the same machinery as tcpcopy's,
 * src/cli/option-table.ts) into a frozen, validated InterceptConfig (src/config/).
 * Options mirror the original intercept: -i -F -p -b -l -P -d -h -v (libpcap mode), -s (route
 * table size), --nfqueue [NUM] / -q / -x (NFQUEUE mode on the target), plus --route-timeout,
 * --payload, --snaplen, --report and --secret-file (channel v2).
 */
import { parseIp, parseIpv4 } from '../core/wire/segment';
import { parseCidr, type Cidr } from '../doctor/parse';
import { MAX_PAYLOAD_MAX } from '../channel/v2';
import { defaultInterceptFilter, INTERCEPT_DEFAULTS as D, type InterceptConfig } from '../config/intercept-config';
import {
  badOption,
  choiceArg,
  optionError,
  intArg,
  type OptionSpec,
  optionHelpLines,
  parseOptionTable,
} from './option-table';

/** What the command line asks for. */
export type InterceptCommand =
  { readonly kind: 'help' } | { readonly kind: 'version' } | { readonly kind: 'run'; readonly config: InterceptConfig };

/** intercept's options: argv parsing, the help text and the doc/usage.md check read this table. */
export const INTERCEPT_OPTIONS: readonly OptionSpec<'Capture' | 'Channel' | 'NFQUEUE' | 'Process and output'>[] = [
  { short: 'i', long: 'device', kind: 'string', group: 'Capture', arg: 'DEV', doc: 'capture device', def: D.device },
  {
    short: 'F',
    long: 'filter',
    kind: 'string',
    group: 'Capture',
    arg: 'BPF',
    doc: "capture filter for the replies, e.g. 'tcp and src port 8080'",
    def: defaultInterceptFilter('<-p>'),
  },
  {
    long: 'snaplen',
    kind: 'string',
    group: 'Capture',
    arg: 'BYTES',
    doc: 'capture snaplen',
    def: `${D.snaplen}, ${D.payloadSnaplen} with --payload`,
  },
  {
    long: 'payload-max',
    kind: 'string',
    group: 'Channel',
    arg: 'BYTES',
    doc: 'channel v2: most payload bytes per reply sent to sessions that ask for payload; more is cut, flagged truncated (0..65535)',
    def: String(D.payloadMax),
  },
  {
    long: 'capture-delay',
    kind: 'string',
    group: 'Capture',
    arg: 'MS',
    doc: 'longest a reply waits in the capture ring before intercept reads it (1..1000): larger = fewer wake-ups, less CPU on both sides, later replies (more replay lag)',
    def: String(D.captureDelayMs),
  },
  {
    short: 'p',
    long: 'port',
    kind: 'string',
    group: 'Channel',
    arg: 'PORT',
    doc: 'channel port tcpcopy connects to',
    def: String(D.port),
  },
  {
    short: 'b',
    long: 'bind',
    kind: 'string',
    group: 'Channel',
    arg: 'ADDR',
    doc: 'channel listen address',
    def: D.bind,
  },
  {
    short: 's',
    long: 'max-routes',
    kind: 'string',
    group: 'Channel',
    arg: 'N',
    doc: 'route table size: most client routes held',
    def: String(D.maxRoutes),
  },
  {
    long: 'max-routes-per-peer',
    kind: 'string',
    group: 'Channel',
    arg: 'N',
    doc: 'most routes registered from one address (a peer over its quota is refused, counted and logged)',
    def: String(D.maxRoutesPerPeer),
  },
  {
    long: 'allow',
    kind: 'string',
    multiple: true,
    group: 'Channel',
    arg: 'CIDR[,...]',
    doc: 'accept channel connections only from these addresses (the 1.x channel is unauthenticated)',
    def: 'from anywhere',
  },
  {
    long: 'route-timeout',
    kind: 'string',
    group: 'Channel',
    arg: 'S',
    doc: 'forget a client route unused for S seconds',
    def: String(D.routeTimeoutS),
  },
  {
    long: 'payload',
    kind: 'boolean',
    group: 'Channel',
    doc: "send 192-byte records as the original intercept built --with-resp-payload: a reply's payload, only when it is 1..128 bytes, right after its TCP header (tcpcopy must use the same record variant)",
  },
  {
    long: 'secret-file',
    kind: 'string',
    group: 'Channel',
    arg: 'FILE',
    doc: 'channel v2: tcpcopy must prove the shared secret in FILE',
  },
  {
    long: 'nfqueue',
    kind: 'string',
    group: 'NFQUEUE',
    arg: '[NUM]',
    doc: `run on the target: read replies from NFQUEUE NUM (default ${D.nfqueue}) instead of capturing (-i/-F unused); needs iptables -I OUTPUT -p tcp --sport 8080 -j NFQUEUE`,
  },
  {
    short: 'q',
    long: 'queue-len',
    kind: 'string',
    group: 'NFQUEUE',
    arg: 'N',
    doc: 'NFQUEUE mode: kernel queue length in packets',
    def: "kernel's 1024",
  },
  {
    short: 'x',
    long: 'pass',
    kind: 'string',
    multiple: true,
    group: 'NFQUEUE',
    arg: 'IP[,IP...]',
    doc: 'NFQUEUE mode: replies to these addresses (IPv4 or IPv6) are let through',
  },
  {
    long: 'report',
    kind: 'string',
    group: 'Process and output',
    arg: 'FILE',
    doc: 'write the final counters as JSON to FILE at exit',
  },
  {
    long: 'metrics',
    kind: 'string',
    group: 'Process and output',
    arg: 'HOST:PORT',
    doc: 'serve Prometheus metrics (text format) at http://HOST:PORT/metrics',
    def: 'off',
  },
  {
    short: 'l',
    long: 'log',
    kind: 'string',
    group: 'Process and output',
    arg: 'FILE',
    doc: 'append the log to FILE',
    def: 'stderr',
  },
  {
    long: 'log-level',
    kind: 'string',
    group: 'Process and output',
    arg: 'LEVEL',
    doc: 'debug, info, warn or error',
    def: D.logLevel,
  },
  {
    long: 'log-format',
    kind: 'string',
    group: 'Process and output',
    arg: 'text|json',
    doc: 'log line format (json: one object per line)',
    def: D.logFormat,
  },
  {
    short: 'P',
    long: 'pidfile',
    kind: 'string',
    group: 'Process and output',
    arg: 'FILE',
    doc: 'write the process id to FILE',
  },
  {
    short: 'd',
    long: 'daemon',
    kind: 'boolean',
    group: 'Process and output',
    doc: 'run in the background (log to -l FILE)',
  },
  { short: 'h', long: 'help', kind: 'boolean', group: 'Process and output', doc: 'show this help' },
  { short: 'v', long: 'version', kind: 'boolean', group: 'Process and output', doc: 'show the version' },
];

/** The --help text, generated from the table. */
export const INTERCEPT_HELP = [
  'usage: intercept [options]',
  '       intercept doctor [--target ...]   check the assistant (or the target) for replay',
  '',
  "Captures the target server's replies (on the assistant host, or on the target itself) and",
  'returns their headers to the tcpcopy instances connected on the channel port.',
  '',
  ...optionHelpLines(INTERCEPT_OPTIONS, 28),
].join('\n');

/** `--nfqueue` takes an optional number: `--nfqueue`, `--nfqueue 3`, `--nfqueue=3`. */
function normalizeNfqueue(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a !== '--nfqueue') {
      out.push(a);
      continue;
    }
    const next = argv[i + 1];
    if (next !== undefined && /^\d+$/.test(next)) {
      out.push(`--nfqueue=${next}`);
      i++;
    } else out.push(`--nfqueue=${D.nfqueue}`);
  }
  return out;
}

/** A file name option: undefined stays null, an empty name is refused. */
function fileArg(flag: string, text: string | undefined): string | null {
  if (text === '') throw badOption(flag, "''", 'a file name');
  return text ?? null;
}

/** Parses argv (without node and script). Throws TcpcopyError ERR_BAD_OPTION with the option, value and fix. */
export function parseInterceptArgs(argv: readonly string[]): InterceptCommand {
  const o = parseOptionTable('intercept', INTERCEPT_OPTIONS, normalizeNfqueue(argv));
  if (o.bool('help')) return { kind: 'help' };
  if (o.bool('version')) return { kind: 'version' };
  const port = intArg('-p', o.str('port'), D.port, 1, 65535, 'a TCP port');
  const bind = o.str('bind') ?? D.bind;
  if (parseIpv4(bind) < 0) throw badOption('-b', bind, 'an IPv4 address of this host, e.g. -b 0.0.0.0');
  const device = o.str('device') ?? D.device;
  if (device === '' || device.length > 15 || /[\s/]/.test(device))
    throw badOption('-i', device, 'a network interface name (see `ip link`), or any');
  const filter = o.str('filter') ?? defaultInterceptFilter(port);
  if (filter.trim() === '') throw badOption('-F', `'${filter}'`, "a BPF filter, e.g. -F 'tcp and src port 8080'");
  const payload = o.bool('payload');
  const routeTimeoutS = intArg('--route-timeout', o.str('route-timeout'), D.routeTimeoutS, 1, 86400, 'seconds');
  const payloadMaxText = o.str('payload-max');
  const payloadMax = intArg('--payload-max', payloadMaxText, D.payloadMax, 0, MAX_PAYLOAD_MAX, 'bytes');
  const v2 = o.str('secret-file') !== undefined;
  if (payloadMaxText !== undefined && !v2)
    throw optionError(
      '--payload-max',
      payloadMaxText,
      'only channel v2 sends payload per session: add --secret-file (or use --payload for 1.x 192-byte records)',
    );
  const snaplen = intArg(
    '--snaplen',
    o.str('snaplen'),
    payload ? D.payloadSnaplen : v2 ? Math.min(65535, D.snaplen + payloadMax) : D.snaplen,
    96,
    65535,
    'bytes',
  );
  const captureDelayMs = intArg('--capture-delay', o.str('capture-delay'), D.captureDelayMs, 1, 1000, 'ms');
  const logLevel = choiceArg('--log-level', o.str('log-level'), D.logLevel, ['debug', 'info', 'warn', 'error']);
  const logFormat = choiceArg('--log-format', o.str('log-format'), D.logFormat, ['text', 'json']);
  const logFile = fileArg('-l', o.str('log'));
  const pidFile = fileArg('-P', o.str('pidfile'));
  const maxRoutes = intArg('-s', o.str('max-routes'), D.maxRoutes, 1, 100_000_000, 'a route table size');
  const maxRoutesPerPeer = intArg(
    '--max-routes-per-peer',
    o.str('max-routes-per-peer'),
    D.maxRoutesPerPeer,
    1,
    100_000_000,
    'a number of routes',
  );
  const allow: Cidr[] = [];
  for (const item of o.list('allow')) {
    for (const a of item.split(',')) {
      const c = parseCidr(a.trim());
      if (c === null)
        throw badOption('--allow', item, 'IPv4 addresses or blocks separated by commas, e.g. --allow 198.18.0.0/24');
      allow.push(Object.freeze(c));
    }
  }
  const nfqText = o.str('nfqueue');
  const nfqueue = nfqText === undefined ? null : intArg('--nfqueue', nfqText, D.nfqueue, 0, 65535, 'a queue number');
  const queueText = o.str('queue-len');
  const queueMaxLen = intArg('-q', queueText, D.queueMaxLen, 1, 10_000_000, 'a queue length in packets');
  const passList: string[] = [];
  for (const item of o.list('pass')) {
    for (const a of item.split(',')) {
      if (parseIp(a.trim()) < 0)
        throw badOption(
          '-x',
          item,
          'IPv4 or IPv6 addresses separated by commas, e.g. -x 198.18.1.9,198.18.1.10 or -x 2001:2::9',
        );
      passList.push(a.trim());
    }
  }
  if (nfqueue === null && (queueText !== undefined || passList.length > 0)) {
    throw optionError(
      queueText !== undefined ? '-q' : '-x',
      queueText ?? passList.join(','),
      'only used with --nfqueue; add --nfqueue [NUM] or drop it',
    );
  }
  const reportFile = fileArg('--report', o.str('report'));
  const secretFile = fileArg('--secret-file', o.str('secret-file'));
  if (secretFile !== null && payload)
    throw optionError(
      '--secret-file',
      secretFile,
      'channel v2 sends payload to the sessions that ask for it (--payload-max); --payload is the 1.x 192-byte record variant: drop it',
    );
  const config: InterceptConfig = Object.freeze({
    device,
    filter,
    port,
    bind,
    logFile,
    pidFile,
    daemon: o.bool('daemon'),
    routeTimeoutS,
    payload,
    snaplen,
    payloadMax,
    captureDelayMs,
    logLevel,
    logFormat,
    maxRoutes,
    maxRoutesPerPeer,
    allow: Object.freeze(allow),
    nfqueue,
    queueMaxLen,
    passList: Object.freeze(passList),
    reportFile,
    secretFile,
    metrics: o.str('metrics') ?? null,
  });
  return Object.freeze({ kind: 'run', config });
}
