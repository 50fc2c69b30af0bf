/**
 * The lab's HTTP load generator: bounded in request count AND time, keep-alive or one
 * request per connection, optional rate cap, round-robin paths and source addresses.
 * Runs in-process ({@link runLoad}) or as `node dist/src/lab/loadgen-main.js` inside a
 * namespace (Lab.load does that).
 */
import { TcpcopyError } from '../core/errors';
import { HttpConn, type HttpResult } from './http-conn';

/** Load generator options. */
export interface LoadOptions {
  /** Base URL, `http://host:port/path`; its path is the default request path. Required. */
  url: string;
  /** Maximum number of requests to start (attempts, failed ones included). Required, >= 1. */
  requests: number;
  /** Maximum time to keep starting requests, ms. Required, >= 1. In-flight requests then get up to `timeoutMs` to finish. */
  durationMs: number;
  /** Number of connections working in parallel. Default 8. */
  concurrency?: number;
  /** true: reuse each connection for many requests; false: `Connection: close`, a new TCP connection per request. Default true. */
  keepAlive?: boolean;
  /** Cap on requests started per second (all connections together). Default: none. */
  rate?: number;
  /** Request paths, used round-robin over all requests. Default: the URL's path. */
  paths?: readonly string[];
  /** Request body size in bytes; > 0 sends POST with a body of that size. Default 0 (GET). */
  bodyBytes?: number;
  /** Method override. Default GET, or POST when bodyBytes > 0. */
  method?: string;
  /** Source addresses to bind (round-robin per new connection). Default: let the kernel choose. */
  localAddresses?: readonly string[];
  /** Per-request (and per-connect) time limit, ms. Default 5000. */
  timeoutMs?: number;
  /** Extra request headers. */
  headers?: Readonly<Record<string, string>>;
}

/** What a run did. Printed as one JSON line by loadgen-main. */
export interface LoadSummary {
  /** The base URL. */
  url: string;
  /** Keep-alive mode or one request per connection. */
  keepAlive: boolean;
  /** Connections in parallel. */
  concurrency: number;
  /** Requests started (written to a connected socket, or attempted when connecting failed). */
  requestsSent: number;
  /** Responses with status 200..399. */
  responsesOk: number;
  /** Complete responses by status. */
  byStatus: Record<string, number>;
  /** Failed requests by kind: errno codes (ECONNREFUSED...), 'timeout', 'closed', 'parse', 'connect_timeout', 'status_4xx/5xx'. */
  errors: Record<string, number>;
  /** Wall time from start to the last completion, ms. */
  durationMs: number;
  /** requestsSent / duration. */
  requestsPerSec: number;
  /** Latency of successful requests (request written to response complete; connect included in close mode), ms. */
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number };
  /** Per path: requests started and ok responses. */
  perPath: Record<string, { sent: number; ok: number }>;
  /** TCP connections opened (successful connects). */
  connectionsOpened: number;
  /** Response bytes received. */
  bytesReceived: number;
  /** Source addresses used. */
  sourceAddresses: string[];
  /** Which bound ended the run. */
  stoppedBy: 'requests' | 'time';
}

const MAX_SAMPLES = 1_000_000;

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return Math.round((sorted[i] ?? 0) * 1000) / 1000;
}

/** Validates options; throws ERR_LAB_LOAD_OPTION naming the bad field. */
function check(o: LoadOptions): URL {
  const bad = (field: string, v: unknown, want: string): never => {
    throw new TcpcopyError('ERR_LAB_LOAD_OPTION', `load option ${field}=${JSON.stringify(v)}: expected ${want}`, {
      field,
    });
  };
  let u: URL;
  try {
    u = new URL(o.url);
  } catch {
    return bad('url', o.url, 'http://host:port/path');
  }
  if (u.protocol !== 'http:') bad('url', o.url, 'an http:// URL');
  if (!Number.isInteger(o.requests) || o.requests < 1)
    bad('requests', o.requests, 'an integer >= 1 (the load must be bounded)');
  if (!Number.isFinite(o.durationMs) || o.durationMs < 1)
    bad('durationMs', o.durationMs, 'milliseconds >= 1 (the load must be bounded)');
  if (o.concurrency !== undefined && (!Number.isInteger(o.concurrency) || o.concurrency < 1))
    bad('concurrency', o.concurrency, 'an integer >= 1');
  if (o.rate !== undefined && !(o.rate > 0)) bad('rate', o.rate, 'requests per second > 0');
  if (o.bodyBytes !== undefined && (!Number.isInteger(o.bodyBytes) || o.bodyBytes < 0))
    bad('bodyBytes', o.bodyBytes, 'an integer >= 0');
  if (o.paths !== undefined && (o.paths.length === 0 || o.paths.some((p) => !p.startsWith('/'))))
    bad('paths', o.paths, 'a non-empty list of paths starting with /');
  return u;
}

/** Runs a bounded load and resolves its summary. Throws only on invalid options. */
export async function runLoad(o: LoadOptions): Promise<LoadSummary> {
  const u = check(o);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1'); // IPv6 literals come bracketed
  const port = Number(u.port || 80);
  const keepAlive = o.keepAlive ?? true;
  const concurrency = Math.min(o.concurrency ?? 8, o.requests);
  const timeoutMs = o.timeoutMs ?? 5000;
  const bodyBytes = o.bodyBytes ?? 0;
  const method = o.method ?? (bodyBytes > 0 ? 'POST' : 'GET');
  const paths = o.paths ?? [u.pathname + u.search];
  const addrs = o.localAddresses && o.localAddresses.length > 0 ? o.localAddresses : null;
  const body = bodyBytes > 0 ? Buffer.alloc(bodyBytes, 0x78) : null;
  const reqs = paths.map((p) => {
    let head = `${method} ${p} HTTP/1.1\r\nHost: ${u.host}\r\nUser-Agent: tcpcopy-lab-loadgen\r\n`;
    if (!keepAlive) head += 'Connection: close\r\n';
    if (body) head += `Content-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n`;
    for (const [k, v] of Object.entries(o.headers ?? {})) head += `${k}: ${v}\r\n`;
    head += '\r\n';
    return body ? Buffer.concat([Buffer.from(head, 'latin1'), body]) : Buffer.from(head, 'latin1');
  });
  const sentPerPath = new Array<number>(paths.length).fill(0);
  const okPerPath = new Array<number>(paths.length).fill(0);
  const byStatus: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const samples = new Float64Array(Math.min(o.requests, MAX_SAMPLES));
  let nSamples = 0;
  let seenOk = 0;
  let sumLat = 0;
  let maxLat = 0;
  let started = 0;
  let ok = 0;
  let conns = 0;
  let bytes = 0;
  let addrIdx = 0;
  let stoppedBy: 'requests' | 'time' = 'requests';
  const t0 = performance.now();
  const deadline = t0 + o.durationMs;
  const usedAddrs = new Set<string>();
  const err = (k: string): void => {
    errors[k] = (errors[k] ?? 0) + 1;
  };
  const open = new Set<HttpConn>();

  const record = (pathIdx: number, r: HttpResult, lat: number): void => {
    bytes += r.bytes;
    if (r.error !== null) {
      err(r.error);
      return;
    }
    byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
    if (r.status >= 200 && r.status < 400) {
      ok++;
      okPerPath[pathIdx] = (okPerPath[pathIdx] ?? 0) + 1;
      sumLat += lat;
      if (lat > maxLat) maxLat = lat;
      seenOk++;
      if (nSamples < samples.length) samples[nSamples++] = lat;
      else {
        const j = Math.floor(Math.random() * seenOk);
        if (j < samples.length) samples[j] = lat;
      }
    } else err(`status_${r.status}`);
  };

  const connect = async (): Promise<HttpConn | string> => {
    const la = addrs ? addrs[addrIdx++ % addrs.length] : undefined;
    if (la !== undefined) usedAddrs.add(la);
    const c = new HttpConn(host, port, la, timeoutMs);
    open.add(c);
    c.sock.once('close', () => open.delete(c));
    const e = await c.connected();
    if (e !== null) {
      c.destroy();
      return e;
    }
    conns++;
    return c;
  };

  const worker = async (): Promise<void> => {
    let conn: HttpConn | null = null;
    for (;;) {
      if (started >= o.requests) break;
      let now = performance.now();
      if (now >= deadline) {
        stoppedBy = 'time';
        break;
      }
      const idx = started++;
      if (o.rate !== undefined) {
        const at = t0 + (idx * 1000) / o.rate;
        if (at > now) {
          if (at >= deadline) {
            started--;
            stoppedBy = 'time';
            break;
          }
          await new Promise((r) => setTimeout(r, at - now));
          now = performance.now();
        }
      }
      const pathIdx = idx % paths.length;
      sentPerPath[pathIdx] = (sentPerPath[pathIdx] ?? 0) + 1;
      const tStart = now;
      if (conn === null || !conn.open) {
        const c = await connect();
        if (typeof c === 'string') {
          err(c);
          continue;
        }
        conn = c;
      }
      const r = await conn.request(reqs[pathIdx] as Buffer);
      record(pathIdx, r, performance.now() - tStart);
      if (!keepAlive || r.close) {
        if (r.error === null) conn.end();
        else conn.destroy();
        conn = null;
      }
    }
    if (conn) conn.end();
  };

  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  const durationMs = performance.now() - t0;
  for (const c of open) c.destroy();
  const sorted = samples.slice(0, nSamples).sort();
  const perPath: Record<string, { sent: number; ok: number }> = {};
  paths.forEach((p, i) => {
    const cur = perPath[p] ?? { sent: 0, ok: 0 };
    cur.sent += sentPerPath[i] ?? 0;
    cur.ok += okPerPath[i] ?? 0;
    perPath[p] = cur;
  });
  return {
    url: o.url,
    keepAlive,
    concurrency,
    requestsSent: started,
    responsesOk: ok,
    byStatus,
    errors,
    durationMs: Math.round(durationMs * 1000) / 1000,
    requestsPerSec: Math.round((started / (durationMs / 1000)) * 10) / 10,
    latencyMs: {
      p50: quantile(sorted, 0.5),
      p90: quantile(sorted, 0.9),
      p99: quantile(sorted, 0.99),
      max: Math.round(maxLat * 1000) / 1000,
      mean: ok > 0 ? Math.round((sumLat / ok) * 1000) / 1000 : 0,
    },
    perPath,
    connectionsOpened: conns,
    bytesReceived: bytes,
    sourceAddresses: [...usedAddrs].sort(),
    stoppedBy,
  };
}
