/**
 * `--compare` and the `--compare-*` options (issue 15, doc/compare.md): their rows of tcpcopy's
 * option table and their parsing into the frozen CompareChoice of TcpcopyConfig. None of them
 * is the original's: the original TCPCopy cannot compare responses.
 */
import { COMPARE_DEFAULTS, compareConfig, type CompareMode, type NoiseSource } from '../compare/config';
import { buildRules, CompareRuleError } from '../compare/rules';
import { TcpcopyError } from '../core/errors';
import { ipToString } from '../core/wire/segment';
import type { CompareChoice, ModuleChoice, Transfer } from '../config/tcpcopy-config';
import { badOption, choiceArg, intArg, numArg, optionError, type OptionSpec, type ParsedOptions } from './option-table';

const D = COMPARE_DEFAULTS;
/** Default of --compare-diffs-max: most lines written to diffs.jsonl. */
export const COMPARE_DIFFS_MAX = 100_000;

/** The rows of the option table (group Comparison). */
export function compareOptionRows<G extends string>(group: G): OptionSpec<G>[] {
  const rows: Omit<OptionSpec<G>, 'group'>[] = [
    {
      long: 'compare',
      kind: 'string',
      arg: 'http|bytes',
      doc: "compare the target's responses with production's, request by request (doc/compare.md): HTTP/1.1 exchanges, or any protocol's as bytes; captures the online server's replies too",
      def: 'off',
    },
    {
      long: 'compare-out',
      kind: 'string',
      arg: 'DIR',
      doc: 'write diffs.jsonl, summary.json and report.html to DIR (created); `tcpcopy compare-report DIR` renders report.html again',
      def: 'none (the report section only)',
    },
    {
      long: 'compare-ignore-header',
      kind: 'string',
      multiple: true,
      arg: 'NAME[=REGEX]',
      doc: 'do not count a difference in this header (when both values match REGEX, if given); repeatable; adds to the default ignored headers (Date, Age, Expires, Server, Set-Cookie, ETag, X-Request-Id, Connection, Keep-Alive, Transfer-Encoding, Content-Length)',
    },
    {
      long: 'compare-all-headers',
      kind: 'boolean',
      doc: 'compare the default ignored headers too',
    },
    {
      long: 'compare-ignore-path',
      kind: 'string',
      multiple: true,
      arg: 'JSONPATH[=REGEX]',
      doc: 'do not count a difference at this JSON path or below it (`$.meta.time`, `$.items[*].id`, `$.*.ts`; when both values match REGEX, if given); repeatable',
    },
    {
      long: 'compare-endpoint',
      kind: 'string',
      multiple: true,
      arg: 'REGEX=NAME',
      doc: 'name the endpoint of paths matching REGEX (default: method and path, numeric and UUID segments as :id); repeatable, the first match wins',
    },
    {
      long: 'compare-reference',
      kind: 'string',
      arg: 'IP:PORT',
      doc: 'noise from a second target: the -x target at IP:PORT (the old release, beside the new one on the same online port) is the reference; a difference counts only where production vs the new one differs more than production vs the reference',
      def: 'off',
    },
    {
      long: 'compare-replicas',
      kind: 'boolean',
      doc: "noise from one target's replicas (needs -n 2 or more): replica 1 vs replica 0 is the noise floor of replica 0's differences",
    },
    {
      long: 'compare-relative',
      kind: 'string',
      arg: 'PERCENT',
      doc: 'with noise: a field differs only if |raw - noise| / (raw + noise) is above PERCENT (Diffy)',
      def: String(D.relativeThreshold),
    },
    {
      long: 'compare-absolute',
      kind: 'string',
      arg: 'PERCENT',
      doc: 'with noise: ... and |raw - noise| / compared exchanges is above PERCENT (Diffy)',
      def: String(D.absoluteThreshold),
    },
    {
      long: 'compare-body-max',
      kind: 'string',
      arg: 'BYTES',
      doc: 'body bytes kept per response; a longer response (or one whose reply payload intercept cut: its --payload-max) is skipped as truncated',
      def: String(D.bodyMax),
    },
    {
      long: 'compare-session-max',
      kind: 'string',
      arg: 'BYTES',
      doc: 'bytes one session may hold of answers waiting for their other side; beyond, its exchanges are skipped as memory',
      def: String(D.sessionMax),
    },
    {
      long: 'compare-memory-max',
      kind: 'string',
      arg: 'MB',
      doc: 'MiB all sessions together may hold of such answers; beyond, exchanges are skipped as memory',
      def: String(D.memoryMax / (1024 * 1024)),
    },
    {
      long: 'compare-keep-bodies',
      kind: 'string',
      arg: 'BYTES',
      doc: 'bytes of both bodies kept per differing exchange in diffs.jsonl (0 = none)',
      def: String(D.keepBodies),
    },
    {
      long: 'compare-diffs-max',
      kind: 'string',
      arg: 'N',
      doc: 'most lines written to diffs.jsonl (further differing exchanges are counted, not written)',
      def: String(COMPARE_DIFFS_MAX),
    },
  ];
  return rows.map((r) => ({ ...r, group }));
}

/** The options only --compare gives meaning to. */
const DEPENDENT = compareOptionRows('x')
  .map((r) => r.long)
  .filter((l) => l !== 'compare');
/** Those that need --compare http. */
const HTTP_ONLY = ['compare-ignore-header', 'compare-all-headers', 'compare-ignore-path', 'compare-endpoint'];

function flagOf(o: ParsedOptions, long: string): string {
  return o.list(long)[0] ?? '';
}

/** Parses `IP:PORT` of --compare-reference and checks that it is a -x target sharing its online port with another. */
function parseReference(text: string, transfers: readonly Transfer[]): string {
  const m = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(text);
  if (m === null)
    throw badOption('--compare-reference', text, 'IP:PORT of one of the -x targets, e.g. 198.18.0.5:8080');
  const ref = transfers.find((t) => `${ipToString(t.targetIp)}:${t.targetPort}` === text);
  if (ref === undefined)
    throw optionError(
      '--compare-reference',
      text,
      'is not a -x target (give the old release as a second target, e.g. -x 80-OLD:8080,80-NEW:8080)',
    );
  const peers = transfers.filter((t) => t !== ref && t.onlinePort === ref.onlinePort && t.onlineIp === ref.onlineIp);
  if (peers.length === 0)
    throw optionError(
      '--compare-reference',
      text,
      `needs another -x target for online port ${ref.onlinePort}: the new release, e.g. -x ${ref.onlinePort}-${text},${ref.onlinePort}-NEW_IP:PORT`,
    );
  return text;
}

/** Built-in modules whose protocol is not HTTP (`--compare http` is refused with them). */
const NOT_HTTP: readonly string[] = ['mysql', 'postgres', 'redis'];

/**
 * `--compare` and its options; null without --compare (then every --compare-* option is an
 * error naming --compare). Rules are checked here (ERR_BAD_OPTION naming the option).
 */
export function parseCompareChoice(
  o: ParsedOptions,
  transfers: readonly Transfer[],
  replicas: number,
  module: ModuleChoice | null,
): CompareChoice | null {
  const modeText = o.str('compare');
  if (modeText === undefined) {
    const k = DEPENDENT.find((l) => o.given(l));
    if (k !== undefined) throw optionError(`--${k}`, flagOf(o, k), 'needs --compare http or --compare bytes');
    return null;
  }
  const mode = choiceArg<CompareMode>('--compare', modeText, 'http', ['http', 'bytes']);
  if (!o.given('secret-file'))
    throw optionError(
      '--compare',
      modeText,
      "needs channel v2 for the target's reply payloads: --secret-file FILE here and on intercept (with --payload-max 65535 there)",
    );
  // beside a protocol module the comparison observes the captured conversation (withCompare);
  // the built-in protocols answer in their own binary framing, not HTTP
  if (module !== null && module.builtin && mode === 'http' && NOT_HTTP.includes(module.spec))
    throw optionError(
      '--compare',
      modeText,
      `--module ${module.spec} speaks the ${module.spec} protocol, not HTTP: use --compare bytes with it (each exchange compared by length and hash)`,
    );
  if (mode === 'bytes') {
    const k = HTTP_ONLY.find((l) => o.given(l));
    if (k !== undefined)
      throw optionError(`--${k}`, flagOf(o, k), 'needs --compare http (bytes mode has no headers, paths or endpoints)');
  }
  let rules;
  try {
    rules = buildRules({
      ignoreHeaders: o.list('compare-ignore-header'),
      ignorePaths: o.list('compare-ignore-path'),
      endpoints: o.list('compare-endpoint'),
      noDefaultIgnores: o.bool('compare-all-headers'),
    });
  } catch (e) {
    if (e instanceof CompareRuleError) throw new TcpcopyError('ERR_BAD_OPTION', e.message);
    throw e;
  }
  const refText = o.str('compare-reference');
  const reference = refText === undefined ? null : parseReference(refText, transfers);
  const byReplicas = o.bool('compare-replicas');
  if (reference !== null && byReplicas)
    throw optionError('--compare-replicas', '', 'and --compare-reference are two noise sources: give one');
  if (byReplicas && replicas < 2)
    throw optionError('--compare-replicas', '', `needs -n 2 or more (each session replayed twice); -n is ${replicas}`);
  const noise: NoiseSource = reference !== null ? 'reference' : byReplicas ? 'replicas' : 'off';
  const out = o.str('compare-out');
  if (out === '') throw badOption('--compare-out', "''", 'a directory');
  const settings = compareConfig(mode, rules, {
    noise,
    reference,
    relativeThreshold: numArg('--compare-relative', o.str('compare-relative'), D.relativeThreshold, 0, 100),
    absoluteThreshold: numArg('--compare-absolute', o.str('compare-absolute'), D.absoluteThreshold, 0, 100),
    bodyMax: intArg('--compare-body-max', o.str('compare-body-max'), D.bodyMax, 1, 64 << 20),
    sessionMax: intArg('--compare-session-max', o.str('compare-session-max'), D.sessionMax, 1024, 1 << 30),
    memoryMax:
      intArg('--compare-memory-max', o.str('compare-memory-max'), D.memoryMax / (1 << 20), 1, 65536) * (1 << 20),
    keepBodies: intArg('--compare-keep-bodies', o.str('compare-keep-bodies'), D.keepBodies, 0, 1 << 20),
  });
  return Object.freeze({
    settings,
    outDir: out ?? null,
    diffsMax: intArg('--compare-diffs-max', o.str('compare-diffs-max'), COMPARE_DIFFS_MAX, 0, 100_000_000),
  });
}
