/**
 * `node dist/src/lab/loadgen-main.js --url http://198.18.1.1:80/ --requests 10000 --duration-ms 10000 ...`
 *
 * Runs the lab load generator and prints its summary as one JSON line on stdout.
 * Options (all map to {@link LoadOptions}):
 *   --url URL                 base URL (required)
 *   --requests N              maximum requests (required)
 *   --duration-ms MS          maximum time (required)
 *   --concurrency N           connections in parallel (default 8)
 *   --close                   one request per connection (Connection: close); default keep-alive
 *   --rate N                  requests per second cap
 *   --path P                  request path, repeatable; or --paths P1,P2,...
 *   --body-bytes N            POST body size
 *   --method M                method override
 *   --local-address A         source address, repeatable; or --local-addresses A1,A2,...
 *   --timeout-ms MS           per-request time limit (default 5000)
 *   --header 'Name: value'    extra header, repeatable
 * Exit code 0 when it ran (even with request errors), 2 on bad options.
 */
import { TcpcopyError } from '../core/errors';
import { runLoad, type LoadOptions } from './loadgen';

/** Parses loadgen-main's argv into LoadOptions; throws ERR_LAB_LOAD_OPTION. */
export function parseLoadArgs(argv: readonly string[]): LoadOptions {
  let url: string | undefined;
  let requests: number | undefined;
  let durationMs: number | undefined;
  const paths: string[] = [];
  const addrs: string[] = [];
  const headers: Record<string, string> = {};
  const rest: Partial<LoadOptions> = {};
  const num = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || v === '' || !Number.isFinite(n))
      throw new TcpcopyError('ERR_LAB_LOAD_OPTION', `${flag} ${String(v)}: expected a number`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new TcpcopyError('ERR_LAB_LOAD_OPTION', `${a}: missing value`);
      return x;
    };
    switch (a) {
      case '--url':
        url = v();
        break;
      case '--requests':
        requests = num(a, v());
        break;
      case '--duration-ms':
        durationMs = num(a, v());
        break;
      case '--concurrency':
        rest.concurrency = num(a, v());
        break;
      case '--close':
        rest.keepAlive = false;
        break;
      case '--keep-alive':
        rest.keepAlive = true;
        break;
      case '--rate':
        rest.rate = num(a, v());
        break;
      case '--path':
        paths.push(v());
        break;
      case '--paths':
        paths.push(
          ...v()
            .split(',')
            .filter((s) => s !== ''),
        );
        break;
      case '--body-bytes':
        rest.bodyBytes = num(a, v());
        break;
      case '--method':
        rest.method = v();
        break;
      case '--local-address':
        addrs.push(v());
        break;
      case '--local-addresses':
        addrs.push(
          ...v()
            .split(',')
            .filter((s) => s !== ''),
        );
        break;
      case '--timeout-ms':
        rest.timeoutMs = num(a, v());
        break;
      case '--header': {
        const h = v();
        const c = h.indexOf(':');
        if (c < 1) throw new TcpcopyError('ERR_LAB_LOAD_OPTION', `--header ${h}: expected 'Name: value'`);
        headers[h.slice(0, c).trim()] = h.slice(c + 1).trim();
        break;
      }
      default:
        throw new TcpcopyError('ERR_LAB_LOAD_OPTION', `unknown option ${String(a)}`);
    }
  }
  if (url === undefined || requests === undefined || durationMs === undefined) {
    throw new TcpcopyError(
      'ERR_LAB_LOAD_OPTION',
      '--url, --requests and --duration-ms are required (the load must be bounded in count and time)',
    );
  }
  const o: LoadOptions = { url, requests, durationMs, ...rest };
  if (paths.length > 0) o.paths = paths;
  if (addrs.length > 0) o.localAddresses = addrs;
  if (Object.keys(headers).length > 0) o.headers = headers;
  return o;
}

/** Converts LoadOptions back to loadgen-main argv (used by Lab.load). */
export function loadArgs(o: LoadOptions): string[] {
  const a = ['--url', o.url, '--requests', String(o.requests), '--duration-ms', String(o.durationMs)];
  if (o.concurrency !== undefined) a.push('--concurrency', String(o.concurrency));
  if (o.keepAlive === false) a.push('--close');
  if (o.rate !== undefined) a.push('--rate', String(o.rate));
  for (const p of o.paths ?? []) a.push('--path', p);
  if (o.bodyBytes !== undefined) a.push('--body-bytes', String(o.bodyBytes));
  if (o.method !== undefined) a.push('--method', o.method);
  for (const l of o.localAddresses ?? []) a.push('--local-address', l);
  if (o.timeoutMs !== undefined) a.push('--timeout-ms', String(o.timeoutMs));
  for (const [k, v] of Object.entries(o.headers ?? {})) a.push('--header', `${k}: ${v}`);
  return a;
}

async function main(): Promise<void> {
  let opts: LoadOptions;
  try {
    opts = parseLoadArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`loadgen: ${(e as Error).message}\n`);
    process.exit(2);
  }
  try {
    const s = await runLoad(opts);
    process.stdout.write(JSON.stringify(s) + '\n');
  } catch (e) {
    process.stderr.write(`loadgen: ${(e as Error).message}\n`);
    process.exit(2);
  }
}

if (require.main === module) void main();
