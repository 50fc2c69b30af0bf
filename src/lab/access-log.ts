/**
 * Parsing the access logs of the lab's servers: the nginx `log_format` the lab configures
 * ({@link NGINX_LOG_FORMAT}) and the JSON lines of the Node server (node-server.ts).
 * Parsing never throws: bad lines are counted, not fatal.
 */

/** One request as a server logged it. */
export interface AccessRecord {
  /** Client address as the server saw it ($remote_addr). */
  remoteAddr: string;
  /** Client port ($remote_port). */
  remotePort: number;
  /** HTTP method, e.g. 'GET'. */
  method: string;
  /** Request target without the query string, e.g. '/bytes/100'. */
  path: string;
  /** Full request target including the query string. */
  url: string;
  /** Response status ($status). */
  status: number;
  /** Response body bytes ($body_bytes_sent); Node server: body bytes written. */
  bytesSent: number;
  /** nginx: request line + headers + body ($request_length); Node server: body bytes received. */
  requestLength: number;
  /** Time the request was logged, ms since the epoch ($msec * 1000). */
  msec: number;
  /** Request processing time in seconds ($request_time), when known. */
  requestTime?: number;
  /** Server's connection serial number ($connection), when known. */
  connection?: number;
  /** Number of this request on its connection, from 1 ($connection_requests), when known. */
  connectionRequests?: number;
  /** Port the request came in on ($server_port), when known. */
  serverPort?: number;
}

/**
 * The nginx log format the lab configures (name `tcpcopy_lab`). One line per request:
 * `addr port [msec] "request" status body_bytes request_length request_time connection connection_requests server_port`
 * (logs without the last field, written before it was added, parse too).
 */
export const NGINX_LOG_FORMAT =
  '$remote_addr $remote_port [$msec] "$request" $status $body_bytes_sent $request_length $request_time $connection $connection_requests $server_port';

const NGINX_RE = /^(\S+) (\d+) \[(\d+(?:\.\d+)?)\] "(.*)" (\d{3}) (\d+) (\d+) (\d+(?:\.\d+)?) (\d+) (\d+)(?: (\d+))?$/;

/** Result of parsing a whole log. */
export interface ParsedLog {
  /** Records, in file order. */
  records: AccessRecord[];
  /** Lines that did not parse (non-empty ones), count. */
  badLines: number;
}

function splitRequest(req: string): { method: string; url: string; path: string } {
  const sp1 = req.indexOf(' ');
  if (sp1 < 0) return { method: req, url: '', path: '' };
  const method = req.slice(0, sp1);
  const rest = req.slice(sp1 + 1);
  const sp2 = rest.lastIndexOf(' ');
  const url = sp2 < 0 ? rest : rest.slice(0, sp2);
  const q = url.indexOf('?');
  return { method, url, path: q < 0 ? url : url.slice(0, q) };
}

/** Parses one nginx line in {@link NGINX_LOG_FORMAT}; null when it does not match. */
export function parseNginxLine(line: string): AccessRecord | null {
  const m = NGINX_RE.exec(line);
  if (!m) return null;
  const { method, url, path } = splitRequest(m[4] ?? '');
  return {
    remoteAddr: m[1] ?? '',
    remotePort: Number(m[2]),
    msec: Math.round(Number(m[3]) * 1000),
    method,
    url,
    path,
    status: Number(m[5]),
    bytesSent: Number(m[6]),
    requestLength: Number(m[7]),
    requestTime: Number(m[8]),
    connection: Number(m[9]),
    connectionRequests: Number(m[10]),
    ...(m[11] !== undefined ? { serverPort: Number(m[11]) } : {}),
  };
}

/** Parses a whole nginx access log text. */
export function parseNginxLog(text: string): ParsedLog {
  const records: AccessRecord[] = [];
  let badLines = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const r = parseNginxLine(line);
    if (r) records.push(r);
    else badLines++;
  }
  return { records, badLines };
}

/** One JSON line as node-server.ts writes it. */
export interface NodeLogLine {
  /** Time, ms since the epoch. */
  t: number;
  /** Client address. */
  remoteAddress: string;
  /** Client port. */
  remotePort: number;
  /** Method. */
  method: string;
  /** Request target. */
  url: string;
  /** Request body bytes received. */
  bodyLength: number;
  /** Response status. */
  status: number;
  /** Response body bytes. */
  bytesSent: number;
  /** Request number on its connection, from 1. */
  connectionRequests: number;
}

/** Parses one Node server JSON line; null when it is not one. */
export function parseNodeLine(line: string): AccessRecord | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Partial<NodeLogLine>;
  if (typeof o.remoteAddress !== 'string' || typeof o.method !== 'string' || typeof o.url !== 'string') return null;
  const q = o.url.indexOf('?');
  const rec: AccessRecord = {
    remoteAddr: o.remoteAddress.replace(/^::ffff:/, ''),
    remotePort: Number(o.remotePort ?? 0),
    method: o.method,
    url: o.url,
    path: q < 0 ? o.url : o.url.slice(0, q),
    status: Number(o.status ?? 0),
    bytesSent: Number(o.bytesSent ?? 0),
    requestLength: Number(o.bodyLength ?? 0),
    msec: Number(o.t ?? 0),
  };
  if (typeof o.connectionRequests === 'number') rec.connectionRequests = o.connectionRequests;
  return rec;
}

/** Parses a whole Node server log text. */
export function parseNodeLog(text: string): ParsedLog {
  const records: AccessRecord[] = [];
  let badLines = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const r = parseNodeLine(line);
    if (r) records.push(r);
    else badLines++;
  }
  return { records, badLines };
}

/** Summary of a set of records. */
export interface AccessSummary {
  /** Number of records. */
  count: number;
  /** Count per method. */
  byMethod: Record<string, number>;
  /** Count per path (query string stripped). */
  byPath: Record<string, number>;
  /** Count per status. */
  byStatus: Record<string, number>;
  /** Count per client address. */
  byAddress: Record<string, number>;
  /** Distinct client addresses, sorted. */
  addresses: string[];
  /** Distinct (address, port) pairs, i.e. client connections seen. */
  connections: number;
  /** Sum of requestLength. */
  requestBytes: number;
  /** Sum of bytesSent. */
  responseBytes: number;
  /** Earliest and latest msec, or null when empty. */
  firstMsec: number | null;
  /** Latest msec, or null when empty. */
  lastMsec: number | null;
}

function bump(o: Record<string, number>, k: string): void {
  o[k] = (o[k] ?? 0) + 1;
}

/** Summarises records (counts by method, path, status and address). */
export function summarise(records: readonly AccessRecord[]): AccessSummary {
  const s: AccessSummary = {
    count: records.length,
    byMethod: {},
    byPath: {},
    byStatus: {},
    byAddress: {},
    addresses: [],
    connections: 0,
    requestBytes: 0,
    responseBytes: 0,
    firstMsec: null,
    lastMsec: null,
  };
  const conns = new Set<string>();
  for (const r of records) {
    bump(s.byMethod, r.method);
    bump(s.byPath, r.path);
    bump(s.byStatus, String(r.status));
    bump(s.byAddress, r.remoteAddr);
    conns.add(`${r.remoteAddr}:${r.remotePort}`);
    s.requestBytes += r.requestLength;
    s.responseBytes += r.bytesSent;
    if (s.firstMsec === null || r.msec < s.firstMsec) s.firstMsec = r.msec;
    if (s.lastMsec === null || r.msec > s.lastMsec) s.lastMsec = r.msec;
  }
  s.addresses = Object.keys(s.byAddress).sort();
  s.connections = conns.size;
  return s;
}
