/**
 * The runner's side of `--compare` (doc/compare.md): the Comparison, its module (which asks
 * for the target's reply payloads and production's replies), the `--compare-out` files, and
 * the comparison's parts of the status line, the final report and the metrics.
 */
import { Comparison } from '../compare/comparison';
import { compareModule, withCompare } from '../compare/module';
import { CompareOut } from '../compare/out-files';
import { compareMetrics, compareReportText, compareStatus } from '../compare/report-text';
import type { CompareSummary } from '../compare/summary';
import type { CompareChoice } from '../config/tcpcopy-config';
import type { ProtocolModule } from '../modules/api';

export class CompareRun {
  readonly comparison: Comparison;
  readonly module: ProtocolModule;
  private readonly out: CompareOut | null;
  private final: CompareSummary | null = null;

  /** Creates the output directory (a failure is a start-up error naming --compare-out). */
  constructor(readonly choice: CompareChoice) {
    this.out = choice.outDir !== null ? new CompareOut(choice.outDir) : null;
    const sink = this.out !== null ? this.out.line : (): void => {};
    this.comparison = new Comparison(choice.settings, sink, choice.diffsMax);
    this.module = compareModule(this.comparison);
  }

  /**
   * The module the engine runs: the comparison's own, or with `--module` the protocol module
   * composed with it (withCompare: the protocol module decides, the comparison observes).
   */
  moduleBeside(inner: ProtocolModule | null): ProtocolModule {
    return inner === null ? this.module : withCompare(inner, this.comparison);
  }

  /** The status-line fragment (`cmp 120 =118 ≠2 skip 1`). */
  status(): string {
    return compareStatus(this.comparison.counts());
  }

  /** Prometheus lines (live counts). */
  metrics(): string {
    return compareMetrics(this.final?.totals ?? this.comparison.counts());
  }

  /** Peak bytes held for unpaired answers (the memory caps' measure). */
  get peakHeldBytes(): number {
    return this.comparison.peakHeld;
  }

  /**
   * Once every session has ended: settles exchanges waiting for a partner, judges noise and
   * writes summary.json and report.html. Returns the summary (also kept for the report).
   */
  async finish(): Promise<CompareSummary> {
    if (this.final !== null) return this.final;
    this.comparison.finish();
    const s = this.comparison.summary();
    this.final = s;
    if (this.out !== null) await this.out.finish(s);
    return s;
  }

  /** The result, once finish() ran (null before). */
  get finalSummary(): CompareSummary | null {
    return this.final;
  }

  /** The final report's section (after finish()), with where the files went. */
  reportText(): string {
    if (this.final === null) return '';
    const where = this.out !== null ? `\n  files      ${this.out.dir}/{diffs.jsonl,summary.json,report.html}` : '';
    return compareReportText(this.final) + where;
  }
}
