import { parseIpv4, ipToString } from './wire/segment';
import { addressHash, internIpv6Words, IPV6_BASE, ipv6Word, parseIpv6Words } from './wire/ipv6';

/**
 * Client address rewriting (-c) and client port variants (-n amplification, -T repetitions,
 * -f instance offset). Pure functions; the engine applies them when it creates a session.
 */

/**
 * One `-c` item: an exact address (IPv4 or an IPv6 id), an `a.b.c.x` pattern (keeps the
 * original last octet), an IPv4 CIDR block (a host of the block per client), or an IPv6 prefix
 * (`2001:2:1::/64`: the prefix's first `bits` bits, the client's own low bits, as `a.b.c.x`).
 */
export type ClientIpSpec =
  | { kind: 'exact'; ip: number }
  | { kind: 'lastOctet'; base: number }
  | { kind: 'cidr'; base: number; size: number }
  | { kind: 'prefix6'; base: number; bits: number };

/** Whether a spec rewrites IPv6 clients (IPv4 specs rewrite IPv4 clients only). */
export function isIpv6Spec(s: ClientIpSpec): boolean {
  return s.kind === 'prefix6' || (s.kind === 'exact' && s.ip >= IPV6_BASE);
}

/** Result of parsing a `-c` list: the specs, or why an item (or the list) is not valid. */
export type ClientIpListResult = { ok: true; specs: ClientIpSpec[] } | { ok: false; reason: string };

/**
 * Parses a `-c` list: `198.18.5.1,198.18.6.x,198.18.8.0/24`. Never throws: a bad item gives a
 * reason naming it (e.g. `"198.18.5" is not an IPv4 address`), which the CLI turns into its error.
 */
export function parseClientIpList(text: string): ClientIpListResult {
  const specs: ClientIpSpec[] = [];
  for (const raw of text.split(',')) {
    const item = raw.trim();
    if (item === '') continue;
    const bad = (why: string): ClientIpListResult => ({ ok: false, reason: `"${item}" ${why}` });
    if (item.includes(':')) {
      const [addr, bitsText, extra] = item.split('/');
      const w = parseIpv6Words(addr ?? '');
      if (w === null || extra !== undefined) return bad('is not an IPv6 address or prefix');
      if (bitsText === undefined) {
        specs.push({ kind: 'exact', ip: internIpv6Words(w[0], w[1], w[2], w[3]) });
        continue;
      }
      const bits = Number(bitsText);
      if (!/^\d{1,3}$/.test(bitsText) || bits < 16 || bits > 128) return bad('is not an IPv6 prefix (/16../128)');
      const m = prefixMasks(bits);
      const base = internIpv6Words(w[0] & m[0], w[1] & m[1], w[2] & m[2], w[3] & m[3]);
      specs.push({ kind: 'prefix6', base, bits });
      continue;
    }
    if (/\.x$/i.test(item)) {
      const base = parseIpv4(item.replace(/\.x$/i, '.0'));
      if (base < 0) return bad('is not an a.b.c.x pattern');
      specs.push({ kind: 'lastOctet', base });
    } else if (item.includes('/')) {
      const [addr, bitsText] = item.split('/');
      const base = parseIpv4(addr ?? '');
      const bits = Number(bitsText);
      if (base < 0 || !Number.isInteger(bits) || bits < 8 || bits > 32) return bad('is not a CIDR block (/8../32)');
      const size = 2 ** (32 - bits);
      const mask = size === 2 ** 32 ? 0 : ~(size - 1) >>> 0;
      specs.push({ kind: 'cidr', base: (base & mask) >>> 0, size });
    } else {
      const ip = parseIpv4(item);
      if (ip < 0) return bad('is not an IPv4 address');
      specs.push({ kind: 'exact', ip });
    }
  }
  if (specs.length === 0) return { ok: false, reason: 'empty' };
  return { ok: true, specs };
}

/** Text form of a spec list (for logs and the report). */
export function clientIpSpecText(specs: readonly ClientIpSpec[]): string {
  return specs
    .map((s) =>
      s.kind === 'exact'
        ? ipToString(s.ip)
        : s.kind === 'lastOctet'
          ? ipToString(s.base).replace(/\.0$/, '.x')
          : s.kind === 'prefix6'
            ? `${ipToString(s.base)}/${s.bits}`
            : `${ipToString(s.base)}/${32 - Math.log2(s.size)}`,
    )
    .join(',');
}

/** A 32-bit integer mix (murmur3 finalizer): spreads client addresses evenly. */
export function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Hash of a client ip:port, used by sampling (-r): a session is either wholly in or out. IPv6: from the address bytes. */
export function clientHash(ip: number, port: number): number {
  return mix32((addressHash(ip) ^ Math.imul(port, 0x9e3779b1)) >>> 0);
}

/** The four 32-bit masks of an IPv6 prefix length (0..128). */
function prefixMasks(bits: number): [number, number, number, number] {
  const m = (w: number): number => {
    const b = bits - w * 32;
    return b >= 32 ? 0xffffffff : b <= 0 ? 0 : (0xffffffff << (32 - b)) >>> 0;
  };
  return [m(0), m(1), m(2), m(3)];
}

/** The prefix of `base`'s first `bits` bits with the rest of `ip`'s bits (both IPv6 ids); -1 when the table is full. */
function withPrefix(base: number, bits: number, ip: number): number {
  const [m0, m1, m2, m3] = prefixMasks(bits);
  const w = (i: number, m: number): number => ((ipv6Word(base, i) & m) | (ipv6Word(ip, i) & ~m)) >>> 0;
  return internIpv6Words(w(0, m0), w(1, m1), w(2, m2), w(3, m3));
}

/**
 * Maps an original client address through the `-c` list; the same input always gives the same
 * output. Only the specs of the client's family apply (an IPv6 client keeps its address when
 * the list has no IPv6 item, and an IPv4 client when it has no IPv4 item).
 */
export function mapClientIp(specs: readonly ClientIpSpec[], ip: number): number {
  if (specs.length === 0) return ip;
  const v6 = ip >= IPV6_BASE;
  let n = 0;
  for (const x of specs) if (isIpv6Spec(x) === v6) n++;
  if (n === 0) return ip;
  const h = mix32(addressHash(ip));
  let k = n === 1 ? 0 : h % n;
  let s = specs[0] as ClientIpSpec;
  for (const x of specs) {
    if (isIpv6Spec(x) !== v6) continue;
    if (k-- === 0) {
      s = x;
      break;
    }
  }
  switch (s.kind) {
    case 'prefix6': {
      const r = withPrefix(s.base, s.bits, ip);
      return r < 0 ? ip : r;
    }
    case 'exact':
      return s.ip;
    case 'lastOctet':
      return (s.base | (ip & 0xff)) >>> 0;
    case 'cidr': {
      if (s.size <= 2) return (s.base + (h % s.size)) >>> 0;
      // avoid the network and broadcast addresses of the block
      return (s.base + 1 + (mix32(h) % (s.size - 2))) >>> 0;
    }
  }
}

/** Lowest client port used for shifted variants (ports below are left to the system). */
export const VARIANT_PORT_BASE = 1024;
const VARIANT_PORT_SPAN = 65536 - VARIANT_PORT_BASE;

/**
 * The client port of replay `variant` (0 = the original port) for instance offset `instance` (-f).
 * Distinct variants of one port land on distinct ports; a collision with another live session is
 * resolved by the engine probing the next port.
 */
export function variantPort(origPort: number, variant: number, instance: number): number {
  const g = instance * 1024 + variant;
  if (g === 0) return origPort;
  const shift = (g * 1031) % VARIANT_PORT_SPAN;
  const rel = (((origPort - VARIANT_PORT_BASE) % VARIANT_PORT_SPAN) + VARIANT_PORT_SPAN) % VARIANT_PORT_SPAN;
  return VARIANT_PORT_BASE + ((rel + shift) % VARIANT_PORT_SPAN);
}

/** Next port in the variant range after `port` (for collision probing). */
export function nextVariantPort(port: number): number {
  return port >= 65535 ? VARIANT_PORT_BASE : port + 1;
}
