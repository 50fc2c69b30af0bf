/**
 * Nearest-rank percentile of `sorted` (ascending): the smallest value such that at least `p`
 * percent of the values are <= it; `p` in percent (0..100, clamped), e.g. 99 for p99. NaN when
 * `sorted` is empty or `p` is NaN.
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0 || Number.isNaN(p)) return NaN;
  const rank = Math.min(n, Math.max(1, Math.ceil((p * n) / 100)));
  return sorted[rank - 1] as number;
}
