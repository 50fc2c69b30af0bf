/**
 * Content decoding of response bodies before comparison (Content-Encoding gzip, x-gzip,
 * deflate (zlib or raw), br; identity), with node:zlib and a cap on the decoded size.
 */
import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';
import { headerValue } from './http-parser';

/** What decoding a body gave: the bytes, or why not. */
export type Decoded = { ok: true; body: Buffer } | { ok: false; reason: string };

/** Decodes `body` per the Content-Encoding of `headers` (applied in reverse order), at most `max` bytes out. */
export function decodeBody(headers: readonly [string, string][], body: Buffer, max: number): Decoded {
  const ce = headerValue(headers, 'content-encoding');
  if (ce === null || body.length === 0) return { ok: true, body };
  const codings = ce
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity')
    .reverse();
  let b = body;
  const opts = { maxOutputLength: Math.max(1, max) };
  for (const c of codings) {
    try {
      if (c === 'gzip' || c === 'x-gzip') b = gunzipSync(b, opts);
      else if (c === 'br') b = brotliDecompressSync(b, opts);
      else if (c === 'deflate') {
        try {
          b = inflateSync(b, opts);
        } catch {
          b = inflateRawSync(b, opts);
        }
      } else return { ok: false, reason: `unknown content-encoding ${c}` };
    } catch (e) {
      return { ok: false, reason: `${c}: ${e instanceof Error ? e.message : String(e)}` };
    }
  }
  return { ok: true, body: b };
}
