/**
 * The `intercept` command line: parsed once into a frozen, validated InterceptConfig.
 * Options mirror the original intercept (libpcap mode): -i -F -p -b -l -P -d -h -v, plus
 * --route-timeout, --payload and --snaplen.
 */
import { parseArgs } from 'node:util';
import { TcpcopyError } from '../core/errors';
import { parseIpv4 } from '../core/wire/segment';
import { CHANNEL_DEFAULT_PORT } from '../channel/constants';

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
  /** Send 192-byte records with up to 128 payload bytes, `--payload` (the original's "with payload" build). */
  readonly payload: boolean;
  /** Capture snaplen in bytes, `--snaplen`; default 160 (headers), 320 with --payload. */
  readonly snaplen: number;
  /** Log level, `--log-level` debug|info|warn|error; default info. */
  readonly logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Log line format, `--log-format` text|json; default text. */
  readonly logFormat: 'text' | 'json';
}

/** What the command line asks for. */
export type InterceptCommand =
  | { readonly kind: 'help' }
  | { readonly kind: 'version' }
  | { readonly kind: 'run'; readonly config: InterceptConfig };

/** The --help text. */
export const INTERCEPT_HELP = `Usage: intercept [options]

Captures the target server's replies (on the assistant host, or on the target itself) and
returns their headers to the tcpcopy instances connected on the channel port.

  -i, --device DEV        capture device (default: any)
  -F, --filter BPF        capture filter for the replies, e.g. 'tcp and src port 8080'
                          (default: 'tcp and not port <channel port>')
  -p, --port PORT         channel port tcpcopy connects to (default: ${CHANNEL_DEFAULT_PORT})
  -b, --bind ADDR         channel listen address (default: 0.0.0.0)
      --route-timeout S   forget a client route unused for S seconds (default: 120)
      --payload           send 192-byte records with up to 128 payload bytes
                          (tcpcopy must use the same record variant)
      --snaplen BYTES     capture snaplen (default: 160, 320 with --payload)
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

/** Parses argv (without node and script). Throws TcpcopyError ERR_BAD_OPTION with the option, value and fix. */
export function parseInterceptArgs(argv: readonly string[]): InterceptCommand {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
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
  if (device === '' || device.length > 15 || /[\s/]/.test(device)) throw bad('-i', device, 'expected a network interface name (see `ip link`), or any');
  const filter = v.filter ?? `tcp and not port ${port}`;
  if (filter.trim() === '') throw bad('-F', `'${filter}'`, "expected a BPF filter, e.g. -F 'tcp and src port 8080'");
  const payload = v.payload === true;
  const routeTimeoutS = intOpt('--route-timeout', v['route-timeout'], 120, 1, 86400, 'seconds');
  const snaplen = intOpt('--snaplen', v.snaplen, payload ? 320 : 160, 96, 65535, 'bytes');
  const lvl = v['log-level'] ?? 'info';
  if (lvl !== 'debug' && lvl !== 'info' && lvl !== 'warn' && lvl !== 'error') throw bad('--log-level', lvl, 'expected debug, info, warn or error');
  const fmt = v['log-format'] ?? 'text';
  if (fmt !== 'text' && fmt !== 'json') throw bad('--log-format', fmt, 'expected text or json');
  if (v.log === '') throw bad('-l', "''", 'expected a file name');
  if (v.pidfile === '') throw bad('-P', "''", 'expected a file name');
  const config: InterceptConfig = Object.freeze({
    device, filter, port, bind, logFile: v.log ?? null, pidFile: v.pidfile ?? null,
    daemon: v.daemon === true, routeTimeoutS, payload, snaplen, logLevel: lvl, logFormat: fmt,
  });
  return Object.freeze({ kind: 'run', config });
}
