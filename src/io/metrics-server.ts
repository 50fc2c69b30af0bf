import * as http from 'node:http';
import { TcpcopyError } from '../core/errors';
import { parseIpv4 } from '../core/wire/segment';

/** Where --metrics listens. */
export interface MetricsAddress {
  /** IPv4 address or `localhost`; never a wildcard unless given explicitly (0.0.0.0). */
  host: string;
  /** TCP port 1..65535 (0 in tests: any free port). */
  port: number;
}

/** Parses `--metrics HOST:PORT` (e.g. 127.0.0.1:9101); throws ERR_BAD_OPTION naming the fix. */
export function parseMetricsAddress(text: string, flag = '--metrics'): MetricsAddress {
  const m = /^(.+):(\d{1,5})$/.exec(text.trim());
  const host = m?.[1];
  const port = Number(m?.[2] ?? NaN);
  if (
    m === null ||
    host === undefined ||
    (host !== 'localhost' && parseIpv4(host) < 0) ||
    !(port >= 0 && port <= 65535)
  ) {
    throw new TcpcopyError(
      'ERR_BAD_OPTION',
      `${flag} ${text}: expected HOST:PORT with an IPv4 address, e.g. ${flag} 127.0.0.1:9101`,
      { option: flag, value: text },
    );
  }
  return { host, port };
}

/** Content type of the Prometheus text exposition format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** A running metrics endpoint. */
export interface MetricsServer {
  /** The bound address (port resolved when 0 was asked). */
  readonly address: { host: string; port: number };
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

/**
 * Serves `render()` at GET /metrics (and /) in the Prometheus text format with node:http.
 * Only the address given is bound. Rendering happens per scrape, never on the hot path.
 */
export async function startMetricsServer(addr: MetricsAddress, render: () => string): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path !== '/metrics' && path !== '/') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('see /metrics\n');
      return;
    }
    let body: string;
    try {
      body = render();
    } catch (e) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(e as Error).message}\n`);
      return;
    }
    res.writeHead(200, { 'content-type': PROMETHEUS_CONTENT_TYPE, 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    const onErr = (e: NodeJS.ErrnoException): void => {
      reject(
        new TcpcopyError(
          'ERR_METRICS_LISTEN',
          `--metrics ${addr.host}:${addr.port}: cannot listen (${e.code ?? e.message}); choose a free port on a local address`,
          { host: addr.host, port: addr.port },
        ),
      );
    };
    server.once('error', onErr);
    server.listen(addr.port, addr.host, () => {
      server.off('error', onErr);
      resolve();
    });
  });
  server.unref();
  const a = server.address();
  const port = typeof a === 'object' && a !== null ? a.port : addr.port;
  return {
    address: { host: addr.host, port },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
