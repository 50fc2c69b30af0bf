/**
 * TCP sequence-number arithmetic modulo 2^32 (RFC 9293 section 3.4).
 * Every comparison of sequence or acknowledgement numbers goes through these helpers;
 * plain `<` on sequence numbers is a bug once a connection wraps.
 */

/** a + b mod 2^32, as an unsigned 32-bit number. */
export function seqAdd(a: number, b: number): number {
  return (a + b) >>> 0;
}

/** a - b as a signed distance in (-2^31, 2^31]: positive when a is after b. */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** a is strictly before b. */
export function seqBefore(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/** a is strictly after b. */
export function seqAfter(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

/** a is before or equal to b. */
export function seqBeforeEq(a: number, b: number): boolean {
  return ((a - b) | 0) <= 0;
}

/** a is after or equal to b. */
export function seqAfterEq(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}

/** The later of a and b. */
export function seqMax(a: number, b: number): number {
  return seqAfter(a, b) ? a : b;
}

/** The earlier of a and b. */
export function seqMin(a: number, b: number): number {
  return seqBefore(a, b) ? a : b;
}
