/**
 * `tcpcopy inspect FILE [-x TRANSFERS] [--json]`: reads a capture and says what an offline
 * replay of it would do: packets and link types per interface, decode results, TCP
 * sessions per transfer (with/without a captured SYN, request-carrying segments, sessions
 * seen closing), the time span, and damaged records. Memory is bounded by the session table.
 */
import { TcpcopyError } from '../core/errors';
import { decodeFrame, payloadCaptured, type DecodeStatus } from '../core/wire/decode';
import { ipToString, newSegment, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../core/wire/segment';
import { CaptureFileReader, type CaptureRecordReceiver } from '../io/capture-file/reader';
import { parseTransferList, type Transfer } from './transfer';

const USAGE = 'usage: tcpcopy inspect FILE [-x [onlineIP:]onlinePort-targetIP:targetPort[,...]] [--json]';
const STATUSES: readonly DecodeStatus[] = [
  'ok',
  'unknown-link',
  'not-ipv4',
  'ipv6',
  'truncated',
  'bad-ip-header',
  'fragment',
  'not-tcp',
  'bad-tcp-header',
  'address-table-full',
];
const LINK_NAMES: Readonly<Record<number, string>> = {
  0: 'NULL',
  1: 'ETHERNET',
  12: 'RAW',
  14: 'RAW',
  101: 'RAW',
  113: 'LINUX_SLL',
  228: 'IPV4',
  229: 'IPV6',
  276: 'LINUX_SLL2',
};

/** One TCP connection (4-tuple), endpoints in canonical order (a = smaller ip:port). */
interface Conn {
  aIp: number;
  aPort: number;
  bIp: number;
  bPort: number;
  /** Server side: 0 undecided, 1 = a, 2 = b (from -x, or from a pure SYN's receiver). */
  server: number;
  /** Side that sent a SYN+ACK (fallback when no SYN was captured): 0, 1 = a, 2 = b. */
  synAckFrom: number;
  sessions: number;
  synSessions: number;
  closing: number;
  closedCur: boolean;
  synSeen: boolean;
  synSeq: number;
  /** Index 0: a->b, 1: b->a. */
  pkts: [number, number];
  data: [number, number];
  dataBytes: [number, number];
  dataCut: [number, number];
}

/** Per server ip:port summary (what the report prints). */
export interface TransferSummary {
  /** "ip:port" of the server side. */
  server: string;
  /** Sessions (client ip:port -> server ip:port; a new SYN on a reused 4-tuple starts another). */
  sessions: number;
  sessionsWithSyn: number;
  sessionsWithoutSyn: number;
  /** Client->server segments carrying payload (what a replay sends as requests). */
  requestSegments: number;
  /** Their payload bytes (by IP total length). */
  requestBytes: number;
  /** Request segments whose payload the snaplen cut (a replay cannot send those bytes). */
  requestSegmentsCut: number;
  /** Sessions in which a FIN or RST was seen. */
  sessionsClosing: number;
  clientPackets: number;
  serverPackets: number;
}

/** Collects the statistics; a CaptureRecordReceiver fed by CaptureFileReader. */
export class CaptureInspector implements CaptureRecordReceiver {
  /** Packet records per interface index, and those skipped for an unknown link type. */
  readonly perIf: number[] = [];
  readonly unknownPerIf: number[] = [];
  readonly decode: Record<DecodeStatus, number> = Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<
    DecodeStatus,
    number
  >;
  packets = 0;
  firstTs = Infinity;
  lastTs = -Infinity;
  /** TCP packets matching no -x transfer. */
  outside = 0;
  private readonly seg = newSegment();
  private readonly conns = new Map<number, Map<number, Conn>>();
  private readonly xPort: number[];
  private readonly xIp: number[];

  constructor(transfers: readonly Transfer[] | null) {
    this.xPort = transfers ? transfers.map((t) => t.onlinePort) : [];
    this.xIp = transfers ? transfers.map((t) => t.onlineIp) : [];
  }

  private isOnline(ip: number, port: number): boolean {
    for (let i = 0; i < this.xPort.length; i++) {
      if (this.xPort[i] === port && (this.xIp[i] === 0 || this.xIp[i] === ip)) return true;
    }
    return false;
  }

  packet(
    linkType: number,
    buf: Buffer,
    off: number,
    capLen: number,
    _origLen: number,
    tsMs: number,
    ifIndex: number,
  ): void {
    this.packets++;
    this.perIf[ifIndex] = (this.perIf[ifIndex] ?? 0) + 1;
    if (tsMs < this.firstTs) this.firstTs = tsMs;
    if (tsMs > this.lastTs) this.lastTs = tsMs;
    const st = decodeFrame(linkType, buf, off, capLen, this.seg);
    this.decode[st]++;
    if (st === 'unknown-link') this.unknownPerIf[ifIndex] = (this.unknownPerIf[ifIndex] ?? 0) + 1;
    if (st === 'ok') this.tcp();
  }

  private tcp(): void {
    const s = this.seg;
    let server = 0; // 1 = source is the server, 2 = destination is
    if (this.xPort.length > 0) {
      const src = this.isOnline(s.srcIp, s.srcPort);
      const dst = this.isOnline(s.dstIp, s.dstPort);
      if (!src && !dst) {
        this.outside++;
        return;
      }
      server = src && dst ? 0 : src ? 1 : 2;
    }
    const kSrc = s.srcIp * 65536 + s.srcPort;
    const kDst = s.dstIp * 65536 + s.dstPort;
    const srcIsA = kSrc <= kDst;
    const k1 = srcIsA ? kSrc : kDst;
    const k2 = srcIsA ? kDst : kSrc;
    let inner = this.conns.get(k1);
    if (!inner) {
      inner = new Map();
      this.conns.set(k1, inner);
    }
    let c = inner.get(k2);
    if (!c) {
      c = {
        aIp: srcIsA ? s.srcIp : s.dstIp,
        aPort: srcIsA ? s.srcPort : s.dstPort,
        bIp: srcIsA ? s.dstIp : s.srcIp,
        bPort: srcIsA ? s.dstPort : s.srcPort,
        server: 0,
        synAckFrom: 0,
        sessions: 1,
        synSessions: 0,
        closing: 0,
        closedCur: false,
        synSeen: false,
        synSeq: 0,
        pkts: [0, 0],
        data: [0, 0],
        dataBytes: [0, 0],
        dataCut: [0, 0],
      };
      inner.set(k2, c);
    }
    const dir = srcIsA ? 0 : 1; // 0: a->b
    const srcSide = srcIsA ? 1 : 2;
    const dstSide = srcIsA ? 2 : 1;
    if (server !== 0 && c.server === 0) c.server = server === 1 ? srcSide : dstSide;
    const syn = (s.flags & TCP_SYN) !== 0;
    const ack = (s.flags & TCP_ACK) !== 0;
    if (syn && !ack) {
      const first = c.pkts[0] + c.pkts[1] === 0;
      if (first) {
        c.synSessions = 1;
      } else if (!c.synSeen || s.seq !== c.synSeq) {
        c.sessions++;
        c.synSessions++;
        c.closedCur = false;
      }
      c.synSeen = true;
      c.synSeq = s.seq;
      if (c.server === 0) c.server = dstSide;
    } else if (syn && ack && c.synAckFrom === 0) {
      c.synAckFrom = srcSide;
    }
    if ((s.flags & (TCP_FIN | TCP_RST)) !== 0 && !c.closedCur) {
      c.closedCur = true;
      c.closing++;
    }
    c.pkts[dir]++;
    if (s.payloadLen > 0) {
      c.data[dir]++;
      c.dataBytes[dir] += s.payloadLen;
      if (payloadCaptured(s) < s.payloadLen) c.dataCut[dir]++;
    }
  }

  /** Per-transfer summaries, sorted by server address. */
  transfers(): TransferSummary[] {
    const by = new Map<string, TransferSummary>();
    for (const inner of this.conns.values()) {
      for (const c of inner.values()) {
        const side = c.server !== 0 ? c.server : c.synAckFrom !== 0 ? c.synAckFrom : c.aPort < c.bPort ? 1 : 2;
        const key = side === 1 ? `${ipToString(c.aIp)}:${c.aPort}` : `${ipToString(c.bIp)}:${c.bPort}`;
        const toServer = side === 1 ? 1 : 0; // direction index of client->server packets
        let t = by.get(key);
        if (!t) {
          t = {
            server: key,
            sessions: 0,
            sessionsWithSyn: 0,
            sessionsWithoutSyn: 0,
            requestSegments: 0,
            requestBytes: 0,
            requestSegmentsCut: 0,
            sessionsClosing: 0,
            clientPackets: 0,
            serverPackets: 0,
          };
          by.set(key, t);
        }
        t.sessions += c.sessions;
        t.sessionsWithSyn += c.synSessions;
        t.sessionsWithoutSyn += c.sessions - c.synSessions;
        t.requestSegments += c.data[toServer];
        t.requestBytes += c.dataBytes[toServer];
        t.requestSegmentsCut += c.dataCut[toServer];
        t.sessionsClosing += c.closing;
        t.clientPackets += c.pkts[toServer];
        t.serverPackets += c.pkts[1 - toServer] ?? 0;
      }
    }
    return [...by.values()].sort((x, y) => (x.server < y.server ? -1 : x.server > y.server ? 1 : 0));
  }
}

interface InspectArgs {
  file: string;
  transfers: Transfer[] | null;
  json: boolean;
  help: boolean;
}

function parseArgs(argv: string[]): InspectArgs {
  let file: string | null = null;
  let transfers: Transfer[] | null = null;
  let json = false;
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--json') json = true;
    else if (a === '-h' || a === '--help') help = true;
    else if (a === '-x' || a === '--transfer') {
      const v = argv[++i];
      if (v === undefined) throw new TcpcopyError('ERR_BAD_OPTION', `${a} needs a value; ${USAGE}`, { option: a });
      transfers = [...(transfers ?? []), ...parseTransferList(v)];
    } else if (a.startsWith('--transfer=')) transfers = [...(transfers ?? []), ...parseTransferList(a.slice(11))];
    else if (a.startsWith('-x')) transfers = [...(transfers ?? []), ...parseTransferList(a.slice(2))];
    else if (a.startsWith('-') && a !== '-')
      throw new TcpcopyError('ERR_BAD_OPTION', `unknown option ${a}; ${USAGE}`, { option: a });
    else if (file === null) file = a;
    else
      throw new TcpcopyError(
        'ERR_BAD_OPTION',
        `only one capture file can be inspected (got ${file} and ${a}); ${USAGE}`,
        { value: a },
      );
  }
  if (file === null && !help) throw new TcpcopyError('ERR_BAD_OPTION', `no capture file given; ${USAGE}`, {});
  return { file: file ?? '', transfers, json, help };
}

function linkName(lt: number, unknown: number): string {
  const n = LINK_NAMES[lt];
  return unknown > 0 || n === undefined ? 'unknown' : n;
}

/** Largest |ms since 1970| a Date can hold (ECMA-262: 8.64e15 ms, about 273,790 years). */
const MAX_DATE_MS = 8.64e15;

/**
 * ISO text of a timestamp (ms since 1970); a corrupt or far-off one (outside what a Date can
 * hold) as "out of range (S s since 1970)", so a hostile capture never crashes the report.
 */
export function iso(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  if (Math.abs(ms) > MAX_DATE_MS) return `out of range (${ms / 1000} s since 1970)`;
  return new Date(ms).toISOString();
}

/** Left-aligned text table. */
function table(rows: string[][]): string {
  const w: number[] = [];
  for (const r of rows)
    r.forEach((c, i) => {
      w[i] = Math.max(w[i] ?? 0, c.length);
    });
  return (
    rows
      .map(
        (r) =>
          '  ' +
          r
            .map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i] ?? 0)))
            .join('  ')
            .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

/**
 * Runs `tcpcopy inspect`. `argv` = the words after `inspect`. Writes the report to `out`.
 * Returns the exit code: 0 file read to its end (damaged records may have been skipped),
 * 1 the file could not be opened or reading stopped early (fatal damage), 2 bad usage.
 */
export async function runInspect(argv: string[], out: NodeJS.WritableStream): Promise<number> {
  let args: InspectArgs;
  try {
    args = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof TcpcopyError)) throw e;
    out.write(`tcpcopy inspect: ${e.message}\n`);
    return 2;
  }
  if (args.help) {
    out.write(`${USAGE}\n`);
    return 0;
  }
  let reader: CaptureFileReader;
  try {
    reader = await CaptureFileReader.open(args.file);
  } catch (e) {
    if (!(e instanceof TcpcopyError)) throw e;
    if (args.json) out.write(JSON.stringify({ file: args.file, error: { code: e.code, message: e.message } }) + '\n');
    else out.write(`tcpcopy inspect: ${e.message}\n`);
    return 1;
  }
  const ins = new CaptureInspector(args.transfers);
  try {
    while (await reader.readBatch(ins, 4096)) {
      /* keep reading */
    }
  } finally {
    await reader.close();
  }
  const transfers = ins.transfers();
  const fatal = reader.fatal;
  const ifaces = reader.interfaces.map((f, i) => ({
    index: i,
    linkType: f.linkType,
    linkTypeName: linkName(f.linkType, ins.unknownPerIf[i] ?? 0),
    snaplen: f.snaplen,
    name: f.name,
    section: f.section,
    packets: ins.perIf[i] ?? 0,
    skippedUnknownLink: ins.unknownPerIf[i] ?? 0,
  }));
  const sum = (k: keyof TransferSummary): number => transfers.reduce((a, t) => a + (t[k] as number), 0);
  const span = ins.packets > 0 ? ins.lastTs - ins.firstTs : 0;
  const report = {
    file: reader.path,
    format: reader.format,
    fileSize: reader.fileSize,
    packets: ins.packets,
    firstTsMs: ins.packets > 0 ? ins.firstTs : null,
    lastTsMs: ins.packets > 0 ? ins.lastTs : null,
    start: ins.packets > 0 ? iso(ins.firstTs) : null,
    end: ins.packets > 0 ? iso(ins.lastTs) : null,
    durationMs: span,
    interfaces: ifaces,
    decode: ins.decode,
    serverSide: args.transfers ? 'transfer online side (-x)' : 'receiver of the SYN, else the lower port',
    transfers,
    sessions: sum('sessions'),
    sessionsWithSyn: sum('sessionsWithSyn'),
    sessionsWithoutSyn: sum('sessionsWithoutSyn'),
    requestSegments: sum('requestSegments'),
    sessionsClosing: sum('sessionsClosing'),
    outsideTransfers: args.transfers ? ins.outside : null,
    damage: reader.damage,
    damageCount: reader.damageCount,
    fatal: fatal ? { code: fatal.code, message: fatal.message, offset: fatal.details['offset'] ?? null } : null,
  };
  if (args.json) {
    out.write(JSON.stringify(report) + '\n');
    return fatal ? 1 : 0;
  }
  let s = `file       ${report.file} (${report.format}, ${report.fileSize} bytes)\n`;
  s += `packets    ${report.packets}`;
  s += ins.packets > 0 ? ` in ${(span / 1000).toFixed(3)} s (${report.start} .. ${report.end})\n` : '\n';
  s +=
    'interfaces\n' +
    table([
      ['#', 'link type', 'snaplen', 'packets', 'name'],
      ...ifaces.map((f) => [
        String(f.index),
        `${f.linkType} (${f.linkTypeName})`,
        String(f.snaplen),
        String(f.packets),
        f.name,
      ]),
    ]);
  for (const f of ifaces) {
    if (f.skippedUnknownLink > 0)
      s += `  interface ${f.index}: link type ${f.linkType} (unknown): ${f.skippedUnknownLink} packets skipped\n`;
  }
  s += `decode     ${
    STATUSES.filter((k) => ins.decode[k] > 0)
      .map((k) => `${k} ${ins.decode[k]}`)
      .join(', ') || 'nothing'
  }\n`;
  s += `transfers  (server side: ${report.serverSide})\n`;
  s +=
    transfers.length === 0
      ? '  no TCP sessions\n'
      : table([
          [
            'server',
            'sessions',
            'with SYN',
            'no SYN',
            'requests',
            'req bytes',
            'cut',
            'closing',
            'client pkts',
            'server pkts',
          ],
          ...transfers.map((t) =>
            [
              t.server,
              t.sessions,
              t.sessionsWithSyn,
              t.sessionsWithoutSyn,
              t.requestSegments,
              t.requestBytes,
              t.requestSegmentsCut,
              t.sessionsClosing,
              t.clientPackets,
              t.serverPackets,
            ].map(String),
          ),
        ]);
  s += `total      ${report.sessions} sessions (${report.sessionsWithSyn} with SYN, ${report.sessionsWithoutSyn} without), `;
  s += `${report.requestSegments} request segments, ${report.sessionsClosing} seen closing\n`;
  if (args.transfers) s += `outside    ${ins.outside} TCP packets match no -x transfer\n`;
  s += `damage     ${reader.damageCount === 0 ? 'none' : `${reader.damageCount} damaged/skipped record(s)`}\n`;
  for (const d of reader.damage) s += `  offset ${d.offset}: ${d.reason}\n`;
  if (reader.damageCount > reader.damage.length) s += `  ... ${reader.damageCount - reader.damage.length} more\n`;
  if (fatal) s += `fatal      ${fatal.code}: ${fatal.message}\n`;
  out.write(s);
  return fatal ? 1 : 0;
}
