/**
 * Compares production's response with the target's: the status; the headers case-insensitively
 * (a repeated header's values sorted) minus the ignored ones; the bodies after content
 * decoding, JSON field by field, anything else by length, hash and first differing offset.
 */
import { diffBytes, type BytesDiff } from './bytes-diff';
import { decodeBody } from './decode';
import { headerValue, type HttpMessage } from './http-parser';
import { diffJson, fieldKey, type JsonFieldDiff } from './json-diff';
import { ignored, type CompareRules } from './rules';

/** Why an exchange was not compared. */
export type SkipReason = 'truncated' | 'memory' | 'noTargetResponse' | 'noOnlineResponse' | 'unparsable';

/** Every skip reason, in report order. */
export const SKIP_REASONS: readonly SkipReason[] = [
  'truncated',
  'memory',
  'noTargetResponse',
  'noOnlineResponse',
  'unparsable',
];

/** One difference between two responses. */
export interface FieldDiff {
  /** What the counts are kept under: 'status', 'header:x-version', 'body:$.items[*].price', 'body'. */
  field: string;
  /** The concrete place: 'status', 'x-version', '$.items[3].price', or 'body'. */
  path: string;
  kind: JsonFieldDiff['kind'] | 'bytes';
  /** Production's value (absent when missing there). */
  a?: string;
  /** The target's value. */
  b?: string;
  /** Opaque bodies: how they differ. */
  bytes?: BytesDiff;
}

/** The verdict on one exchange: not compared (with the reason), or its differences (none: identical). */
export type Verdict = { skipped: SkipReason; detail: string } | { diffs: FieldDiff[] };

/** Most differences kept per exchange. */
export const MAX_DIFFS = 50;

function headerMap(h: readonly [string, string][]): Map<string, string> {
  const m = new Map<string, string[]>();
  for (const [k, v] of h) {
    const n = k.toLowerCase();
    const l = m.get(n);
    if (l) l.push(v);
    else m.set(n, [v]);
  }
  const out = new Map<string, string>();
  for (const [k, l] of m) out.set(k, l.sort().join(', '));
  return out;
}

function isJson(h: readonly [string, string][]): boolean {
  const ct = headerValue(h, 'content-type');
  return ct !== null && /(^|\/|\+)json\b/i.test(ct);
}

function parseJson(b: Buffer): { ok: true; v: unknown } | { ok: false } {
  try {
    return { ok: true, v: JSON.parse(b.toString('utf8')) as unknown };
  } catch {
    return { ok: false };
  }
}

/** Compares responses `a` (production) and `b` (the target) under `rules`; bodies decode to at most `bodyMax` bytes. */
export function compareResponses(a: HttpMessage, b: HttpMessage, rules: CompareRules, bodyMax: number): Verdict {
  if (a.truncated || b.truncated)
    return { skipped: 'truncated', detail: `body over ${bodyMax} bytes or not delivered in full` };
  const diffs: FieldDiff[] = [];
  if (a.status !== b.status)
    diffs.push({ field: 'status', path: 'status', kind: 'value', a: String(a.status), b: String(b.status) });
  const ha = headerMap(a.headers);
  const hb = headerMap(b.headers);
  for (const [k, va] of ha) {
    const vb = hb.get(k);
    if (vb === va || ignored(rules.ignoreHeaders, k, va, vb)) continue;
    diffs.push({
      field: `header:${k}`,
      path: k,
      kind: vb === undefined ? 'missing' : 'value',
      a: va,
      ...(vb === undefined ? {} : { b: vb }),
    });
  }
  for (const [k, vb] of hb) {
    if (ha.has(k) || ignored(rules.ignoreHeaders, k, undefined, vb)) continue;
    diffs.push({ field: `header:${k}`, path: k, kind: 'extra', b: vb });
  }
  const da = decodeBody(a.headers, a.body, bodyMax);
  const db = decodeBody(b.headers, b.body, bodyMax);
  if (!da.ok || !db.ok)
    return {
      skipped: 'unparsable',
      detail: `body decoding: ${!da.ok ? da.reason : (db as { reason: string }).reason}`,
    };
  if (da.body.equals(db.body)) return { diffs };
  if (isJson(a.headers) || isJson(b.headers)) {
    const ja = parseJson(da.body);
    const jb = parseJson(db.body);
    if (ja.ok && jb.ok) {
      const jd: JsonFieldDiff[] = [];
      diffJson(ja.v, jb.v, jd, MAX_DIFFS);
      for (const d of jd) {
        if (ignored(rules.ignorePaths, d.path, d.a, d.b)) continue;
        diffs.push({ field: `body:${fieldKey(d.path)}`, ...d });
      }
      return { diffs };
    }
  }
  const bd = diffBytes(da.body, db.body) as BytesDiff;
  diffs.push({
    field: 'body',
    path: 'body',
    kind: 'bytes',
    a: `${bd.lenA} bytes ${bd.hashA}`,
    b: `${bd.lenB} bytes ${bd.hashB}`,
    bytes: bd,
  });
  return { diffs };
}

/** Bytes mode: two responses compared as opaque bytes. */
export function compareBytes(a: Buffer, b: Buffer): FieldDiff[] {
  const bd = diffBytes(a, b);
  if (bd === null) return [];
  return [
    {
      field: 'bytes',
      path: 'bytes',
      kind: 'bytes',
      a: `${bd.lenA} bytes ${bd.hashA}`,
      b: `${bd.lenB} bytes ${bd.hashB}`,
      bytes: bd,
    },
  ];
}
