/**
 * The nginx conversations captured on loopback with tcpdump (test/fixtures/http/: the pcaps,
 * the client that made them and extract.py that cut them into per-connection JSON): production
 * (`nginx-conn-N.json`) and a target whose config differs on purpose (`nginx-target-conn-N.json`:
 * X-Version v2, $.items[1].price 13, /missing 410).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Event {
  dir: 'c' | 's';
  t: number;
  data: Buffer;
}

const DIR = join(__dirname, '..', '..', '..', '..', 'test', 'fixtures', 'http');

export function conversation(name: string): Event[] {
  const raw = JSON.parse(readFileSync(join(DIR, `${name}.json`), 'utf8')) as {
    dir: 'c' | 's';
    t: number;
    data: string;
  }[];
  return raw.map((e) => ({ dir: e.dir, t: e.t, data: Buffer.from(e.data, 'base64') }));
}

/** All bytes of one direction. */
export function stream(ev: Event[], dir: 'c' | 's'): Buffer {
  return Buffer.concat(ev.filter((e) => e.dir === dir).map((e) => e.data));
}

/** Cuts `b` into pieces of pseudo-random sizes 1..max (seeded). */
export function chunks(b: Buffer, seed: number, max = 97): Buffer[] {
  const out: Buffer[] = [];
  let s = seed >>> 0 || 1;
  for (let p = 0; p < b.length;) {
    s = (s * 1103515245 + 12345) >>> 0;
    const n = 1 + (s % max);
    out.push(b.subarray(p, p + n));
    p += n;
  }
  return out;
}
