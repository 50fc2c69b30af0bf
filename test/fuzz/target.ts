/**
 * A fuzz target: an arbitrary (fast-check) and a check that throws when a property of the
 * decoder fails for one generated input. The unit suite runs each target a bounded number of
 * times and replays the saved failing inputs (test/fixtures/fuzz/); `npm run fuzz` runs them
 * for minutes (test/fuzz-main.ts) and saves what fails.
 */
import fc from 'fast-check';

export interface FuzzTarget<T = unknown> {
  /** Unique name; a saved case names the target it failed. */
  readonly name: string;
  /** The properties checked, in a few words (test names, fuzz output). */
  readonly says: string;
  /** Generates inputs. */
  readonly arb: fc.Arbitrary<T>;
  /** Throws (an assertion) when a property does not hold for `input`. */
  check(input: T): void | Promise<void>;
  /** Cases per `npm test` run (the unit suite's whole fuzz share is a few seconds). */
  readonly unitRuns: number;
}

/** Erases the input type so that targets of different inputs fit one list (check is a method: bivariant). */
export function target<T>(t: FuzzTarget<T>): FuzzTarget {
  return t;
}

/** The fast-check property of a target (async, so sync and async checks run alike). */
export function propertyOf(t: FuzzTarget, onCase?: () => void): fc.IAsyncPropertyWithHooks<[unknown]> {
  return fc.asyncProperty(t.arb, async (v) => {
    onCase?.();
    await t.check(v);
  });
}

/** Splits `len` bytes into chunks at the given cut points (any numbers; reduced modulo len+1). */
export function chunkBounds(len: number, cuts: readonly number[]): [number, number][] {
  const at = [...new Set(cuts.map((c) => Math.abs(c) % (len + 1)))].sort((a, b) => a - b);
  const out: [number, number][] = [];
  let p = 0;
  for (const c of at) {
    if (c > p) out.push([p, c]);
    p = Math.max(p, c);
  }
  if (p < len || len === 0) out.push([p, len]);
  return out;
}

/** Arbitrary cut points for chunkBounds (0..12 cuts, some tiny chunks). */
export const cutsArb: fc.Arbitrary<number[]> = fc.array(fc.nat({ max: 100_000 }), { maxLength: 12 });

/** A few byte mutations applied to a valid encoding (hostile input that is mostly well-formed). */
export type Mutation =
  | { op: 'flip'; at: number; mask: number }
  | { op: 'set32'; at: number; value: number; le: boolean }
  | { op: 'arith'; at: number; width: 1 | 2 | 4; delta: number; le: boolean }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; n: number }
  | { op: 'truncate'; keep: number };

/** Interesting 32-bit values for length and timestamp fields. */
const INTERESTING32 = [
  0, 1, 4, 8, 12, 16, 20, 28, 32, 0x7fff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffff0, 0xffffffff,
];

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), mask: fc.integer({ min: 1, max: 255 }) }),
  fc.record({
    op: fc.constant('set32' as const),
    at: fc.nat(),
    value: fc.oneof(fc.constantFrom(...INTERESTING32), fc.nat({ max: 0xffffffff })),
    le: fc.boolean(),
  }),

  fc.record({
    op: fc.constant('arith' as const),
    at: fc.oneof(
      fc.nat(),
      fc.nat().map((n) => n * 4),
    ),
    width: fc.constantFrom(1 as const, 2 as const, 4 as const),
    delta: fc.integer({ min: -35, max: 35 }).filter((d) => d !== 0),
    le: fc.boolean(),
  }),
  fc.record({
    op: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant('truncate' as const), keep: fc.nat() }),
);

/** Applies mutations in order (positions taken modulo the current length). */
export function mutate(src: Buffer, muts: readonly Mutation[]): Buffer {
  let b = Buffer.from(src);
  for (const m of muts) {
    const n = b.length;
    if (m.op === 'truncate') {
      b = b.subarray(0, n === 0 ? 0 : m.keep % (n + 1));
      continue;
    }
    if (m.op === 'insert') {
      const at = m.at % (n + 1);
      b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
      continue;
    }
    if (n === 0) continue;
    const at = m.at % n;
    if (m.op === 'flip') b[at] = (b[at] as number) ^ m.mask;
    else if (m.op === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(Math.min(n, at + m.n))]);
    else if (m.op === 'arith') {
      if (at + m.width > n) continue;
      if (m.width === 1) b[at] = ((b[at] as number) + m.delta) & 0xff;
      else if (m.width === 2) {
        const v = ((m.le ? b.readUInt16LE(at) : b.readUInt16BE(at)) + m.delta) & 0xffff;
        if (m.le) b.writeUInt16LE(v, at);
        else b.writeUInt16BE(v, at);
      } else {
        const v = ((m.le ? b.readUInt32LE(at) : b.readUInt32BE(at)) + m.delta) >>> 0;
        if (m.le) b.writeUInt32LE(v, at);
        else b.writeUInt32BE(v, at);
      }
    } else if (at + 4 <= n) {
      if (m.le) b.writeUInt32LE(m.value >>> 0, at);
      else b.writeUInt32BE(m.value >>> 0, at);
    }
  }
  return b;
}
