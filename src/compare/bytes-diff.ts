/**
 * Comparison of opaque bodies (and of bytes-mode exchanges): length, hash, and the first
 * differing offset with a short context of both sides in hex and as text.
 */
import { createHash } from 'node:crypto';

/** Bytes of context shown around the first difference. */
export const CONTEXT_BYTES = 16;

/** How two byte strings differ. */
export interface BytesDiff {
  lenA: number;
  lenB: number;
  /** sha256, first 16 hex digits. */
  hashA: string;
  hashB: string;
  /** First offset where they differ (the shorter length when one is a prefix of the other). */
  offset: number;
  /** Up to CONTEXT_BYTES from max(0, offset - 4), hex and printable text ('.' for others). */
  hexA: string;
  hexB: string;
  textA: string;
  textB: string;
}

/** Short hash used in reports: sha256, first 16 hex digits. */
export function shortHash(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex').slice(0, 16);
}

function text(b: Buffer): string {
  let s = '';
  for (const c of b) s += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '.';
  return s;
}

/** Null when equal, else how they differ. */
export function diffBytes(a: Buffer, b: Buffer): BytesDiff | null {
  if (a.equals(b)) return null;
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  const from = Math.max(0, i - 4);
  const ca = a.subarray(from, from + CONTEXT_BYTES);
  const cb = b.subarray(from, from + CONTEXT_BYTES);
  return {
    lenA: a.length,
    lenB: b.length,
    hashA: shortHash(a),
    hashB: shortHash(b),
    offset: i,
    hexA: ca.toString('hex'),
    hexB: cb.toString('hex'),
    textA: text(ca),
    textB: text(cb),
  };
}
