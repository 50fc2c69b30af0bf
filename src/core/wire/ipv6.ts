/**
 * IPv6 addresses as plain numbers, so that every table keyed by an address (the engine's
 * sessions, intercept's routes, `addressKey`) serves both families unchanged and IPv4 keeps
 * its speed.
 *
 * An IPv4 address is its unsigned 32-bit value (0..2^32-1). An IPv6 address is an **id** at or
 * above IPV6_BASE (2^32): the index of its 16 bytes in one process-wide intern table, plus
 * IPV6_BASE. The same 16 bytes always get the same id (for the life of the process), so ids
 * compare like addresses; `isIpv6(ip)` is `ip >= IPV6_BASE`. Ids stay below 2^37, so
 * `ip * 65536 + port` is still exact in a double.
 *
 * Pure and allocation-free on the hot path: addresses are read and written as four 32-bit words
 * through a cached DataView (view.ts); interning hashes the four words into an
 * open-addressing table of typed arrays (grown by doubling, so only when a new address is
 * seen). The probe hash is a cheap one (four multiplications); the stable hash (`addressHash`)
 * is computed once, when an address is first seen. A decoder reading the same positions of
 * many packets keeps an `Ipv6Memo` per position: the server side of a capture (every client
 * packet's destination, every reply's source) is then found without hashing at all. The table is memoization, not state that changes behaviour: which id an address
 * gets depends on the order addresses were first seen, so nothing that must be stable across
 * runs (sampling, -c mapping) may use the id itself; they use `ipv6Hash`, a hash of the bytes.
 * Entries are never removed; the table holds at most MAX_IPV6_ADDRESSES distinct addresses
 * (about 112 MB at that size), after which interning fails (the decoder counts the packet
 * as 'address-table-full').
 */

import { viewOf } from './view';

/** Smallest IPv6 id; every IPv4 address is below it. */
export const IPV6_BASE = 0x100000000;
/** Most distinct IPv6 addresses one process can hold. */
export const MAX_IPV6_ADDRESSES = 1 << 22;

let words = new Uint32Array(4 * 256);
let hashes = new Uint32Array(256);
let slots = new Int32Array(512); // index + 1 of an address, 0 = empty
let slotMask = 511;
let count = 0;

/** True for an IPv6 id, false for an IPv4 address. */
export function isIpv6(ip: number): boolean {
  return ip >= IPV6_BASE;
}

/** Distinct IPv6 addresses interned so far. */
export function ipv6AddressCount(): number {
  return count;
}

function mix(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

function hash4(a: number, b: number, c: number, d: number): number {
  return mix(mix(mix(mix(a) ^ b) ^ c) ^ d);
}

/** The table's probe hash: cheaper than hash4 (the stable one, kept only for addressHash). */
function probeHash(a: number, b: number, c: number, d: number): number {
  let h = Math.imul(a ^ 0x2545f491, 0x9e3779b1) ^ b;
  h = Math.imul(h, 0x85ebca6b) ^ c;
  h = Math.imul(h, 0xc2b2ae35) ^ d;
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  return (h ^ (h >>> 13)) >>> 0;
}

function grow(): void {
  const cap = hashes.length * 2;
  const w = new Uint32Array(cap * 4);
  w.set(words);
  words = w;
  const h = new Uint32Array(cap);
  h.set(hashes);
  hashes = h;
  slots = new Int32Array(cap * 2);
  slotMask = cap * 2 - 1;
  for (let k = 0; k < count; k++) {
    const q = k * 4;
    let i = probeHash(w[q] as number, w[q + 1] as number, w[q + 2] as number, w[q + 3] as number) & slotMask;
    while (slots[i] !== 0) i = (i + 1) & slotMask;
    slots[i] = k + 1;
  }
}

/**
 * The id of the IPv6 address whose four big-endian 32-bit words are a, b, c, d (unsigned);
 * -1 when the table is full. No allocation unless the address is new and the table grows.
 */
export function internIpv6Words(a: number, b: number, c: number, d: number): number {
  a >>>= 0;
  b >>>= 0;
  c >>>= 0;
  d >>>= 0;
  const h = probeHash(a, b, c, d);
  let i = h & slotMask;
  for (;;) {
    const v = slots[i] as number;
    if (v === 0) break;
    const k = (v - 1) * 4;
    if (words[k] === a && words[k + 1] === b && words[k + 2] === c && words[k + 3] === d) return IPV6_BASE + v - 1;
    i = (i + 1) & slotMask;
  }
  if (count >= MAX_IPV6_ADDRESSES) return -1;
  if (count === hashes.length) {
    grow();
    i = h & slotMask;
    while (slots[i] !== 0) i = (i + 1) & slotMask;
  }
  const k = count * 4;
  words[k] = a;
  words[k + 1] = b;
  words[k + 2] = c;
  words[k + 3] = d;
  hashes[count] = hash4(a, b, c, d);
  count++;
  slots[i] = count;
  return IPV6_BASE + count - 1;
}

function rd32(b: Buffer, i: number): number {
  return (
    (((b[i] as number) << 24) | ((b[i + 1] as number) << 16) | ((b[i + 2] as number) << 8) | (b[i + 3] as number)) >>> 0
  );
}

/** The address last read by readAddress, as four big-endian 32-bit words. */
const addr = new Uint32Array(4);

/**
 * Reads the 16 bytes at buf[off..off+16) into `addr`: four DataView reads, or byte by byte
 * when the address is cut by the end of buf (bytes past it read as 0).
 */
function readAddress(buf: Buffer, off: number): void {
  if (off >= 0 && off + 16 <= buf.length) {
    const v = viewOf(buf);
    const i = buf.byteOffset + off;
    addr[0] = v.getUint32(i);
    addr[1] = v.getUint32(i + 4);
    addr[2] = v.getUint32(i + 8);
    addr[3] = v.getUint32(i + 12);
    return;
  }
  for (let w = 0; w < 4; w++) addr[w] = rd32(buf, off + w * 4);
}

/** The id of the 16-byte IPv6 address at buf[off..off+16) (the caller checks bounds); -1 when the table is full. */
export function internIpv6(buf: Buffer, off: number): number {
  readAddress(buf, off);
  return internIpv6Words(addr[0] as number, addr[1] as number, addr[2] as number, addr[3] as number);
}

/**
 * The last two addresses one read position saw (e.g. the destination of captured packets):
 * words and table index + 1 of each (0 = empty), and which one was hit last. A miss replaces
 * the other entry, so an address seen at every other read (the server between clients) stays.
 * Valid for the life of the process: entries of the intern table are never removed.
 */
export type Ipv6Memo = Uint32Array;

/** A new, empty memo (11 words). */
export function newIpv6Memo(): Ipv6Memo {
  return new Uint32Array(11);
}

/** internIpv6, looking in `memo` first (and remembering the answer there). */
export function internIpv6Memo(buf: Buffer, off: number, memo: Ipv6Memo): number {
  if (!(off >= 0 && off + 16 <= buf.length)) return internIpv6(buf, off); // cut: not worth remembering
  return internIpv6MemoAt(viewOf(buf), buf.byteOffset + off, memo);
}

/**
 * internIpv6Memo of the address at index `i` of view `v` (viewOf(buf), i = buf.byteOffset +
 * off), for a caller that has checked that the 16 bytes lie inside its Buffer.
 */
export function internIpv6MemoAt(v: DataView, i: number, memo: Ipv6Memo): number {
  const d = v.getUint32(i + 12);
  for (let e = 0; e < 10; e += 5) {
    const k = memo[e + 4] as number;
    if (
      k !== 0 &&
      memo[e + 3] === d &&
      memo[e + 2] === v.getUint32(i + 8) &&
      memo[e + 1] === v.getUint32(i + 4) &&
      memo[e] === v.getUint32(i)
    ) {
      memo[10] = e;
      return IPV6_BASE + k - 1;
    }
  }
  return remember(v.getUint32(i), v.getUint32(i + 4), v.getUint32(i + 8), d, memo);
}

/** A memo miss: interns the address and puts it in place of the entry not hit last. */
function remember(a: number, b: number, c: number, d: number, memo: Ipv6Memo): number {
  const id = internIpv6Words(a, b, c, d);
  if (id < 0) return id;
  const e = memo[10] === 0 ? 5 : 0;
  memo[e] = a;
  memo[e + 1] = b;
  memo[e + 2] = c;
  memo[e + 3] = d;
  memo[e + 4] = id - IPV6_BASE + 1;
  memo[10] = e;
  return id;
}

/** Word `w` (0..3, big-endian order) of IPv6 id `id`; 0 for a value that is not an id. */
export function ipv6Word(id: number, w: number): number {
  const k = id - IPV6_BASE;
  if (!(k >= 0 && k < count)) return 0;
  return words[k * 4 + w] as number;
}

/** A stable 32-bit hash of the address bytes of id `id` (the same in every process); for IPv4, the address. */
export function addressHash(ip: number): number {
  const k = ip - IPV6_BASE;
  if (k < 0) return ip >>> 0;
  return k < count ? (hashes[k] as number) : 0;
}

/**
 * Writes the 16 bytes of IPv6 id `id` at out[off..off+16) (zeros for a value that is not an
 * id); nothing is written past the end of `out`.
 */
export function writeIpv6(id: number, out: Buffer, off: number): void {
  const k = id - IPV6_BASE;
  if (!(k >= 0 && k < count && off >= 0 && off + 16 <= out.length)) {
    writeIpv6Bytes(k >= 0 && k < count ? k * 4 : -1, out, off);
    return;
  }
  const v = viewOf(out);
  const i = out.byteOffset + off;
  const q = k * 4;
  v.setUint32(i, words[q] as number);
  v.setUint32(i + 4, words[q + 1] as number);
  v.setUint32(i + 8, words[q + 2] as number);
  v.setUint32(i + 12, words[q + 3] as number);
}

/** writeIpv6 of the words at words[q..q+4) (zeros when q < 0) byte by byte: a typed array drops stores past its end. */
function writeIpv6Bytes(q: number, out: Buffer, off: number): void {
  for (let j = 0; j < 16; j++) out[off + j] = q < 0 ? 0 : (words[q + (j >>> 2)] as number) >>> (24 - 8 * (j & 3));
}

/**
 * Parses IPv6 text (RFC 4291 section 2.2: eight groups, one `::`, an embedded dotted quad at
 * the end; no zone, no brackets) into its four 32-bit words, or null.
 */
export function parseIpv6Words(text: string): [number, number, number, number] | null {
  if (text.length < 2 || text.length > 45 || !/^[0-9a-fA-F:.]+$/.test(text)) return null;
  const groups: number[] = [];
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parseSide = (side: string, last: boolean): number[] | null => {
    if (side === '') return [];
    const out: number[] = [];
    const parts = side.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i] as string;
      if (last && i === parts.length - 1 && p.includes('.')) {
        const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(p);
        if (m === null) return null;
        const o = m.slice(1).map(Number);
        if (o.some((x) => x > 255)) return null;
        out.push(((o[0] as number) << 8) | (o[1] as number), ((o[2] as number) << 8) | (o[3] as number));
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return null;
      out.push(parseInt(p, 16));
    }
    return out;
  };
  const head = parseSide(halves[0] as string, halves.length === 1);
  const tail = halves.length === 2 ? parseSide(halves[1] as string, true) : [];
  if (head === null || tail === null) return null;
  if (halves.length === 1) {
    if (head.length !== 8) return null;
    groups.push(...head);
  } else {
    const fill = 8 - head.length - tail.length;
    if (fill < 1) return null;
    groups.push(...head, ...new Array<number>(fill).fill(0), ...tail);
  }
  const w = (i: number): number => (((groups[i] as number) << 16) | (groups[i + 1] as number)) >>> 0;
  return [w(0), w(2), w(4), w(6)];
}

/** Parses IPv6 text into its id (interning it); -1 when it is not an IPv6 address. */
export function parseIpv6(text: string): number {
  const w = parseIpv6Words(text);
  return w === null ? -1 : internIpv6Words(w[0], w[1], w[2], w[3]);
}

/** The id of `::1` (interned first, so always IPV6_BASE). */
export const IPV6_LOOPBACK = parseIpv6('::1');

/** RFC 5952 text of IPv6 id `id` (lower case, the longest run of two or more zero groups as `::`). */
export function ipv6ToString(id: number): string {
  const ws: number[] = [];
  for (let w = 0; w < 4; w++) ws.push(ipv6Word(id, w));
  return ipv6WordsToString(ws);
}

/** RFC 5952 text of an IPv6 address given as four 32-bit words (the longest run of 2+ zero groups as ::). */
export function ipv6WordsToString(ws: readonly number[]): string {
  const g: number[] = [];
  for (const v of ws) g.push(v >>> 16, v & 0xffff);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]): string => a.map((x) => x.toString(16)).join(':');
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}
