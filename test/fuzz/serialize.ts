/**
 * JSON for fuzz inputs (what the arbitraries generate): byte arrays as hex, bigints, and the
 * numbers JSON cannot hold (NaN, +-Infinity, -0) are tagged so that a saved failing input
 * reads back exactly.
 */

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Turns a generated value into plain JSON. */
export function toJson(v: unknown): Json {
  if (v === undefined) return { $undef: 1 };
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') {
    if (Number.isNaN(v) || !Number.isFinite(v) || Object.is(v, -0))
      return { $num: Object.is(v, -0) ? '-0' : String(v) };
    return v;
  }
  if (typeof v === 'bigint') return { $big: v.toString() };
  if (v instanceof Uint8Array) return { $u8: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') };
  if (Array.isArray(v)) return v.map(toJson);
  if (typeof v === 'object') {
    const o: { [k: string]: Json } = {};
    for (const [k, x] of Object.entries(v)) o[k] = toJson(x);
    return o;
  }
  throw new Error(`cannot save a fuzz input of type ${typeof v}`);
}

/** The inverse of toJson (byte arrays come back as Uint8Array). */
export function fromJson(j: unknown): unknown {
  if (j === null || typeof j !== 'object') return j;
  if (Array.isArray(j)) return j.map(fromJson);
  const o = j as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1) {
    if (typeof o['$u8'] === 'string') return Uint8Array.from(Buffer.from(o['$u8'], 'hex'));
    if (typeof o['$big'] === 'string') return BigInt(o['$big']);
    if (typeof o['$num'] === 'string') return o['$num'] === '-0' ? -0 : Number(o['$num']);
    if (o['$undef'] === 1) return undefined;
  }
  const r: Record<string, unknown> = {};
  for (const k of keys) r[k] = fromJson(o[k]);
  return r;
}
