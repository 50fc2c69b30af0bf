/**
 * A tiny HTTP server for the lab, run as a child process:
 * `node dist/src/lab/node-server.js --host 0.0.0.0 --port 8080 --log FILE`.
 *
 * Every request is logged as one JSON line (see access-log.ts NodeLogLine) once its body has
 * been read. Routes: `/bytes/N` answers N bytes, `/sleep/MS` answers "ok\n" MS ms (at most
 * 10 s) after the request (a target that is slow on purpose), anything else answers "ok\n". Prints
 * "listening <host>:<port>" on stdout when ready; on SIGTERM/SIGINT it flushes the log and exits.
 */
import { createWriteStream } from 'node:fs';
import http from 'node:http';
import type { NodeLogLine } from './access-log';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
}

function main(): void {
  const host = arg('--host', '0.0.0.0');
  const port = Number(arg('--port', '8080'));
  const logPath = arg('--log', '');
  const log = logPath ? createWriteStream(logPath, { flags: 'a' }) : null;
  const perConn = new WeakMap<object, number>();
  const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    let bodyLength = 0;
    req.on('data', (b: Buffer) => {
      bodyLength += b.length;
    });
    req.on('end', () => {
      const n = (perConn.get(req.socket) ?? 0) + 1;
      perConn.set(req.socket, n);
      const m = /^\/bytes\/(\d+)$/.exec(req.url ?? '');
      const size = m ? Math.min(Number(m[1]), 64 * 1024 * 1024) : -1;
      const body = size >= 0 ? Buffer.alloc(size, 0x61) : Buffer.from('ok\n');
      const sleep = /^\/sleep\/(\d+)$/.exec(req.url ?? '');
      const answer = (): void => {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': body.length });
        res.end(body);
      };
      if (sleep) setTimeout(answer, Math.min(Number(sleep[1]), 10_000));
      else answer();
      const line: NodeLogLine = {
        t: Date.now(),
        remoteAddress: req.socket.remoteAddress ?? '',
        remotePort: req.socket.remotePort ?? 0,
        method: req.method ?? '',
        url: req.url ?? '',
        bodyLength,
        status: 200,
        bytesSent: body.length,
        connectionRequests: n,
      };
      log?.write(JSON.stringify(line) + '\n');
    });
  });
  server.keepAliveTimeout = 65_000;
  server.maxRequestsPerSocket = 0;
  server.listen(port, host, () => {
    process.stdout.write(`listening ${host}:${port}\n`);
  });
  const stop = (): void => {
    server.close();
    server.closeAllConnections();
    if (log) log.end(() => process.exit(0));
    else process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (require.main === module) main();
