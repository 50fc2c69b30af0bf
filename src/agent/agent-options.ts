/**
 * `tcpcopy agent`'s command line: the option table (driving parsing, help and the doc/usage.md
 * check, as tcpcopy's and intercept's do) and its parse into a frozen AgentConfig. Loads only
 * the option machinery: the agent runs on production hosts and must stay small.
 */
import * as os from 'node:os';
import { TcpcopyError } from '../core/errors';
import {
  badOption,
  choiceArg,
  intArg,
  numArg,
  optionError,
  type OptionSpec,
  optionHelpLines,
  parseOptionTable,
} from '../cli/option-table';

/** One replayer the agent streams to. */
export interface AgentDestination {
  /** Host name or address. */
  host: string;
  /** TCP port. */
  port: number;
}

/** The agent's validated settings. */
export interface AgentConfig {
  help: boolean;
  version: boolean;
  /** Online ports (-x), optionally with an online address: the client->server packets captured. */
  ports: ReadonlyArray<{ ip: string | null; port: number }>;
  /** Replayers (--to), in order; with several, connections are sharded by client address and port. */
  to: readonly AgentDestination[];
  /** Capture device (-i), 'any' = all. */
  device: string;
  /** BPF filter (-F); null = built from -x (`tcp and (dst port P or ...)`). */
  filter: string | null;
  /** --secret-file: authenticate with the channel v2 scheme; null = none. */
  secretFile: string | null;
  /** -B: ring size, MiB. */
  bufferMB: number;
  /** -S: bytes kept of each packet. */
  snaplen: number;
  /**
   * --capture-delay: ring block timeout, ms (the agent wakes at most this late; the replay lags
   * by up to it). Default 20: at moderate loads the agent wakes once per delay, and each wake-up
   * (one send per replayer) is most of its CPU; 20 ms keeps the replay lag p99 under 25 ms.
   */
  captureDelayMs: number;
  /** --name: the agent's name in the replayer's report (first 16 bytes). */
  name: string;
  /** --status: seconds between status lines (0 = none). */
  statusIntervalMs: number;
  /** -l: log file; null = stderr. */
  logFile: string | null;
  /** --log-format. */
  logFormat: 'text' | 'json';
  /** -P: pid file. */
  pidFile: string | null;
  /** -d: run in the background. */
  daemon: boolean;
  /** --nice. */
  nice: number;
}

/** The agent's defaults (also shown in the help and doc/usage.md). */
export const AGENT_DEFAULTS = Object.freeze({
  device: 'any',
  bufferMB: 2,
  snaplen: 65535,
  captureDelayMs: 20,
  statusIntervalMs: 10_000,
  nice: 0,
  logFormat: 'text' as const,
});

/** Default replayer port (`--to HOST` without a port). */
export const AGENT_DEFAULT_PORT = 36525;

type Group = 'Agent' | 'Capture' | 'Process and output';
const D = AGENT_DEFAULTS;

export const AGENT_OPTIONS: readonly OptionSpec<Group>[] = [
  {
    short: 'x',
    long: 'ports',
    kind: 'string',
    group: 'Agent',
    arg: '[IP:]PORT,...',
    doc: 'online server ports (optionally with the online address) whose client->server packets are streamed',
  },
  {
    long: 'to',
    kind: 'string',
    group: 'Agent',
    arg: 'HOST[:PORT],...',
    doc: `replayers (tcpcopy -i tcp://PORT); several: each gets whole connections, by client address and port (port defaults to ${AGENT_DEFAULT_PORT})`,
  },
  {
    long: 'secret-file',
    kind: 'string',
    group: 'Agent',
    arg: 'FILE',
    doc: 'authenticate to the replayers with the shared secret in FILE (channel v2 scheme; the replayer needs the same file)',
  },
  {
    long: 'name',
    kind: 'string',
    group: 'Agent',
    arg: 'NAME',
    doc: "this agent's name in the replayer's report (16 bytes)",
    def: 'the host name',
  },
  {
    short: 'i',
    long: 'device',
    kind: 'string',
    group: 'Capture',
    arg: 'DEV',
    doc: 'capture device',
    def: D.device,
  },
  {
    short: 'F',
    long: 'filter',
    kind: 'string',
    group: 'Capture',
    arg: 'BPF',
    doc: 'capture filter (tcpdump syntax)',
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
    short: 'S',
    long: 'snaplen',
    kind: 'string',
    group: 'Capture',
    arg: 'BYTES',
    doc: 'bytes kept of each packet',
    def: String(D.snaplen),
  },
  {
    long: 'capture-delay',
    kind: 'string',
    group: 'Capture',
    arg: 'MS',
    doc: 'longest a packet waits in the ring before the agent wakes to send it (1..1000): larger means fewer wake-ups (less CPU), more replay lag',
    def: String(D.captureDelayMs),
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
    short: 'l',
    long: 'log',
    kind: 'string',
    group: 'Process and output',
    arg: 'FILE',
    doc: 'append the log to FILE',
    def: 'stderr',
  },
  {
    long: 'log-format',
    kind: 'string',
    group: 'Process and output',
    arg: 'text|json',
    doc: 'log line format',
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
    doc: 'run in the background (use with -l)',
  },
  {
    long: 'nice',
    kind: 'string',
    group: 'Process and output',
    arg: 'N',
    doc: 'scheduling niceness (-20..19)',
    def: String(D.nice),
  },
  { short: 'h', long: 'help', kind: 'boolean', group: 'Process and output', doc: 'show this help' },
  { short: 'v', long: 'version', kind: 'boolean', group: 'Process and output', doc: 'show the version' },
];

/** The agent's help text. */
export function agentHelpText(version: string): string {
  return [
    `tcpcopy agent ${version}: capture client->server packets on a production host and stream them to replayers`,
    '',
    'usage: tcpcopy agent -x PORT[,PORT...] --to HOST:PORT[,HOST:PORT...] [-i DEV] [-F BPF] [--secret-file FILE]',
    '       (on the replay host: tcpcopy -i tcp://PORT -x PORT-TARGET:TPORT -s INTERCEPT)',
    '',
    ...optionHelpLines(AGENT_OPTIONS),
  ].join('\n');
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

function parsePorts(text: string): Array<{ ip: string | null; port: number }> {
  const out: Array<{ ip: string | null; port: number }> = [];
  for (const raw of text.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d{1,5})$/.exec(item);
    const port = Number(m?.[2]);
    if (m === null || port < 1 || port > 65535)
      throw badOption('-x', text, '[IP:]PORT,... e.g. -x 80 or -x 198.18.0.1:80,443');
    out.push({ ip: m[1] ?? null, port });
  }
  if (out.length === 0) throw badOption('-x', text, 'at least one port');
  return out;
}

function parseTo(text: string): AgentDestination[] {
  const out: AgentDestination[] = [];
  for (const raw of text.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const m = /^([A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(item);
    const port = m?.[2] !== undefined ? Number(m[2]) : AGENT_DEFAULT_PORT;
    if (m === null || port < 1 || port > 65535)
      throw badOption('--to', text, 'HOST[:PORT],... e.g. --to 198.18.0.5:36525');
    out.push({ host: m[1] as string, port });
  }
  if (out.length === 0) throw badOption('--to', text, 'at least one replayer');
  if (out.length > 32) throw optionError('--to', text, 'at most 32 replayers');
  return out;
}

function fileArg(flag: string, text: string | undefined): string | null {
  if (text === '') throw badOption(flag, "''", 'a file name');
  return text ?? null;
}

/** The BPF filter the agent uses without -F: the client->server TCP packets of the -x ports. */
export function agentFilter(ports: AgentConfig['ports']): string {
  const parts = ports.map((p) => (p.ip !== null ? `(dst host ${p.ip} and dst port ${p.port})` : `dst port ${p.port}`));
  return `tcp and (${[...new Set(parts)].join(' or ')})`;
}

/** Parses the agent's argv (after `agent`) into a frozen config; throws TcpcopyError. */
export function parseAgentArgs(argv: readonly string[]): AgentConfig {
  const o = parseOptionTable('tcpcopy agent', AGENT_OPTIONS, argv);
  const help = o.bool('help');
  const version = o.bool('version');
  const xText = o.str('ports');
  const toText = o.str('to');
  if (!help && !version && xText === undefined)
    throw new TcpcopyError('ERR_BAD_OPTION', '-x is required: the online ports to stream, e.g. -x 80', {
      option: '-x',
    });
  if (!help && !version && toText === undefined)
    throw new TcpcopyError('ERR_BAD_OPTION', '--to is required: the replayer(s), e.g. --to 198.18.0.5:36525', {
      option: '--to',
    });
  const device = o.str('device') ?? D.device;
  if (device.includes(',')) throw optionError('-i', device, 'the agent captures on one device (or any)');
  const name = o.str('name') ?? os.hostname();
  return Object.freeze({
    help,
    version,
    ports: xText === undefined ? [] : parsePorts(xText),
    to: toText === undefined ? [] : parseTo(toText),
    device,
    filter: o.str('filter') ?? null,
    secretFile: fileArg('--secret-file', o.str('secret-file')),
    bufferMB: intArg('-B', o.str('buffer'), D.bufferMB, 1, 4096),
    snaplen: intArg('-S', o.str('snaplen'), D.snaplen, 64, 262144),
    captureDelayMs: intArg('--capture-delay', o.str('capture-delay'), D.captureDelayMs, 1, 1000),
    name,
    statusIntervalMs: numArg('--status', o.str('status'), D.statusIntervalMs / 1000, 0, 86400) * 1000,
    logFile: fileArg('-l', o.str('log')),
    logFormat: choiceArg('--log-format', o.str('log-format'), D.logFormat, ['text', 'json']),
    pidFile: fileArg('-P', o.str('pidfile')),
    daemon: o.bool('daemon'),
    nice: intArg('--nice', o.str('nice'), D.nice, -20, 19),
  });
}

/** Whether `host` is an IPv4 address literal. */
export function isIpv4(host: string): boolean {
  return IPV4.test(host);
}
