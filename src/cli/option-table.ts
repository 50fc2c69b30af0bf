/**
 * The table machinery both command lines (tcpcopy and intercept) share: an option table drives
 * argv parsing (node:util parseArgs, so `-x 80-...`, `-x80-...` and `--transfer=...` all work as
 * with the original's getopt), the help text, and the check that doc/usage.md lists every option
 * with the same default. Value checks (`intArg`, `numArg`) give one message shape for both.
 */
import { parseArgs } from 'node:util';
import { TcpcopyError } from '../core/errors';

/** One command-line option. */
export interface OptionSpec<G extends string = string> {
  /** Original single-letter flag, when the original had one. */
  readonly short?: string;
  /** Long name (always present). */
  readonly long: string;
  readonly kind: 'string' | 'boolean';
  /** May be given several times; the values are kept in order (`list()`). */
  readonly multiple?: boolean;
  /** Help group. */
  readonly group: G;
  /** Argument placeholder in help, e.g. 'N', 'MS'. */
  readonly arg?: string;
  /** What it does, with the unit. */
  readonly doc: string;
  /** Default, as shown in help and in doc/usage.md; derived from the typed defaults in src/config/. */
  readonly def?: string;
}

/** The parsed command line, read by long name. */
export interface ParsedOptions {
  /** The value of a string option; undefined when not given (the last one when given twice). */
  str(long: string): string | undefined;
  /** Whether a boolean option was given. */
  bool(long: string): boolean;
  /** Every value of a `multiple` option, in order. */
  list(long: string): readonly string[];
  /** Whether the option was given at all. */
  given(long: string): boolean;
}

/** A number that starts with a minus sign, e.g. `-5` or `-0.5`. */
const NEGATIVE_NUMBER = /^-\.?\d/;

/**
 * parseArgs refuses an option value that starts with `-` ("argument is ambiguous"), so
 * `--nice -5` and `-n -1` would never reach the range check; such a value is joined to its
 * option (`--nice=-5`) so that the range check names the option and the allowed range.
 */
function joinNegativeValues(table: readonly OptionSpec[], argv: readonly string[]): string[] {
  const byFlag = new Map<string, OptionSpec>();
  for (const o of table) {
    if (o.kind !== 'string') continue;
    byFlag.set(`--${o.long}`, o);
    if (o.short !== undefined) byFlag.set(`-${o.short}`, o);
  }
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const o = byFlag.get(a);
    const next = argv[i + 1];
    if (o !== undefined && next !== undefined && NEGATIVE_NUMBER.test(next)) {
      out.push(`--${o.long}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** Parses argv against the table; throws ERR_BAD_OPTION (naming `prog --help`) for unknown or incomplete options. */
export function parseOptionTable(prog: string, table: readonly OptionSpec[], argv: readonly string[]): ParsedOptions {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const o of table) {
    options[o.long] = {
      type: o.kind,
      ...(o.short !== undefined ? { short: o.short } : {}),
      ...(o.multiple === true ? { multiple: true } : {}),
    };
  }
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({ args: joinNegativeValues(table, argv), options, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new TcpcopyError(
      'ERR_BAD_OPTION',
      `${(e as Error).message.replace(/\. To specify.*$/s, '')}; see ${prog} --help`,
    );
  }
  const known = new Set(table.map((o) => o.long));
  const get = (long: string): unknown => {
    if (!known.has(long)) throw new Error(`${prog}: no option --${long} in the table`);
    return values[long];
  };
  return {
    str: (long) => {
      const v = get(long);
      if (Array.isArray(v)) return typeof v[v.length - 1] === 'string' ? (v[v.length - 1] as string) : undefined;
      return typeof v === 'string' ? v : undefined;
    },
    bool: (long) => get(long) === true,
    list: (long) => {
      const v = get(long);
      if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
      return typeof v === 'string' ? [v] : [];
    },
    given: (long) => get(long) !== undefined,
  };
}

/** An ERR_BAD_OPTION error: `FLAG VALUE: WHY`. */
export function optionError(flag: string, value: string, why: string): TcpcopyError {
  return new TcpcopyError('ERR_BAD_OPTION', `${flag} ${value}: ${why}`, { option: flag, value });
}

/** An ERR_BAD_OPTION error: `FLAG VALUE: expected WHAT`. */
export function badOption(flag: string, value: string, expected: string): TcpcopyError {
  return optionError(flag, value, `expected ${expected}`);
}

/** The range part of a message: `an integer 1..11`, or `a TCP port in 1..65535` when `what` is given. */
function rangeText(kind: string, what: string | undefined, min: number, max: number): string {
  return what === undefined ? `${kind} ${min}..${max}` : `${what} in ${min}..${max}`;
}

/** An integer option (decimal digits, optional minus sign) within min..max; `def` when not given. */
export function intArg(
  flag: string,
  text: string | undefined,
  def: number,
  min: number,
  max: number,
  what?: string,
): number {
  if (text === undefined) return def;
  const v = Number(text);
  if (!/^-?\d+$/.test(text) || v < min || v > max) throw badOption(flag, text, rangeText('an integer', what, min, max));
  return v;
}

/** A finite number option within min..max; `def` when not given. */
export function numArg(flag: string, text: string | undefined, def: number, min: number, max: number): number {
  if (text === undefined) return def;
  const v = Number(text);
  if (text.trim() === '' || !Number.isFinite(v) || v < min || v > max)
    throw badOption(flag, text, rangeText('a number', undefined, min, max));
  return v;
}

/** One of a fixed set of words; `def` when not given. */
export function choiceArg<T extends string>(flag: string, text: string | undefined, def: T, choices: readonly T[]): T {
  if (text === undefined) return def;
  if (!(choices as readonly string[]).includes(text))
    throw badOption(flag, text, `${choices.slice(0, -1).join(', ')} or ${choices[choices.length - 1] ?? ''}`);
  return text as T;
}

/** Help lines for the table, grouped in the order groups first appear: `  -x, --long ARG   doc (default: D)`. */
export function optionHelpLines(table: readonly OptionSpec[], width = 40): string[] {
  const lines: string[] = [];
  for (const g of [...new Set(table.map((o) => o.group))]) {
    lines.push(`${g}:`);
    for (const o of table.filter((x) => x.group === g)) {
      const flag = `${o.short !== undefined ? `-${o.short}, ` : '    '}--${o.long}${o.arg !== undefined ? ` ${o.arg}` : ''}`;
      lines.push(`  ${flag.padEnd(width)} ${o.doc}${o.def !== undefined ? ` (default: ${o.def})` : ''}`);
    }
    lines.push('');
  }
  return lines;
}
