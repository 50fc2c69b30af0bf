/**
 * Field-by-field comparison of two JSON values with paths in JSONPath notation
 * (`$.items[3].price`, `$["a b"]`): a field is `missing` (in production, not in the target),
 * `extra` (in the target only), of another `type`, or of another `value`.
 */

/** JSON type names used in `type` differences. */
export type JsonType = 'null' | 'boolean' | 'number' | 'string' | 'array' | 'object';

/** One differing field. Values are the JSON text of each side (cut to VALUE_MAX characters). */
export interface JsonFieldDiff {
  path: string;
  kind: 'missing' | 'extra' | 'type' | 'value';
  a?: string;
  b?: string;
}

/** Longest value text kept in a difference. */
export const VALUE_MAX = 120;

export function jsonType(v: unknown): JsonType {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  const t = typeof v;
  return t === 'boolean' || t === 'number' || t === 'string' ? t : 'object';
}

/** The JSON text of a value, cut to VALUE_MAX characters. */
export function shortJson(v: unknown): string {
  const s = JSON.stringify(v) ?? 'undefined';
  return s.length > VALUE_MAX ? `${s.slice(0, VALUE_MAX - 1)}…` : s;
}

/** `$.key` for identifier keys, `$["other key"]` otherwise. */
export function childPath(path: string, key: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`;
}

/**
 * Appends the differences between `a` (production) and `b` (target) to `out`, at most `limit`
 * in all (returns false once the limit is reached).
 */
export function diffJson(a: unknown, b: unknown, out: JsonFieldDiff[], limit = 100, path = '$'): boolean {
  if (out.length >= limit) return false;
  const ta = jsonType(a);
  const tb = jsonType(b);
  if (ta !== tb) {
    out.push({ path, kind: 'type', a: shortJson(a), b: shortJson(b) });
    return out.length < limit;
  }
  if (ta === 'array') {
    const xa = a as unknown[];
    const xb = b as unknown[];
    const n = Math.max(xa.length, xb.length);
    for (let i = 0; i < n; i++) {
      const p = `${path}[${i}]`;
      if (i >= xb.length) out.push({ path: p, kind: 'missing', a: shortJson(xa[i]) });
      else if (i >= xa.length) out.push({ path: p, kind: 'extra', b: shortJson(xb[i]) });
      else if (!diffJson(xa[i], xb[i], out, limit, p)) return false;
      if (out.length >= limit) return false;
    }
    return true;
  }
  if (ta === 'object') {
    const oa = a as Record<string, unknown>;
    const ob = b as Record<string, unknown>;
    for (const k of Object.keys(oa)) {
      const p = childPath(path, k);
      if (!Object.prototype.hasOwnProperty.call(ob, k)) out.push({ path: p, kind: 'missing', a: shortJson(oa[k]) });
      else if (!diffJson(oa[k], ob[k], out, limit, p)) return false;
      if (out.length >= limit) return false;
    }
    for (const k of Object.keys(ob)) {
      if (Object.prototype.hasOwnProperty.call(oa, k)) continue;
      out.push({ path: childPath(path, k), kind: 'extra', b: shortJson(ob[k]) });
      if (out.length >= limit) return false;
    }
    return true;
  }
  if (a !== b) out.push({ path, kind: 'value', a: shortJson(a), b: shortJson(b) });
  return out.length < limit;
}

/** The path with array indices collapsed (`$.items[3].price` -> `$.items[*].price`): the key counts are kept under. */
export function fieldKey(path: string): string {
  return path.replace(/\[\d+\]/g, '[*]');
}
