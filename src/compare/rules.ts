/**
 * What the comparison ignores and how it names endpoints: the default ignored headers, the
 * user's `--compare-ignore-header NAME[=REGEX]` and `--compare-ignore-path JSONPATH[=REGEX]`
 * rules, and `--compare-endpoint REGEX=NAME` overrides of the endpoint names.
 */

/**
 * Headers ignored by default: they differ between any two servers or any two moments (Date,
 * Age, Expires, Server, Set-Cookie, ETag, X-Request-Id), describe the connection (Connection,
 * Keep-Alive, Transfer-Encoding), or the encoded body (Content-Length: bodies are compared
 * decoded).
 */
export const DEFAULT_IGNORED_HEADERS: readonly string[] = [
  'date',
  'age',
  'expires',
  'server',
  'set-cookie',
  'etag',
  'x-request-id',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
];

/** One ignore rule: a name or path, and optionally a regex both values must match (null: always). */
export interface IgnoreRule {
  readonly pattern: RegExp;
  readonly values: RegExp | null;
  /** The rule as given, for the report. */
  readonly text: string;
}

/** An endpoint override: a request path matching `pattern` is named `name` (with the method before it). */
export interface EndpointRule {
  readonly pattern: RegExp;
  readonly name: string;
}

/** The rules of one comparison (frozen at start-up). */
export interface CompareRules {
  readonly ignoreHeaders: readonly IgnoreRule[];
  readonly ignorePaths: readonly IgnoreRule[];
  readonly endpoints: readonly EndpointRule[];
}

/** A bad rule: thrown at start-up with the option, the value and the fix. */
export class CompareRuleError extends Error {
  readonly code = 'ERR_COMPARE_RULE';
}

function splitRule(opt: string, text: string): [string, RegExp | null] {
  const eq = text.indexOf('=');
  const name = eq < 0 ? text : text.slice(0, eq);
  if (name === '') throw new CompareRuleError(`${opt} ${text}: expected NAME[=REGEX], got an empty name`);
  if (eq < 0) return [name, null];
  try {
    return [name, new RegExp(text.slice(eq + 1))];
  } catch (e) {
    throw new CompareRuleError(`${opt} ${text}: bad regular expression (${(e as Error).message})`);
  }
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * A JSONPath pattern as a regex over concrete paths: `[*]` matches any index, `.*` any key,
 * a trailing `..` nothing special; `$.a` also covers everything below `$.a`.
 */
export function jsonPathPattern(p: string): RegExp {
  if (!p.startsWith('$'))
    throw new CompareRuleError(`--compare-ignore-path ${p}: a JSONPath starts with $ (e.g. $.items[*].id)`);
  let re = '';
  for (let i = 0; i < p.length;) {
    if (p.startsWith('[*]', i)) {
      re += '\\[\\d+\\]';
      i += 3;
    } else if (p.startsWith('.*', i)) {
      re += '(?:\\.[A-Za-z_$][A-Za-z0-9_$]*|\\["(?:[^"\\\\]|\\\\.)*"\\])';
      i += 2;
    } else {
      re += escape(p[i] as string);
      i++;
    }
  }
  return new RegExp(`^${re}(?:$|[.[])`);
}

/** Builds the rules from the option values (each as given on the command line). */
export function buildRules(
  opts: {
    ignoreHeaders?: readonly string[];
    ignorePaths?: readonly string[];
    endpoints?: readonly string[];
    /** Drop the default ignored headers (compare them all). Default false. */
    noDefaultIgnores?: boolean;
  } = {},
): CompareRules {
  const ignoreHeaders: IgnoreRule[] = [];
  if (opts.noDefaultIgnores !== true)
    for (const h of DEFAULT_IGNORED_HEADERS)
      ignoreHeaders.push({ pattern: new RegExp(`^${escape(h)}$`), values: null, text: h });
  for (const t of opts.ignoreHeaders ?? []) {
    const [name, values] = splitRule('--compare-ignore-header', t);
    ignoreHeaders.push({ pattern: new RegExp(`^${escape(name.toLowerCase())}$`), values, text: t });
  }
  const ignorePaths: IgnoreRule[] = [];
  for (const t of opts.ignorePaths ?? []) {
    const [path, values] = splitRule('--compare-ignore-path', t);
    ignorePaths.push({ pattern: jsonPathPattern(path), values, text: t });
  }
  const endpoints: EndpointRule[] = [];
  for (const t of opts.endpoints ?? []) {
    const eq = t.lastIndexOf('=');
    if (eq <= 0 || eq === t.length - 1)
      throw new CompareRuleError(
        `--compare-endpoint ${t}: expected REGEX=NAME (e.g. ^/api/v[0-9]+/items=/api/:v/items)`,
      );
    try {
      endpoints.push({ pattern: new RegExp(t.slice(0, eq)), name: t.slice(eq + 1) });
    } catch (e) {
      throw new CompareRuleError(`--compare-endpoint ${t}: bad regular expression (${(e as Error).message})`);
    }
  }
  return Object.freeze({ ignoreHeaders, ignorePaths, endpoints });
}

/** True when a difference of `name` (lower case) or `path` between values a and b is ignored by `rules`. */
export function ignored(
  rules: readonly IgnoreRule[],
  key: string,
  a: string | undefined,
  b: string | undefined,
): boolean {
  for (const r of rules) {
    if (!r.pattern.test(key)) continue;
    if (r.values === null) return true;
    if ((a === undefined || r.values.test(a)) && (b === undefined || r.values.test(b))) return true;
  }
  return false;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The endpoint of a request: its method and path without the query, with numeric and UUID
 * segments collapsed to `:id` (`GET /users/123` -> `GET /users/:id`); the first matching
 * `--compare-endpoint` rule names it instead.
 */
export function endpointName(method: string, target: string, rules: CompareRules): string {
  let path = target;
  const q = path.search(/[?#]/);
  if (q >= 0) path = path.slice(0, q);
  if (/^[a-z]+:\/\//i.test(path)) path = path.replace(/^[a-z]+:\/\/[^/]*/i, '') || '/';
  for (const r of rules.endpoints) if (r.pattern.test(path)) return `${method} ${r.name}`;
  const segs = path.split('/').map((s) => (/^\d+$/.test(s) || UUID.test(s) ? ':id' : s));
  return `${method} ${segs.join('/')}`;
}
