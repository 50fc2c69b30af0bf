/**
 * The doctor's result values and their two renderings (text lines, JSON). Pure: the commands
 * in tcpcopy-doctor.ts / intercept-doctor.ts gather facts, the check functions turn facts
 * into CheckResults, this file prints them and computes the exit status.
 */

/** How bad a finding is: `fail` blocks replay (exit status 1), `warn` may hurt, `ok` is fine, `skip` could not be tested. */
export type Verdict = 'ok' | 'warn' | 'fail' | 'skip';

/** One check's outcome. */
export interface CheckResult {
  /** Short stable name, e.g. 'ip_forward', 'route', 'rp_filter', 'firewall', 'probe'. */
  name: string;
  /** The verdict. */
  verdict: Verdict;
  /** What was found (facts, one line). */
  detail: string;
  /** For fail/warn: the command or setting that fixes it. */
  fix?: string;
}

/** Builds a CheckResult (leaves `fix` out when not given, for exactOptionalPropertyTypes). */
export function check(name: string, verdict: Verdict, detail: string, fix?: string): CheckResult {
  return fix === undefined ? { name, verdict, detail } : { name, verdict, detail, fix };
}

const TAGS: Readonly<Record<Verdict, string>> = { ok: '[ OK ]', warn: '[WARN]', fail: '[FAIL]', skip: '[SKIP]' };

/** `[ OK ] name: detail` lines, with an indented `fix:` line under fail/warn results. */
export function formatText(results: readonly CheckResult[]): string {
  const lines: string[] = [];
  for (const r of results) {
    lines.push(`${TAGS[r.verdict]} ${r.name}: ${r.detail}`);
    if (r.fix !== undefined && r.verdict !== 'ok') lines.push(`       fix: ${r.fix}`);
  }
  return lines.join('\n') + '\n';
}

/** The JSON document of `--json`: `{ ok, results, notes }`. */
export function formatJson(results: readonly CheckResult[], notes: readonly string[] = []): string {
  return JSON.stringify({ ok: exitStatus(results) === 0, results, notes }, null, 2) + '\n';
}

/** 1 when any result is `fail` (something blocks replay), else 0. */
export function exitStatus(results: readonly CheckResult[]): number {
  return results.some((r) => r.verdict === 'fail') ? 1 : 0;
}
