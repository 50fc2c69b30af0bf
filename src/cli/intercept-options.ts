/**
 * The `intercept` command line: parsed once into a frozen, validated InterceptConfig.
 * Options mirror the original intercept: -i -F -p -b -l -P -d -h -v (libpcap mode), -s (route
 * table size), --nfqueue [NUM] / -q / -x (NFQUEUE mode on the target), plus --route-timeout,
 * --payload, --snaplen, --report, --secret-file (channel v2) and --payload-max.
 */
import { parseArgs } from 'node:util';
import { TcpcopyError } from '../core/errors';
import { parseIpv4 } from '../core/wire/segment';
import { CHANNEL_DEFAULT_PORT } from '../channel/constants';
import { DEFAULT_PAYLOAD_MAX, MAX_PAYLOAD_MAX } from '../channel/v2';

/** Validated intercept settings. */
export interface InterceptConfig {
  /** Capture device, `-i`; default 'any' (all interfaces). */
  readonly device: string;
  /** BPF filter for the replies, `-F`, e.g. 'tcp and src port 8080'; default 'tcp and not port <-p>' (everything but the channel itself). */
  readonly filter: string;
  /** Channel port, `-p`; default 36524. */
  readonly port: number;
  /** Channel listen address, `-b`; default '0.0.0.0'. */
  readonly bind: string;
  /** Log file, `-l`; null = stderr. */
  readonly logFile: string | null;
  /** Pid file, `-P`; null = none. */
  readonly pidFile: string | null;
  /** Run in the background, `-d`. */
  readonly daemon: boolean;
  /** Idle route expiry in seconds, `--route-timeout`; default 120. */
  readonly routeTimeoutS: number;
  /**
   * Send 192-byte records as the original intercept built `--with-resp-payload` does,
   * `--payload`: a reply's whole payload, when it is 1..128 bytes, right after its TCP header.
   */
  readonly payload: boolean;
  /**
   * Capture snaplen in bytes, `--snaplen`; default 160 (headers), 320 with --payload,
   * 160 + payloadMax with --secret-file (channel v2 sessions may ask for payload).
   */
  readonly snaplen: number;
  /**
   * Channel v2: most payload bytes sent per reply to a session that asked for payload,
   * `--payload-max BYTES` (0..65535, no original flag); more is cut and flagged truncated.
   * Default 1024 (greetings and logins). Sessions that did not ask get headers only.
   */
  readonly payloadMax: number;
  /** Longest a captured reply waits in the capture ring before intercept wakes up to read it, ms, `--capture-delay` (no original flag); default 1. */
  readonly captureDelayMs: number;
  /** Log level, `--log-level` debug|info|warn|error; default info. */
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Log line format, `--log-format` text|json; default text. */
  readonly logFormat: 'text' | 'json';
  /** Most client routes held, `-s` (the original's route table size); default 1,000,000. */
  readonly maxRoutes: number;
  /** NFQUEUE mode: queue number from `--nfqueue [NUM]` (default 0 when the flag is given); null = capture mode (-i/-F). */
  readonly nfqueue: number | null;
  /** Kernel queue length in packets in NFQUEUE mode, `-q` (NFQA_CFG_QUEUE_MAXLEN); 0 = kernel default (1024). */
  readonly queueMaxLen: number;
  /** Pass list of NFQUEUE mode, `-x ip,...`: replies to these IPv4 addresses are accepted, not dropped. */
  readonly passList: readonly string[];
  /** Final counters as JSON written to this file at exit, `--report FILE`; null = none. */
  readonly reportFile: string | null;
  /** Shared secret file enabling channel v2 authentication, `--secret-file FILE`; null = 1.x channel. */
  readonly secretFile: string | null;
  /** Serve Prometheus metrics on HOST:PORT, `--metrics`; null = off. */
  readonly metrics: string | null;
}

/** What the command line asks for. */
export type InterceptCommand =
  { readonly kind: 'help' } | { readonly kind: 'version' } | { readonly kind: 'run'; readonly config: InterceptConfig };

/** The --help text. */
export const INTERCEPT_HELP = `Usage: intercept [options]

Captures the target server's replies (on the assistant host, or on the target itself) and
returns their headers to the tcpcopy instances connected on the channel port.

  -i, --device DEV        capture device (default: any)
  -F, --filter BPF        capture filter for the replies, e.g. 'tcp and src port 8080'
                          (default: 'tcp and not port <channel port>')
  -p, --port PORT         channel port tcpcopy connects to (default: ${CHANNEL_DEFAULT_PORT})
  -b, --bind ADDR         channel listen address (default: 0.0.0.0)
  -s, --max-routes N      route table size: most client routes held (default: 1000000)
      --route-timeout S   forget a client route unused for S seconds (default: 120)
      --nfqueue [NUM]     run on the target: read replies from NFQUEUE NUM (default 0)
                          instead of capturing (-i/-F unused); needs
                          iptables -I OUTPUT -p tcp --sport 8080 -j NFQUEUE
  -q, --queue-len N       NFQUEUE mode: kernel queue length in packets (default: kernel's 1024)
  -x, --pass IP[,IP...]   NFQUEUE mode: replies to these addresses are let through
      --secret-file FILE  channel v2: tcpcopy must prove the shared secret in FILE
      --report FILE       write the final counters as JSON to FILE at exit
      --metrics HOST:PORT serve Prometheus metrics (text format) at http://HOST:PORT/metrics
      --payload           send 192-byte records as the original intercept built
                          --with-resp-payload: a reply's payload, only when it is
                          1..128 bytes, right after its TCP header (tcpcopy must
                          use the same record variant)
      --payload-max BYTES channel v2: most payload bytes per reply sent to sessions
                          that ask for payload; more is cut, flagged truncated
                          (0..65535, default: ${DEFAULT_PAYLOAD_MAX})
      --snaplen BYTES     capture snaplen (default: 160, 320 with --payload,
                          160 + --payload-max with --secret-file)
      --capture-delay MS  longest a reply waits in the capture ring before intercept
                          reads it (1..1000, default 1): larger = fewer wake-ups, less
                          CPU on both sides, later replies (more replay lag)
  -l, --log FILE          append the log to FILE (default: stderr)
      --log-level LEVEL   debug, info, warn or error (default: info)
      --log-format FMT    text or json (one object per line) (default: text)
  -P, --pidfile FILE      write the process id to FILE
  -d, --daemon            run in the background (log to -l FILE)
  -h, --help              this text
  -v, --version           print the version
`;

function bad(option: string, value: string, fix: string): TcpcopyError {
  return new TcpcopyError('ERR_BAD_OPTION', `${option} ${value}: ${fix}`, { option, value });
}

function intOpt(option: string, v: string | undefined, def: number, min: number, max: number, what: string): number {
  if (v === undefined) return def;
  if (!/^\d+$/.test(v)) throw bad(option, v, `expected ${what} (an integer ${min}..${max})`);
  const n = Number(v);
  if (n < min || n > max) throw bad(option, v, `expected ${what} in ${min}..${max}`);
  return n;
}

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
    } else out.push('--nfqueue=0');
  }
  return out;
}

/** Parses argv (without node and script). Throws TcpcopyError ERR_BAD_OPTION with the option, value and fix. */
export function parseInterceptArgs(argv: readonly string[]): InterceptCommand {
  let parsed;
  try {
    parsed = parseArgs({
      args: normalizeNfqueue(argv),
      strict: true,
      allowPositionals: false,
      options: {
        device: { type: 'string', short: 'i' },
        filter: { type: 'string', short: 'F' },
        port: { type: 'string', short: 'p' },
        bind: { type: 'string', short: 'b' },
        log: { type: 'string', short: 'l' },
        'log-level': { type: 'string' },
        'log-format': { type: 'string' },
        pidfile: { type: 'string', short: 'P' },
        daemon: { type: 'boolean', short: 'd' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
        'route-timeout': { type: 'string' },
        payload: { type: 'boolean' },
        snaplen: { type: 'string' },
        'payload-max': { type: 'string' },
        'capture-delay': { type: 'string' },
        'max-routes': { type: 'string', short: 's' },
        nfqueue: { type: 'string' },
        'queue-len': { type: 'string', short: 'q' },
        pass: { type: 'string', short: 'x', multiple: true },
        report: { type: 'string' },
        metrics: { type: 'string' },
        'secret-file': { type: 'string' },
      },
    });
  } catch (e) {
    const msg = (e as Error).message;
    throw new TcpcopyError('ERR_BAD_OPTION', `${msg}; see intercept --help`, { argv: argv.join(' ') });
  }
  const v = parsed.values;
  if (v.help) return { kind: 'help' };
  if (v.version) return { kind: 'version' };
  const port = intOpt('-p', v.port, CHANNEL_DEFAULT_PORT, 1, 65535, 'a TCP port');
  const bind = v.bind ?? '0.0.0.0';
  if (parseIpv4(bind) < 0) throw bad('-b', bind, 'expected an IPv4 address of this host, e.g. -b 0.0.0.0');
  const device = v.device ?? 'any';
  if (device === '' || device.length > 15 || /[\s/]/.test(device))
    throw bad('-i', device, 'expected a network interface name (see `ip link`), or any');
  const filter = v.filter ?? `tcp and not port ${port}`;
  if (filter.trim() === '') throw bad('-F', `'${filter}'`, "expected a BPF filter, e.g. -F 'tcp and src port 8080'");
  const payload = v.payload === true;
  const routeTimeoutS = intOpt('--route-timeout', v['route-timeout'], 120, 1, 86400, 'seconds');
  const payloadMax = intOpt('--payload-max', v['payload-max'], DEFAULT_PAYLOAD_MAX, 0, MAX_PAYLOAD_MAX, 'bytes');
  if (v['payload-max'] !== undefined && v['secret-file'] === undefined)
    throw bad(
      '--payload-max',
      v['payload-max'],
      'only channel v2 sends payload per session: add --secret-file (or use --payload for 1.x 192-byte records)',
    );
  const v2 = v['secret-file'] !== undefined;
  const snaplen = intOpt(
    '--snaplen',
    v.snaplen,
    payload ? 320 : v2 ? Math.min(65535, 160 + payloadMax) : 160,
    96,
    65535,
    'bytes',
  );
  const captureDelayMs = intOpt('--capture-delay', v['capture-delay'], 1, 1, 1000, 'ms');
  const lvl = v['log-level'] ?? 'info';
  if (lvl !== 'debug' && lvl !== 'info' && lvl !== 'warn' && lvl !== 'error')
    throw bad('--log-level', lvl, 'expected debug, info, warn or error');
  const fmt = v['log-format'] ?? 'text';
  if (fmt !== 'text' && fmt !== 'json') throw bad('--log-format', fmt, 'expected text or json');
  if (v.log === '') throw bad('-l', "''", 'expected a file name');
  if (v.pidfile === '') throw bad('-P', "''", 'expected a file name');
  const maxRoutes = intOpt('-s', v['max-routes'], 1_000_000, 1, 100_000_000, 'a route table size');
  const nfqueue = v.nfqueue === undefined ? null : intOpt('--nfqueue', v.nfqueue, 0, 0, 65535, 'a queue number');
  const queueMaxLen = intOpt('-q', v['queue-len'], 0, 1, 10_000_000, 'a queue length in packets');
  const passList: string[] = [];
  for (const item of v.pass ?? []) {
    for (const a of item.split(',')) {
      if (parseIpv4(a.trim()) < 0)
        throw bad('-x', item, 'expected IPv4 addresses separated by commas, e.g. -x 198.18.1.9,198.18.1.10');
      passList.push(a.trim());
    }
  }
  if (nfqueue === null && (v['queue-len'] !== undefined || passList.length > 0)) {
    throw bad(
      v['queue-len'] !== undefined ? '-q' : '-x',
      v['queue-len'] ?? passList.join(','),
      'only used with --nfqueue; add --nfqueue [NUM] or drop it',
    );
  }
  if (v.report === '') throw bad('--report', "''", 'expected a file name');
  if (v['secret-file'] === '') throw bad('--secret-file', "''", 'expected a file name');
  if (v['secret-file'] !== undefined && payload)
    throw bad(
      '--secret-file',
      v['secret-file'],
      'channel v2 sends payload to the sessions that ask for it (--payload-max); --payload is the 1.x 192-byte record variant: drop it',
    );
  const config: InterceptConfig = Object.freeze({
    device,
    filter,
    port,
    bind,
    logFile: v.log ?? null,
    pidFile: v.pidfile ?? null,
    daemon: v.daemon === true,
    routeTimeoutS,
    payload,
    snaplen,
    payloadMax,
    captureDelayMs,
    logLevel: lvl,
    logFormat: fmt,
    maxRoutes,
    nfqueue,
    queueMaxLen,
    passList: Object.freeze(passList),
    reportFile: v.report ?? null,
    secretFile: v['secret-file'] ?? null,
    metrics: v.metrics ?? null,
  });
  return Object.freeze({ kind: 'run', config });
}
