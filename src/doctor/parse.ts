/**
 * Pure parsers for the outputs of the tools the doctor runs: `ip route get`, `ip -4 -o addr`,
 * `ethtool -k`, sysctl files. They never throw on odd input: unknown text gives null/empty.
 */
import { parseIp, parseIpv4 } from '../core/wire/segment';
import { ipv6WordsToString, parseIpv6Words } from '../core/wire/ipv6';

/** An IPv4 block. */
export interface Cidr {
  /** Network address, unsigned 32-bit, already masked. */
  base: number;
  /** Prefix length 0..32. */
  bits: number;
}

/** `a.b.c.d[/n]` -> Cidr (a bare address is /32); null when it is not one. */
export function parseCidr(text: string): Cidr | null {
  const [addr, bitsText, extra] = text.trim().split('/');
  if (addr === undefined || extra !== undefined) return null;
  const ip = parseIpv4(addr);
  if (ip < 0) return null;
  const bits = bitsText === undefined ? 32 : /^\d{1,2}$/.test(bitsText) ? Number(bitsText) : -1;
  if (bits < 0 || bits > 32) return null;
  return { base: (ip & maskOf(bits)) >>> 0, bits };
}

/** An IPv6 prefix as the target checks need it: its text and an address inside it. */
export interface Cidr6 {
  /** Canonical-enough text, `2001:2:0:1::/64` (the network part as given, host bits cleared). */
  text: string;
  /** The first address after the network address (`2001:2:0:1::1`), the route probe. */
  probe: string;
  /** Prefix length 16..128. */
  bits: number;
}

/** `2001:2:0:1::/64` (or a bare address, /128) -> Cidr6; null when it is not an IPv6 prefix. */
export function parseCidr6(text: string): Cidr6 | null {
  const [addr, bitsText, extra] = text.trim().split('/');
  if (addr === undefined || extra !== undefined) return null;
  const w = parseIpv6Words(addr);
  if (w === null) return null;
  const bits = bitsText === undefined ? 128 : /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : -1;
  if (bits < 16 || bits > 128) return null;
  const m = (i: number): number => {
    const b = Math.max(0, Math.min(32, bits - 32 * i));
    return b === 0 ? 0 : b === 32 ? 0xffffffff : (~0 << (32 - b)) >>> 0;
  };
  const base = w.map((x, i) => (x & m(i)) >>> 0);
  const groups = ipv6WordsToString;
  const probe = [...base];
  if (bits < 128) probe[3] = ((probe[3] as number) + 1) >>> 0;
  return { text: `${groups(base)}/${bits}`, probe: groups(probe), bits };
}

/** The netmask of a prefix length, unsigned. */
export function maskOf(bits: number): number {
  return bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
}

/** True when `ip` is inside `c`. */
export function cidrContains(c: Cidr, ip: number): boolean {
  return (ip & maskOf(c.bits)) >>> 0 === c.base;
}

/** True when two blocks share at least one address. */
export function cidrOverlap(a: Cidr, b: Cidr): boolean {
  const bits = Math.min(a.bits, b.bits);
  const m = maskOf(bits);
  return (a.base & m) >>> 0 === (b.base & m) >>> 0;
}

/** What `ip route get ADDR` said. */
export interface RouteGet {
  /** True when the kernel found a route (exit status 0 and a parsable line). */
  ok: boolean;
  /** Route type word when not unicast ('local', 'unreachable', 'blackhole', 'prohibit', ...), else 'unicast'. */
  type: string;
  /** Gateway (`via`), null for a directly connected destination. */
  via: string | null;
  /** Output device. */
  dev: string | null;
  /** Preferred source address. */
  src: string | null;
  /** The error text when !ok (e.g. 'RTNETLINK answers: Network is unreachable'). */
  error: string | null;
}

/** Parses `ip route get` output (stdout, stderr, exit code). */
export function parseRouteGet(stdout: string, stderr: string, code: number): RouteGet {
  const line = stdout.split('\n')[0]?.trim() ?? '';
  const empty: RouteGet = { ok: false, type: 'unicast', via: null, dev: null, src: null, error: null };
  if (code !== 0 || line === '')
    return { ...empty, error: (stderr.trim() || stdout.trim() || `exit status ${code}`).split('\n')[0] ?? null };
  const words = line.split(/\s+/);
  const after = (k: string): string | null => {
    const i = words.indexOf(k);
    return i >= 0 && i + 1 < words.length ? (words[i + 1] as string) : null;
  };
  const first = words[0] ?? '';
  const type = parseIp(first) >= 0 ? 'unicast' : first;
  return { ok: true, type, via: after('via'), dev: after('dev'), src: after('src'), error: null };
}

/** One IPv4 address of an interface, from `ip -4 -o addr show`. */
export interface IfAddr {
  /** Interface name (without any `@peer` suffix). */
  dev: string;
  /** The address, dotted quad. */
  addr: string;
  /** Prefix length. */
  bits: number;
}

/** Parses `ip -4 -o addr show` lines (`2: eth0    inet 198.18.0.2/24 ...`). */
export function parseIpAddrOneline(text: string): IfAddr[] {
  const out: IfAddr[] = [];
  for (const line of text.split('\n')) {
    const m = /^\d+:\s+(\S+)\s+inet\s+(\d+\.\d+\.\d+\.\d+)\/(\d+)/.exec(line.trim());
    if (!m) continue;
    out.push({ dev: (m[1] as string).replace(/@.*$/, ''), addr: m[2] as string, bits: Number(m[3]) });
  }
  return out;
}

/** One feature line of `ethtool -k`. */
export interface EthtoolFeature {
  /** True when on. */
  on: boolean;
  /** True when the driver cannot change it (`[fixed]`). */
  fixed: boolean;
}

/** Parses `ethtool -k DEV` into feature name -> state. */
export function parseEthtoolFeatures(text: string): Map<string, EthtoolFeature> {
  const out = new Map<string, EthtoolFeature>();
  for (const line of text.split('\n')) {
    const m = /^\s*([a-z0-9-]+):\s+(on|off)(\s+\[fixed\])?/.exec(line);
    if (m) out.set(m[1] as string, { on: m[2] === 'on', fixed: m[3] !== undefined });
  }
  return out;
}

/** A sysctl file's integer value; null when absent or not an integer. */
export function parseSysctlInt(text: string | null): number | null {
  if (text === null) return null;
  const t = text.trim();
  return /^-?\d+$/.test(t) ? Number(t) : null;
}
