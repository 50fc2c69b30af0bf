/**
 * Test helper: loads the text fixtures of test/fixtures/wire/*.hex (see the README there)
 * and turns tcpdump's own -vv -e -S text of each frame into expected field values.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** One captured frame with tcpdump's text for it. */
export interface Frame {
  /** Position in its capture file (tcpdump's packet number - 1). */
  index: number;
  /** LINKTYPE_* of the capture. */
  linkType: number;
  /** The captured bytes, from the link-layer header on. */
  bytes: Buffer;
  /** tcpdump -nn -vv -e -S output for the frame, continuation lines joined with ' | '. */
  text: string;
}

/**
 * Directory of the fixtures, from dist/test/unit/wire or test/unit/wire alike. The
 * environment variable TCW_WIRE_FIXTURES points it at a fresh capture instead
 * (make-fixtures.sh <dir>); only the tcpdump cross-check tests are meaningful then.
 */
export const FIXTURE_DIR =
  process.env['TCW_WIRE_FIXTURES'] ??
  resolve(__dirname, __dirname.includes('/dist/') ? '../../../../test/fixtures/wire' : '../../fixtures/wire');

/** All frames of fixture `name` (eth, eth-snap96, sll, sll2, lo). */
export function loadFrames(name: string): Frame[] {
  const out: Frame[] = [];
  let text = '';
  for (const line of readFileSync(resolve(FIXTURE_DIR, `${name}.hex`), 'utf8').split('\n')) {
    if (line.startsWith('#')) {
      text = line.replace(/^# \d+: /, '');
      continue;
    }
    const m = /^(\d+) ([0-9a-f]*)$/.exec(line);
    if (!m) continue;
    out.push({ index: out.length, linkType: Number(m[1]), bytes: Buffer.from(m[2] ?? '', 'hex'), text });
  }
  return out;
}

/** What tcpdump printed for an IPv4+TCP frame (absolute sequence numbers, -S). */
export interface TcpdumpTcp {
  ipId: number;
  ttl: number;
  ipLen: number;
  src: string;
  srcPort: number;
  dst: string;
  dstPort: number;
  flags: number;
  seq: number;
  ack: number | null;
  win: number;
  payloadLen: number;
  /** Stored TCP checksum, tcpdump's verdict and the value it computed; null when not checked (cut frame). */
  cksum: { value: number; correct: boolean; computed: number } | null;
  mss: number;
  wscale: number;
  sackOk: boolean;
  ts: [number, number] | null;
}

const FLAG_CHARS: Record<string, number> = { F: 0x01, S: 0x02, R: 0x04, P: 0x08, '.': 0x10, U: 0x20, E: 0x40, W: 0x80 };

/** The part of tcpdump's TCP text after `Flags [...],` (groups 6..13 of the callers' regexps). */
const TCP_REST =
  '(?: cksum 0x([0-9a-f]+) \\((correct|incorrect -> 0x([0-9a-f]+))\\),)? seq (\\d+)(?::\\d+)?,(?: ack (\\d+),)? win (\\d+),' +
  '(?: options \\[([^\\]]*)\\],)? length (\\d+)';

/**
 * tcpdump's text of an IPv6 TCP frame: the fixed header, then either `src.port > dst.port:` or,
 * after extension headers (HBH, DSTOPT, RT6), `src > dst: HBH (padn) sport > dport:`. Returns
 * the groups in the order of the IPv4 regexp's (ipId 0, ipLen = 40 + payload length).
 */
function parseTcpdumpTcp6(text: string): { ttl: number; ipLen: number; tcp: (string | undefined)[] } | null {
  const ip = /\((?:flowlabel 0x[0-9a-f]+, )?hlim (\d+), next-header [\w ]+ \((\d+)\) payload length: (\d+)\)/.exec(
    text,
  );
  if (!ip) return null;
  const a = '([0-9a-f:]+)';
  const direct = new RegExp(`${a}\\.(\\d+) > ${a}\\.(\\d+): Flags \\[([^\\]]*)\\],` + TCP_REST).exec(text);
  if (direct) return { ttl: Number(ip[1]), ipLen: 40 + Number(ip[3]), tcp: [...direct] };
  const ext = new RegExp(
    `${a} > ${a}: (?:(?:HBH|DSTOPT|RT6) \\([^)]*\\) )+(\\d+) > (\\d+): Flags \\[([^\\]]*)\\],` + TCP_REST,
  ).exec(text);
  if (!ext) return null;
  const t = [...ext];
  return { ttl: Number(ip[1]), ipLen: 40 + Number(ip[3]), tcp: [t[0], t[1], t[3], t[2], t[4], ...t.slice(5)] };
}

/** Parse tcpdump's text of an IPv4 or IPv6 TCP frame; null when the frame is not one tcpdump decoded as such. */
export function parseTcpdumpTcp(text: string): TcpdumpTcp | null {
  const ip4 =
    /\(tos 0x[0-9a-f]+, ttl (\d+), id (\d+), offset (\d+), flags \[[^\]]*\], proto TCP \(6\), length (\d+)\)/.exec(
      text,
    );
  const tcp4 = new RegExp(
    '(\\d+\\.\\d+\\.\\d+\\.\\d+)\\.(\\d+) > (\\d+\\.\\d+\\.\\d+\\.\\d+)\\.(\\d+): Flags \\[([^\\]]*)\\],' + TCP_REST,
  ).exec(text);
  const v6 = ip4 ? null : parseTcpdumpTcp6(text);
  const ip: (string | undefined)[] | null = ip4
    ? [...ip4]
    : v6
      ? [undefined, String(v6.ttl), '0', '0', String(v6.ipLen)]
      : null;
  const tcp: (string | undefined)[] | null = ip4 ? tcp4 && [...tcp4] : v6 ? v6.tcp : null;
  if (!ip || !tcp) return null;
  let flags = 0;
  for (const c of tcp[5] ?? '') flags |= FLAG_CHARS[c] ?? 0;
  const opts = tcp[12] ?? '';
  const ts = /TS val (\d+) ecr (\d+)/.exec(opts);
  return {
    ttl: Number(ip[1]),
    ipId: Number(ip[2]),
    ipLen: Number(ip[4]),
    src: tcp[1] ?? '',
    srcPort: Number(tcp[2]),
    dst: tcp[3] ?? '',
    dstPort: Number(tcp[4]),
    flags,
    cksum:
      tcp[6] === undefined
        ? null
        : {
            value: parseInt(tcp[6], 16),
            correct: tcp[7] === 'correct',
            computed: tcp[8] === undefined ? parseInt(tcp[6], 16) : parseInt(tcp[8], 16),
          },
    seq: Number(tcp[9]),
    ack: tcp[10] === undefined ? null : Number(tcp[10]),
    win: Number(tcp[11]),
    payloadLen: Number(tcp[13]),
    mss: Number(/mss (\d+)/.exec(opts)?.[1] ?? 0),
    wscale: Number(/wscale (\d+)/.exec(opts)?.[1] ?? -1),
    sackOk: opts.includes('sackOK'),
    ts: ts ? [Number(ts[1]), Number(ts[2])] : null,
  };
}

/** Deterministic PRNG (mulberry32): returns a function giving uint32 values. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}
