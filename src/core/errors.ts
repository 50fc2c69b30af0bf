/**
 * One error class for everything a user can get wrong (options, files, permissions, setup),
 * one registry of its codes and the exit statuses of the programs. `code` is stable and
 * matchable (like Node's ERR_* codes; the programs print it as `[ERR_...]` at the end of the
 * line); the message names the option or file, the offending value and the fix. Bad packets
 * from the wire never throw: parsers return a reason that becomes a counter.
 * doc/errors.md lists the same codes and statuses (a unit test keeps them in step).
 */

/** Every error code, with its meaning. */
export const ERROR_CODES = {
  // the command line (exit status EXIT_USAGE)
  ERR_BAD_OPTION:
    'an option or its value is wrong or missing; the message names the option, the value and the form expected',
  ERR_BAD_TRANSFER: '-x is not [onlineIP:]onlinePort[@mac]-targetIP:targetPort[@mac],...',
  ERR_BAD_CLIENT_IP: '-c is not a list of usable IPv4 addresses, a.b.c.x patterns or CIDR blocks',
  ERR_BAD_MAC: 'a MAC address (the @mac parts of -x) is not aa:bb:cc:dd:ee:ff',
  ERR_BAD_FILTER: 'the capture filter (-F) does not compile',
  // files named on the command line
  ERR_LOG_FILE: 'the log file (-l) cannot be opened for appending',
  ERR_PID_FILE: 'the pid file (-P) cannot be written',
  ERR_SECRET_FILE: 'the shared secret file (--secret-file) cannot be read or is unusable',
  ERR_REPORT_FILE: 'the JSON report file (--report json:FILE) cannot be written (checked at start-up)',
  ERR_MODULE:
    'the protocol module (--module) cannot be loaded, is not a valid module, refused its options, or an option file cannot be read',
  // the process
  ERR_PRIORITY: 'the scheduling priority (--nice) cannot be set (a negative niceness needs root)',
  // permissions, devices, the native addon
  ERR_NO_RAW_PERMISSION: 'raw sockets or packet capture need root (CAP_NET_RAW, CAP_NET_ADMIN)',
  ERR_NO_DEVICE: 'a network device (-i, -o) does not exist',
  ERR_BAD_DEVICE: 'the output device (-o) is not an Ethernet device',
  ERR_SEND_OPEN: 'the raw send socket cannot be opened',
  ERR_PACKET_TOO_BIG: 'a packet is larger than the send buffer',
  ERR_NATIVE_MISSING: 'the native addon (build/Release/*.node) is not built',
  ERR_NFQUEUE: 'intercept --nfqueue cannot bind or read the netfilter queue',
  ERR_METRICS_LISTEN: 'the metrics endpoint (--metrics) cannot listen on its address',
  // the channel between tcpcopy and intercept
  ERR_INTERCEPT_UNREACHABLE: 'tcpcopy cannot connect to an intercept (-s)',
  ERR_CHANNEL_AUTH: 'channel v2: the intercept refused the shared secret, or did not answer the handshake',
  ERR_CHANNEL_LISTEN: 'intercept cannot listen on its channel address (-b, -p)',
  ERR_STREAM_LISTEN: 'the replayer cannot listen on its stream address (-i tcp://[HOST:]PORT)',
  // capture files and live capture
  ERR_CAPTURE_OPEN: 'a capture file or the live capture ring cannot be opened',
  ERR_CAPTURE_FORMAT: 'the file is neither pcap nor pcapng',
  ERR_CAPTURE_TRUNCATED: 'the capture file ends in the middle of a header or record',
  ERR_CAPTURE_CORRUPT: 'the capture file has a damaged block; reading stopped there',
  ERR_CAPTURE_READ: 'reading the capture file failed (an OS error)',
  ERR_CAPTURE_CLOSED: 'a capture file was written after it was closed',
  // the lab (tcpcopy lab, npm run demo, the end-to-end tests)
  ERR_LAB_ROOT: 'the lab needs root (network namespaces)',
  ERR_LAB_PREFIX: 'the lab name prefix is not 1..N characters of [a-z0-9]',
  ERR_LAB_OPTION: 'a lab setting is out of range',
  ERR_LAB_SETUP: 'the lab topology is incomplete',
  ERR_LAB_HOST: 'the lab has no host of that name',
  ERR_LAB_DOWN: 'the lab was already taken down',
  ERR_LAB_EXEC: 'a lab program cannot be started',
  ERR_LAB_COMMAND: 'a lab command exited with a non-zero status',
  ERR_LAB_TIMEOUT: 'a lab command did not finish in time',
  ERR_LAB_START: 'a lab server did not start (its output tail is in the message)',
  ERR_LAB_LOAD: 'the lab load generator failed',
  ERR_LAB_LOAD_OPTION: 'a load generator option is out of range',
} as const;

/** A registered error code; TcpcopyError accepts no other. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** The codes that mean "the command line is wrong": the programs exit with EXIT_USAGE for them. */
export const USAGE_ERROR_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'ERR_BAD_OPTION',
  'ERR_BAD_TRANSFER',
  'ERR_BAD_CLIENT_IP',
  'ERR_BAD_MAC',
  'ERR_BAD_FILTER',
]);

/** Whether a string is a registered error code (e.g. one read back from a JSON report). */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_CODES, code);
}

/** Exit statuses of tcpcopy, intercept and their subcommands (doc/errors.md). */
export const EXIT = Object.freeze({
  /** Done: the replay or the check finished; an offline replay read its file to the end. */
  OK: 0,
  /**
   * Failed: could not start (permissions, devices, intercept unreachable, files), stopped by a
   * failure (an intercept away for 10 s without -L), a capture file that could not be read to
   * its end (missing, not a capture, truncated, corrupt: the records before the damage are
   * replayed and reported), or a doctor check that blocks replay.
   */
  FAILURE: 1,
  /** The command line is wrong (one of USAGE_ERROR_CODES; nothing was started). */
  USAGE: 2,
  /** tcpcopy stopped because the resident memory passed `-m`. */
  MEMORY: 3,
} as const);

/** One of the exit statuses in EXIT. */
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export class TcpcopyError extends Error {
  override readonly name = 'TcpcopyError';
  constructor(
    /** Stable code from ERROR_CODES, e.g. 'ERR_BAD_TRANSFER', 'ERR_CAPTURE_TRUNCATED', 'ERR_NO_RAW_PERMISSION'. */
    readonly code: ErrorCode,
    message: string,
    /** Extra facts (file, offset, option...) for JSON logs and tests. */
    readonly details: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
  }
}

/** The exit status for an error that stopped a program at start-up. */
export function exitCodeFor(e: unknown): ExitCode {
  return e instanceof TcpcopyError && USAGE_ERROR_CODES.has(e.code) ? EXIT.USAGE : EXIT.FAILURE;
}
