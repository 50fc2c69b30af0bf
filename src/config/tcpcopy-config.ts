/**
 * tcpcopy's configuration: the validated, frozen settings (parsed once from argv by
 * src/cli/tcpcopy-config.ts, read by the runner in src/run/) and the one typed source of their
 * defaults. The engine's settings take their defaults from ENGINE_DEFAULTS (src/core/), so each
 * default is written once; the parser, the help text and doc/usage.md (checked by a unit test)
 * read them from here.
 */
import { CHANNEL_DEFAULT_PORT } from '../channel/constants';
import type { ClientIpSpec } from '../core/client-map';
import { ENGINE_DEFAULTS } from '../core/engine-config';
import type { CompareConfig } from '../compare/config';

/**
 * One `-x` transfer: which online server traffic to copy and where to send it.
 * Text form (the original's): `[onlineIP:]onlinePort[@onlineMac]-targetIP:targetPort[@nextHopMac]`.
 */
export interface Transfer {
  /** Online server address whose traffic is copied; 0 = any local address. */
  readonly onlineIp: number;
  /** Online server port (1..65535). */
  readonly onlinePort: number;
  /** Target server address the copies go to. */
  readonly targetIp: number;
  /** Target server port (1..65535). */
  readonly targetPort: number;
  /** Source MAC for data-link sends (`-o`), null when not given. */
  readonly onlineMac: string | null;
  /** Next-hop MAC for data-link sends (`-o`), null when not given. */
  readonly targetMac: string | null;
}

/** One intercept to connect to (`-s IP[:PORT]`). */
export interface InterceptAddress {
  readonly host: string;
  readonly port: number;
}

/** `--module`: the protocol module every session is replayed through (doc/modules.md). */
export interface ModuleChoice {
  /** A built-in's name (`mysql`) or the path of a user's module file (`./my-module.js`), as given. */
  readonly spec: string;
  /** `spec` names a built-in (src/modules/registry.ts); false: a file the runner loads. */
  readonly builtin: boolean;
  /**
   * The module's options by name, every value in order: a built-in's own options (`--mysql-user`)
   * or a user module's `--module-opt KEY=VALUE`. readsFile options hold the file name here;
   * the runner reads the file.
   */
  readonly options: Readonly<Record<string, readonly string[]>>;
}

/** `--compare`: the response comparison (doc/compare.md; no original flag). */
export interface CompareChoice {
  /** What is compared and how: mode, rules, noise source, thresholds, memory caps (src/compare/config.ts; defaults COMPARE_DEFAULTS). */
  readonly settings: CompareConfig;
  /** `--compare-out DIR`: diffs.jsonl, summary.json and report.html; null (default) = the report section only. */
  readonly outDir: string | null;
  /** `--compare-diffs-max N`: most lines written to diffs.jsonl (more are counted); default 100000. */
  readonly diffsMax: number;
}

/** tcpcopy's validated, frozen configuration: parsed once from argv, read-only afterwards. */
export interface TcpcopyConfig {
  /** What to copy and where, `-x`; required. */
  readonly transfers: readonly Transfer[];
  /** Intercepts that report the target's replies, `-s IP[:PORT],...` (port defaults to `-p`, 36524); required. */
  readonly intercepts: readonly InterceptAddress[];
  /** Channel connections to each intercept, `-C` (1..11); default 2. */
  readonly connections: number;
  /** Keep running while an intercept is away, `-L`; default false (stop after 10 s without it). */
  readonly reconnect: boolean;
  /** Channel v2 shared secret file, `--secret-file` (no original flag; intercept needs the same); null (default) = 1.x channel. */
  readonly secretFile: string | null;
  /**
   * 1.x channel: intercept sends 192-byte records with reply payloads (the original built
   * `--with-resp-payload`; ours with `--payload`), `--resp-payload` (no original flag: the
   * original tcpcopy is built the same way); default false (64-byte records).
   */
  readonly respPayload: boolean;
  /** The protocol module, `--module NAME|PATH` (the original's `--set-protocol-module`); null (default) = plain TCP replay. */
  readonly module: ModuleChoice | null;
  /** The response comparison, `--compare http|bytes` and `--compare-*` (no original flag); null (default) = off. */
  readonly compare: CompareChoice | null;
  /** Client address rewrite, `-c`; empty (default) = keep the captured client addresses. */
  readonly clientIps: readonly ClientIpSpec[];
  /** Address that replaces loopback (127.0.0.0/8) client addresses, `-H`; 0 (default) = off. */
  readonly localhostIp: number;
  /** Address (an IPv6 id) that replaces `::1` client addresses, `-H` (its IPv6 item); 0 (default) = off. */
  readonly localhostIp6: number;
  /** Copies of every session, `-n` (1..1023); default 1. */
  readonly replicas: number;
  /** Client port space of this instance, `-f` (0..63); default 0. */
  readonly portOffset: number;
  /** Percentage of sessions replayed, `-r` (1..100); default 100. */
  readonly samplePercent: number;
  /** Ramp of the replayed share, ms, `-g` (on: RAMP_MS); 0 (default) = off. */
  readonly rampMs: number;
  /** Capture input as given: `-i DEV[,DEV]|FILE` text; null (default) = live on all devices. File or devices is decided by the runner (src/run/input.ts). */
  readonly input: string | null;
  /** Capture file to replay, `--offline FILE` (no original flag); null (default) = decided from `-i`. */
  readonly offlineFile: string | null;
  /** The offline-only options given (`-a`, `-T`, `-I`), so that the runner can refuse them for live capture. */
  readonly offlineOptions: readonly string[];
  /** Live capture filter, `-F`; null (default) = built from the transfers. */
  readonly filter: string | null;
  /** Capture ring size, MiB, `-B` (1..4096); default 16. */
  readonly bufferMB: number;
  /** Bytes kept of each captured packet, `-S` (64..262144); default 65535. */
  readonly snaplen: number;
  /** Longest a captured packet waits in the ring before tcpcopy reads it, ms, `--capture-delay` (1..1000, no original flag); default 10. */
  readonly captureDelayMs: number;
  /** Send Ethernet frames on this device, `-o`; null (default) = raw IP send. */
  readonly sendDevice: string | null;
  /** Offline pace: N times faster than recorded, `-a` (0 = as fast as possible); default 1. */
  readonly accelerate: number;
  /** Offline: skip idle gaps longer than this, ms, `-I`; 0 (default) = off. */
  readonly idleGapMs: number;
  /** Offline: a recorded time jump longer than this, ms, is reported and skipped as with `-I`, `--max-gap` (given in seconds; no original flag); 0 = wait for any gap; default 1 h. */
  readonly maxGapMs: number;
  /** Offline: replay the file this many times, `-T` (1..1000000); default 1. */
  readonly repeats: number;
  /** End a session idle this long with data pending, ms, `-t` (given in seconds); default 600 s. */
  readonly sessionTimeoutMs: number;
  /** End an idle session whose captured data was all replayed, ms, `-k` (given in seconds); default 600 s. */
  readonly keepaliveTimeoutMs: number;
  /** Do not wait for the response before the next request, `-W`; default false. */
  readonly noWait: boolean;
  /** Replay only sessions whose SYN was captured, `-O`; default false. */
  readonly onlySyn: boolean;
  /** MSS announced in synthesized SYNs, bytes, `-D` (88..65495); default 1460. */
  readonly mss: number;
  /** MTU toward the target, bytes, `-M` (128..65535); default 1500. */
  readonly mtu: number;
  /** Initial retransmission timeout, ms, `-R` (1..60000); default 100. */
  readonly rtoMs: number;
  /** Delayed ACK for the end of a reply, ms, `--delayed-ack` (0..500, no original flag); default 40. */
  readonly delayedAckMs: number;
  /** Scheduling niceness applied at start, `--nice` (-20..19, no original flag); default 0. */
  readonly nice: number;
  /** Stop cleanly above this resident memory, MiB, `-m`; 0 (default) = off. */
  readonly memoryMB: number;
  /**
   * Memory budget, MiB, `--memory-budget` (no original flag): at this resident set new
   * connections are not replayed (lost as `overload`) and, if that is not enough, the session
   * with the most requests waiting is given up, until it is back under 85% of it or under the
   * budget for 2 s (src/run/memory-governor.ts). 'auto' (default) = 110 when capturing from
   * this host's devices (256 with --module or --compare, whose sessions hold messages during
   * logins; plus --compare-memory-max with --compare), off for capture files,
   * `-i tcp://`, `-i -`; 0 = off. At every load tcpcopy keeps up with its resident set is 84-95
   * MiB, so the budget acts only when it falls behind (starved of CPU: 130-184 MiB without it,
   * issue 18 item 13, doc/performance.md).
   */
  readonly memoryBudgetMB: number | 'auto';
  /**
   * Most captured data one session may hold waiting for the target, KiB (`--session-backlog`;
   * no original flag): past it the session is ended and its waiting requests and the rest of its
   * connection are lost as 'backlog' (EngineConfig.maxBacklogBytes). 'auto' (default) =
   * LIVE_SESSION_BACKLOG_KB (1024; 16384 with --module or --compare, whose sessions hold
   * messages during logins) when capturing from this host's devices, off for capture
   * files and streams (an offline replay sped up with -a may legitimately run ahead of the
   * target); 0 = off. Measured (issue 18 item 13): tcpcopy starved of CPU (nice 19) at 36k
   * keep-alive requests/s held 53 MiB of captured requests in 64 sessions.
   */
  readonly sessionBacklogKB: number | 'auto';
  /** Append the log to this file, `-l`; null (default) = stderr. */
  readonly logFile: string | null;
  /** Write the process id to this file, `-P`; null (default) = none. */
  readonly pidFile: string | null;
  /** Run in the background, `-d`; default false. */
  readonly daemon: boolean;
  /** Log line format, `--log-format` text|json; default text. */
  readonly logFormat: 'text' | 'json';
  /** Debug logging, `--debug`; default false. */
  readonly debug: boolean;
  /** Also write the final report as JSON to this file, `--report json:FILE`; null (default) = none. */
  readonly reportFile: string | null;
  /** Time between status lines, ms, `--status` (given in seconds, 0 = none); default 5 s. */
  readonly statusIntervalMs: number;
  /** `--status-style`: 'line' refreshes one terminal line every second, 'plain' logs lines every --status S, 'auto' (default) picks line when stderr is a TTY. */
  readonly statusStyle: 'auto' | 'line' | 'plain';
  /** Prometheus endpoint address, `--metrics HOST:PORT`; null (default) = off. */
  readonly metrics: { readonly host: string; readonly port: number } | null;
  /** `-h`: print the help and exit. */
  readonly help: boolean;
  /** `-v`: print the version and exit. */
  readonly version: boolean;
}

/** The settings that have a default (the rest are required or null when not given). */
export type TcpcopyDefaults = Pick<
  TcpcopyConfig,
  | 'connections'
  | 'localhostIp'
  | 'localhostIp6'
  | 'replicas'
  | 'portOffset'
  | 'samplePercent'
  | 'rampMs'
  | 'bufferMB'
  | 'snaplen'
  | 'captureDelayMs'
  | 'accelerate'
  | 'idleGapMs'
  | 'maxGapMs'
  | 'repeats'
  | 'sessionTimeoutMs'
  | 'keepaliveTimeoutMs'
  | 'noWait'
  | 'onlySyn'
  | 'mss'
  | 'mtu'
  | 'rtoMs'
  | 'delayedAckMs'
  | 'nice'
  | 'memoryMB'
  | 'memoryBudgetMB'
  | 'sessionBacklogKB'
  | 'logFormat'
  | 'statusIntervalMs'
  | 'statusStyle'
> & {
  /** Channel port of the intercepts, `-p`; default 36524 (CHANNEL_DEFAULT_PORT, as the original). */
  readonly channelPort: number;
};

/** The defaults of every tcpcopy setting, in the units of TcpcopyConfig (ms, MiB, bytes). */
export const TCPCOPY_DEFAULTS: Readonly<TcpcopyDefaults> = Object.freeze({
  channelPort: CHANNEL_DEFAULT_PORT,
  connections: 2,
  localhostIp: ENGINE_DEFAULTS.localhostIp,
  localhostIp6: ENGINE_DEFAULTS.localhostIp6,
  replicas: ENGINE_DEFAULTS.replicas,
  portOffset: ENGINE_DEFAULTS.portOffset,
  samplePercent: ENGINE_DEFAULTS.samplePercent,
  rampMs: ENGINE_DEFAULTS.rampMs,
  bufferMB: 16,
  snaplen: 65535,
  captureDelayMs: 10,
  accelerate: 1,
  idleGapMs: 0,
  maxGapMs: 3_600_000,
  repeats: 1,
  sessionTimeoutMs: ENGINE_DEFAULTS.sessionTimeoutMs,
  keepaliveTimeoutMs: ENGINE_DEFAULTS.keepaliveTimeoutMs,
  noWait: ENGINE_DEFAULTS.noWait,
  onlySyn: ENGINE_DEFAULTS.onlySyn,
  mss: ENGINE_DEFAULTS.mss,
  mtu: ENGINE_DEFAULTS.mtu,
  rtoMs: ENGINE_DEFAULTS.rtoInitialMs,
  delayedAckMs: ENGINE_DEFAULTS.delayedAckMs,
  nice: 0,
  memoryMB: 0,
  memoryBudgetMB: 'auto',
  sessionBacklogKB: 'auto',
  logFormat: 'text',
  statusIntervalMs: 5000,
  statusStyle: 'auto',
});

/** How long `-g` ramps the replayed share from 1% to `-r`, ms (the original's 100 s). */
export const RAMP_MS = 100_000;

/** The configuration of a command line that asks only for help or the version. */
export function defaultTcpcopyConfig(): TcpcopyConfig {
  const d: Omit<TcpcopyDefaults, 'channelPort'> & { channelPort?: number } = { ...TCPCOPY_DEFAULTS };
  delete d.channelPort; // not a config field: it is in each of `intercepts`
  return Object.freeze({
    ...d,
    transfers: [],
    intercepts: [],
    reconnect: false,
    secretFile: null,
    respPayload: false,
    module: null,
    compare: null,
    clientIps: [],
    input: null,
    offlineFile: null,
    offlineOptions: [],
    filter: null,
    sendDevice: null,
    logFile: null,
    pidFile: null,
    daemon: false,
    debug: false,
    reportFile: null,
    metrics: null,
    help: false,
    version: false,
  });
}
