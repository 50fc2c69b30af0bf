/**
 * The comparison's text: one status-line fragment, the final report's section, and the
 * Prometheus counters. All read the same CompareCounts / CompareSummary.
 */
import { SKIP_REASONS } from './compare-http';
import type { CompareCounts, CompareSummary } from './summary';

function skippedText(c: CompareCounts): string {
  const parts = SKIP_REASONS.filter((r) => c.skipped[r] > 0).map((r) => `${r} ${c.skipped[r]}`);
  return parts.length === 0 ? '0' : parts.join(', ');
}

/** Status-line fragment: `cmp 120 =118 ≠2 skip 1`. */
export function compareStatus(c: CompareCounts): string {
  const s = Object.values(c.skipped).reduce((a, b) => a + b, 0);
  return `cmp ${c.compared} =${c.identical + c.noise} ≠${c.different}${s > 0 ? ` skip ${s}` : ''}`;
}

/**
 * What the latency figures measure (doc/compare.md "Latency"), with how many compared exchanges
 * were measured which way: the report's legend (text report and report.html).
 */
export function latencyLegend(s: CompareSummary): string[] {
  const c = s.latencyClocks;
  const n = (a: number, b: number): string => (c === undefined ? '' : ` [${a} of ${a + b} exchanges]`);
  return [
    'production: from the capture of the packet that completed the request (or of the previous response, if later) ' +
      "to the capture of the packet that completed the response, on the online host's capture clock (or the file's recorded times); " +
      `error: the capture's time stamp resolution${n(c?.onlineCapture ?? 0, c?.onlineEngine ?? 0)}` +
      (c !== undefined && c.onlineEngine > 0
        ? `; ${c.onlineEngine} measured in tcpcopy's engine time (the input gave no capture times: up to the capture block time off)`
        : ''),
    "target: from when tcpcopy could send the request (captured, or the target's previous response read, if later) " +
      "to intercept's capture of the packet that completed the target's response, moved onto tcpcopy's clock by the clock offset estimate " +
      "(never early; late by the fastest reply's intercept-to-tcpcopy delivery, typically under 1 ms on a LAN); includes the one-way path tcpcopy to target" +
      n(c?.targetStamped ?? 0, c?.targetRead ?? 0) +
      (c !== undefined && c.targetRead > 0
        ? `; ${c.targetRead} without intercept's stamps (a 1.x channel or an older intercept): when tcpcopy read the reply, which adds intercept's batching and the channel`
        : ''),
  ];
}

/** The final report's section: totals with the identity, then one block per endpoint with differences. */
export function compareReportText(s: CompareSummary): string {
  const t = s.totals;
  const skipped = Object.values(t.skipped).reduce((a, b) => a + b, 0);
  const out: string[] = [];
  out.push(
    `comparison (${s.mode}${s.noise === 'off' ? '' : `, noise from ${s.noise === 'reference' ? `reference ${s.reference ?? ''}` : 'two replicas'}`})`,
  );
  out.push(
    `  exchanges ${t.exchanges} = compared ${t.compared} + skipped ${skipped}${s.identity ? '' : '  (identity does NOT hold)'}`,
  );
  out.push(
    `  compared: identical ${t.identical}, different ${t.different}${s.noise === 'off' ? '' : `, noise only ${t.noise}`}`,
  );
  out.push(`  skipped: ${skippedText(t)}`);
  if ((s.rewrittenByModule ?? 0) > 0)
    out.push(
      `  made comparable by the module: ${s.rewrittenByModule} (target replies that differ by nature, e.g. statement ids)`,
    );
  if (s.memory !== undefined)
    out.push(
      `  memory: peak ${(s.memory.peakHeldBytes / 1024).toFixed(0)} KiB held of ${(s.memory.maxBytes / 1048576).toFixed(0)} MiB (--compare-memory-max)`,
    );
  out.push(
    '  endpoint                          exchanges  different  production ms p50/p90/p99      target ms p50/p90/p99',
  );
  for (const e of s.endpoints) {
    const c = e.counts;
    const lo = e.latency.online;
    const lt = e.latency.target;
    out.push(
      `  ${e.endpoint.padEnd(32).slice(0, 32)}  ${String(c.exchanges).padStart(9)}  ${String(c.different).padStart(9)}  ${`${lo.p50}/${lo.p90}/${lo.p99}`.padStart(26)}  ${`${lt.p50}/${lt.p90}/${lt.p99}`.padStart(22)}`,
    );
    for (const f of e.fields) {
      const ex = f.examples[0];
      const eg = ex ? `  e.g. ${ex.path}: ${ex.a ?? '(none)'} -> ${ex.b ?? '(none)'}` : '';
      out.push(
        `      ${f.isNoise ? 'noise ' : 'differs'} ${f.field} in ${f.raw}${s.noise === 'off' ? '' : ` (noise ${f.noise})`}${eg}`,
      );
    }
  }
  if (s.statusMatrix.some((m) => m.online !== m.target)) {
    out.push('  status production -> target:');
    for (const m of s.statusMatrix) if (m.online !== m.target) out.push(`      ${m.online} -> ${m.target}: ${m.count}`);
  }
  out.push('  latency legend:');
  for (const l of latencyLegend(s)) out.push(`    ${l}`);
  return out.join('\n');
}

/** Prometheus text lines for the comparison counters. */
export function compareMetrics(c: CompareCounts): string {
  const l: string[] = [
    '# HELP tcpcopy_compare_exchanges_total Exchanges seen by the comparison (compared + skipped).',
    '# TYPE tcpcopy_compare_exchanges_total counter',
    `tcpcopy_compare_exchanges_total ${c.exchanges}`,
    '# HELP tcpcopy_compare_result_total Compared exchanges by result (difference results before the final noise judgement).',
    '# TYPE tcpcopy_compare_result_total counter',
    `tcpcopy_compare_result_total{result="identical"} ${c.identical + c.noise}`,
    `tcpcopy_compare_result_total{result="different"} ${c.different}`,
    '# HELP tcpcopy_compare_skipped_total Exchanges not compared, by reason.',
    '# TYPE tcpcopy_compare_skipped_total counter',
  ];
  for (const r of SKIP_REASONS) l.push(`tcpcopy_compare_skipped_total{reason="${r}"} ${c.skipped[r]}`);
  return `${l.join('\n')}\n`;
}
