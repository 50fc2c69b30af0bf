/**
 * intercept's configuration: the validated, frozen settings (parsed from argv by
 * src/cli/intercept-options.ts) and the one typed source of their defaults, which the parser,
 * the help text and doc/usage.md (checked by a unit test) all read.
 */
import type { Cidr } from '../doctor/parse';
import { CHANNEL_DEFAULT_PORT } from '../channel/constants';
import { DEFAULT_PAYLOAD_MAX } from '../channel/v2';

/** Validated intercept settings. */
export interface InterceptConfig {
  /** Capture device, `-i`; default 'any' (all interfaces). */
  readonly device: string;
  /** BPF filter for the replies, `-F`, e.g. 'tcp and src port 8080'; default 'tcp and not port <-p>' (everything but the channel itself). */
  readonly filter: string;
  /** Channel port, `-p`; default 36524 (CHANNEL_DEFAULT_PORT). */
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
  /** Most routes registered from one address, `--max-routes-per-peer` (no original flag); default 250,000. */
  readonly maxRoutesPerPeer: number;
  /** Channel connections accepted only from these blocks, `--allow CIDR[,...]` (no original flag); empty (default) = from anywhere. */
  readonly allow: readonly Cidr[];
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

/** The defaults of every intercept setting (values as InterceptConfig holds them). */
export const INTERCEPT_DEFAULTS = Object.freeze({
  device: 'any',
  port: CHANNEL_DEFAULT_PORT,
  bind: '0.0.0.0',
  routeTimeoutS: 120,
  /** Snaplen without --payload: the headers a 64-byte record carries. */
  snaplen: 160,
  /** Snaplen with --payload: headers and up to 128 payload bytes. */
  payloadSnaplen: 320,
  captureDelayMs: 1,
  payloadMax: DEFAULT_PAYLOAD_MAX,
  logLevel: 'info',
  logFormat: 'text',
  maxRoutes: 1_000_000,
  maxRoutesPerPeer: 250_000,
  /** Queue number when `--nfqueue` is given without one. */
  nfqueue: 0,
  /** 0 = the kernel's default (1024). */
  queueMaxLen: 0,
} as const);

/** The default capture filter: every TCP packet except the channel's own (`-F` not given). */
export function defaultInterceptFilter(port: number | string): string {
  return `tcp and not port ${port}`;
}
