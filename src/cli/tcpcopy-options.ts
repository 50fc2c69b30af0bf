/**
 * tcpcopy's options: one table that drives argv parsing (src/cli/option-table.ts, shared with
 * intercept), the help text and the doc/usage.md check. Letters and meanings are the original
 * TCPCopy's; every option also has a long name. Defaults come from TCPCOPY_DEFAULTS (src/config/).
 */
import { TCPCOPY_DEFAULTS } from '../config/tcpcopy-config';
import { type OptionSpec, optionHelpLines } from './option-table';
import { BUILTIN_MODULES, availableDefinitions } from '../modules/registry';
import type { ModuleDefinition } from '../modules/api';
import { compareOptionRows } from './compare-options';

/** Help groups of tcpcopy's options, in help order. */
export type TcpcopyOptionGroup =
  | 'Replay'
  | 'Traffic shaping'
  | 'Capture'
  | 'Offline'
  | 'Channel'
  | 'Session'
  | 'Modules'
  | 'Comparison'
  | 'Process and output';

const D = TCPCOPY_DEFAULTS;

/** The built-in modules present in this build, with their options (src/modules/registry.ts). */
export const MODULE_DEFINITIONS: readonly ModuleDefinition[] = availableDefinitions();

/** Long option name -> the built-in module that owns it (accepted only with that --module). */
export const MODULE_OPTION_OWNER: ReadonlyMap<string, string> = new Map(
  MODULE_DEFINITIONS.flatMap((d) => d.options.map((o) => [o.name, d.name] as const)),
);

/** Each built-in's options as rows of the option table (group Modules). */
function moduleOptionRows(): OptionSpec<TcpcopyOptionGroup>[] {
  return MODULE_DEFINITIONS.flatMap((d) =>
    d.options.map((o): OptionSpec<TcpcopyOptionGroup> => ({
      long: o.name,
      kind: 'string',
      group: 'Modules',
      arg: o.arg,
      ...(o.repeatable ? { multiple: true } : {}),
      doc: `${o.doc} (with --module ${d.name}${o.repeatable ? '; repeatable' : ''})`,
    })),
  );
}

export const TCPCOPY_OPTIONS: readonly OptionSpec<TcpcopyOptionGroup>[] = [
  {
    short: 'x',
    long: 'transfer',
    kind: 'string',
    group: 'Replay',
    arg: '[IP:]PORT-TIP:TPORT,...',
    doc: 'what to copy and where: online server port (optionally address) to target address:port; several targets of one port each get every session (own client ports); `@mac` parts with -o',
  },
  {
    short: 's',
    long: 'intercept',
    kind: 'string',
    group: 'Replay',
    arg: 'IP[:PORT],...',
    doc: "intercept servers that report the target's replies (port defaults to -p)",
  },
  {
    short: 'i',
    long: 'input',
    kind: 'string',
    group: 'Capture',
    arg: 'DEV|FILE|tcp://[HOST:]PORT|-',
    doc: 'a capture file (offline replay: pcap or pcapng), capture device(s), comma separated (live), tcp://[HOST:]PORT (listen for tcpcopy agent and pcap streams) or - (a pcap stream on stdin)',
    def: 'live, all devices (any)',
  },
  {
    long: 'offline',
    kind: 'string',
    group: 'Offline',
    arg: 'FILE',
    doc: 'replay this capture file (same as -i FILE when FILE exists)',
  },
  {
    short: 'F',
    long: 'filter',
    kind: 'string',
    group: 'Capture',
    arg: 'BPF',
    doc: 'capture filter (tcpdump syntax) for live capture',
    def: 'built from -x',
  },
  {
    short: 'B',
    long: 'buffer',
    kind: 'string',
    group: 'Capture',
    arg: 'MB',
    doc: 'capture ring size in MiB',
    def: String(D.bufferMB),
  },
  {
    long: 'capture-delay',
    kind: 'string',
    group: 'Capture',
    arg: 'MS',
    doc: 'longest a captured packet waits in the ring before tcpcopy wakes up to read it (1..1000): larger means fewer wake-ups and less CPU, but more replay lag',
    def: String(D.captureDelayMs),
  },
  {
    short: 'S',
    long: 'snaplen',
    kind: 'string',
    group: 'Capture',
    arg: 'BYTES',
    doc: 'bytes kept of each captured packet',
    def: String(D.snaplen),
  },
  {
    short: 'o',
    long: 'send-device',
    kind: 'string',
    group: 'Capture',
    arg: 'DEV',
    doc: 'send Ethernet frames on this device (needs @mac in -x) instead of raw IP',
  },
  {
    short: 'c',
    long: 'client-ip',
    kind: 'string',
    group: 'Traffic shaping',
    arg: 'LIST',
    doc: 'rewrite client addresses: IPs, a.b.c.x patterns (keep last octet), CIDR blocks or IPv6 prefixes (keep the low bits), comma separated',
  },
  {
    short: 'H',
    long: 'localhost-ip',
    kind: 'string',
    group: 'Traffic shaping',
    arg: 'IP[,IP6]',
    doc: 'replace loopback client addresses (127.0.0.0/8; ::1 with an IPv6 item) with IP before -c (traffic the online server got from itself)',
  },
  {
    short: 'n',
    long: 'replicas',
    kind: 'string',
    group: 'Traffic shaping',
    arg: 'N',
    doc: 'replay every session N times from distinct client ports (1..1023)',
    def: String(D.replicas),
  },
  {
    short: 'f',
    long: 'port-offset',
    kind: 'string',
    group: 'Traffic shaping',
    arg: 'N',
    doc: 'client port space of this instance when several tcpcopy replay to one target (0..63)',
    def: String(D.portOffset),
  },
  {
    short: 'r',
    long: 'rate',
    kind: 'string',
    group: 'Traffic shaping',
    arg: 'PERCENT',
    doc: 'replay this percentage of sessions (1..100), chosen by client ip:port hash',
    def: String(D.samplePercent),
  },
  {
    short: 'g',
    long: 'ramp',
    kind: 'boolean',
    group: 'Traffic shaping',
    doc: 'ramp the replayed share from 1% to -r over about 100 s',
  },
  {
    short: 'a',
    long: 'accelerate',
    kind: 'string',
    group: 'Offline',
    arg: 'N',
    doc: 'offline: replay N times faster than recorded (0 = as fast as possible)',
    def: String(D.accelerate),
  },
  {
    short: 'I',
    long: 'idle-gap',
    kind: 'string',
    group: 'Offline',
    arg: 'MS',
    doc: 'offline: skip idle gaps in the capture longer than MS',
    def: 'off',
  },
  {
    long: 'max-gap',
    kind: 'string',
    group: 'Offline',
    arg: 'SECONDS',
    doc: 'offline: a jump in recorded time longer than SECONDS (a corrupt timestamp) is reported and skipped as with -I; 0 = wait for any gap',
    def: String(D.maxGapMs / 1000),
  },
  {
    short: 'T',
    long: 'repeat',
    kind: 'string',
    group: 'Offline',
    arg: 'N',
    doc: 'offline: replay the file N times (repetitions use distinct client ports)',
    def: String(D.repeats),
  },
  {
    short: 'p',
    long: 'port',
    kind: 'string',
    group: 'Channel',
    arg: 'PORT',
    doc: 'intercept channel port',
    def: String(D.channelPort),
  },
  {
    short: 'C',
    long: 'connections',
    kind: 'string',
    group: 'Channel',
    arg: 'N',
    doc: 'connections to each intercept (1..11)',
    def: String(D.connections),
  },
  {
    long: 'secret-file',
    kind: 'string',
    group: 'Channel',
    arg: 'FILE',
    doc: 'channel v2: authenticate with the shared secret in FILE (intercept needs the same --secret-file)',
  },
  {
    long: 'resp-payload',
    kind: 'boolean',
    group: 'Channel',
    doc: '1.x channel: intercept sends 192-byte records with reply payloads of 1..128 bytes (the original built --with-resp-payload; ours with --payload); module sessions read them',
  },
  {
    short: 'L',
    long: 'reconnect',
    kind: 'boolean',
    group: 'Channel',
    doc: 'keep running while an intercept is away (it is always reconnected; without -L tcpcopy stops after 10 s without it)',
  },
  {
    short: 't',
    long: 'session-timeout',
    kind: 'string',
    group: 'Session',
    arg: 'S',
    doc: 'end a session idle this many seconds with data pending',
    def: String(D.sessionTimeoutMs / 1000),
  },
  {
    short: 'k',
    long: 'keepalive-timeout',
    kind: 'string',
    group: 'Session',
    arg: 'S',
    doc: 'end an idle session whose captured data was all replayed after this many seconds',
    def: String(D.keepaliveTimeoutMs / 1000),
  },
  {
    short: 'W',
    long: 'no-wait',
    kind: 'boolean',
    group: 'Session',
    doc: 'do not wait for the response before sending the next request',
  },
  {
    short: 'O',
    long: 'only-syn',
    kind: 'boolean',
    group: 'Session',
    doc: 'replay only sessions whose SYN was captured',
  },
  {
    short: 'D',
    long: 'mss',
    kind: 'string',
    group: 'Session',
    arg: 'BYTES',
    doc: 'MSS announced in synthesized SYNs',
    def: String(D.mss),
  },
  {
    short: 'M',
    long: 'mtu',
    kind: 'string',
    group: 'Session',
    arg: 'BYTES',
    doc: 'MTU toward the target; larger segments are split',
    def: String(D.mtu),
  },
  {
    long: 'delayed-ack',
    kind: 'string',
    group: 'Session',
    arg: 'MS',
    doc: 'the ACK for the end of a reply (PSH) waits up to MS for the next request to carry it (0 = acknowledge every batch at once)',
    def: String(D.delayedAckMs),
  },
  {
    short: 'R',
    long: 'rtt',
    kind: 'string',
    group: 'Session',
    arg: 'MS',
    doc: 'initial retransmission timeout',
    def: String(D.rtoMs),
  },
  {
    long: 'module',
    kind: 'string',
    group: 'Modules',
    arg: 'NAME|PATH',
    doc: `replay every session through a protocol module: a built-in (${BUILTIN_MODULES.join(', ')}) or a module file exporting createModule (doc/modules.md)`,
    def: 'none',
  },
  {
    long: 'module-opt',
    kind: 'string',
    group: 'Modules',
    arg: 'KEY=VALUE',
    multiple: true,
    doc: "an option for a module file's createModule (repeatable; a built-in takes its own options below)",
  },
  ...moduleOptionRows(),
  ...compareOptionRows<TcpcopyOptionGroup>('Comparison'),
  {
    long: 'nice',
    kind: 'string',
    group: 'Process and output',
    arg: 'N',
    doc: 'scheduling niceness (-20..19) of tcpcopy: 10-19 lets the production service on the same host go first',
    def: String(D.nice),
  },
  {
    short: 'm',
    long: 'memory',
    kind: 'string',
    group: 'Process and output',
    arg: 'MB',
    doc: 'stop cleanly when the resident memory exceeds this',
    def: 'off',
  },
  {
    long: 'memory-budget',
    kind: 'string',
    group: 'Process and output',
    arg: 'MB',
    doc: 'at this resident memory, stop replaying new connections (lost as overload) until it falls under 85%; 0 = never; auto = 110 when capturing from this host (256 with --module or --compare, plus --compare-memory-max with --compare), off otherwise',
    def: 'auto',
  },
  {
    long: 'session-backlog',
    kind: 'string',
    group: 'Process and output',
    arg: 'KiB',
    doc: 'a session holding more captured data than this waiting for the target is ended, its requests lost as backlog; 0 or off = never; auto = 1024 when capturing from this host (16384 with --module or --compare), off otherwise',
    def: 'auto',
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
    doc: 'run in the background (use with -l)',
  },
  {
    long: 'log-format',
    kind: 'string',
    group: 'Process and output',
    arg: 'text|json',
    doc: 'log line format',
    def: D.logFormat,
  },
  { long: 'debug', kind: 'boolean', group: 'Process and output', doc: 'debug logging' },
  {
    long: 'report',
    kind: 'string',
    group: 'Process and output',
    arg: 'json:FILE',
    doc: 'also write the final report as JSON to FILE (`--report json:FILE`, `--report json FILE` or `--report FILE`)',
  },
  {
    long: 'status',
    kind: 'string',
    group: 'Process and output',
    arg: 'S',
    doc: 'seconds between status lines (0 = none)',
    def: String(D.statusIntervalMs / 1000),
  },
  {
    long: 'status-style',
    kind: 'string',
    group: 'Process and output',
    arg: 'auto|line|plain',
    doc: 'status as one refreshing terminal line (every second, with a progress bar and ETA offline) or as plain log lines every --status S; auto: line when stderr is a terminal',
    def: D.statusStyle,
  },
  {
    long: 'metrics',
    kind: 'string',
    group: 'Process and output',
    arg: 'HOST:PORT',
    doc: 'serve Prometheus metrics at http://HOST:PORT/metrics (binds only that address)',
    def: 'off',
  },
  { short: 'h', long: 'help', kind: 'boolean', group: 'Process and output', doc: 'show this help' },
  { short: 'v', long: 'version', kind: 'boolean', group: 'Process and output', doc: 'show the version' },
];

/** The help text, grouped, with original letters, long names, units and defaults. */
export function helpText(version: string): string {
  const lines = [
    `tcpcopy ${version}: replay live or recorded TCP traffic to a test server, as the original clients`,
    '',
    'usage: tcpcopy -x PORT-TARGET_IP:TPORT -s INTERCEPT_IP [options]          (live)',
    '       tcpcopy -i FILE.pcap -x PORT-TARGET_IP:TPORT -s INTERCEPT_IP [options] (offline)',
    '       tcpcopy -i tcp://PORT -x PORT-TARGET_IP:TPORT -s INTERCEPT_IP [options] (replay what agents stream)',
    '       tcpcopy agent -x PORT --to REPLAY_HOST:PORT   capture only, on a production host (tcpcopy agent -h)',
    '       tcpcopy inspect FILE [-x ...] [--json]        what a replay of FILE would do',
    '       tcpcopy doctor -x ... -s ... [--client IP]    check the setup end to end (probe SYN through intercept)',
    '       tcpcopy lab up|run|down|status [options]      a network-namespace lab with real servers to try options in',
    '       tcpcopy compare-report DIR                    render DIR/report.html again from a --compare-out directory',
    '',
  ];
  lines.push(...optionHelpLines(TCPCOPY_OPTIONS));
  return lines.join('\n');
}
