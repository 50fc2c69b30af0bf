/**
 * The comparison's settings (`--compare` and the `--compare-*` options), frozen at start-up.
 */
import type { CompareRules } from './rules';

/** What is compared: HTTP/1.1 exchanges, or any protocol's exchanges as bytes. */
export type CompareMode = 'http' | 'bytes';

/** Where the noise floor comes from. */
export type NoiseSource =
  /** No noise cancellation: every difference counts. */
  | 'off'
  /** Two targets: production vs the reference (old release) is the noise (`--compare-reference`). */
  | 'reference'
  /** One target, two replicas (`-n 2`): replica 0 vs replica 1 is the noise. */
  | 'replicas';

export interface CompareConfig {
  readonly mode: CompareMode;
  readonly rules: CompareRules;
  readonly noise: NoiseSource;
  /** With noise 'reference': the reference target as `ip:port` (`--compare-reference`). */
  readonly reference: string | null;
  /** A field is a difference only if |raw-noise|/(raw+noise) exceeds this, in % (`--compare-relative`, default 20, Diffy's). */
  readonly relativeThreshold: number;
  /** ...and |raw-noise|/exchanges exceeds this, in % (`--compare-absolute`, default 0.03, Diffy's). */
  readonly absoluteThreshold: number;
  /** Body bytes kept per response (`--compare-body-max`, bytes, default 64 KiB); longer ones are skipped as truncated. */
  readonly bodyMax: number;
  /** Bytes one session may hold for unpaired answers (`--compare-session-max`, default 1 MiB). */
  readonly sessionMax: number;
  /** Bytes all sessions together may hold (`--compare-memory-max`, default 64 MiB). */
  readonly memoryMax: number;
  /** Bytes of each body kept in diffs.jsonl for differing exchanges (`--compare-keep-bodies`, default 2048; 0: none). */
  readonly keepBodies: number;
  /** Exchanges waiting for their other replica, at most (then compared alone). Default 10000. */
  readonly pendingMax: number;
}

export const COMPARE_DEFAULTS = Object.freeze({
  relativeThreshold: 20,
  absoluteThreshold: 0.03,
  bodyMax: 64 * 1024,
  sessionMax: 1024 * 1024,
  memoryMax: 64 * 1024 * 1024,
  keepBodies: 2048,
  pendingMax: 10000,
});

/** A config from the mode and rules, defaults for the rest. */
export function compareConfig(
  mode: CompareMode,
  rules: CompareRules,
  over: Partial<Omit<CompareConfig, 'mode' | 'rules'>> = {},
): CompareConfig {
  return Object.freeze({ mode, rules, noise: 'off', reference: null, ...COMPARE_DEFAULTS, ...over });
}
