/**
 * A small server-first ("SMTP-like") line protocol server for the lab, run as a child process:
 * `node dist/src/lab/greeting-server.js --host 0.0.0.0 --port 2525 --log FILE`.
 *
 * On connect it sends "220 ready\r\n"; each CRLF-terminated command line is answered with
 * "250 ok\r\n", except QUIT, answered with "221 bye\r\n" and a close. Every command is logged
 * as one JSON line ({@link GreetingLogLine}). Prints "listening <host>:<port>" when ready;
 * on SIGTERM/SIGINT it flushes the log and exits.
 */
import { createWriteStream, readFileSync, existsSync } from 'node:fs';
import net from 'node:net';

/** One logged command. */
export interface GreetingLogLine {
  /** Time the command was read, ms since the epoch. */
  t: number;
  /** Client address. */
  remoteAddress: string;
  /** Client port. */
  remotePort: number;
  /** The command line without CRLF. */
  command: string;
}

/** Reads a greeting server log; bad lines are skipped. */
export function readGreetingLog(file: string): GreetingLogLine[] {
  if (!existsSync(file)) return [];
  const out: GreetingLogLine[] = [];
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    if (l.trim() === '') continue;
    try {
      out.push(JSON.parse(l) as GreetingLogLine);
    } catch {
      // a line still being written
    }
  }
  return out;
}

/** Commands per connection ("addr:port" -> commands in order). */
export function commandsByConnection(lines: readonly GreetingLogLine[]): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const l of lines) {
    const k = `${l.remoteAddress}:${l.remotePort}`;
    let a = m.get(k);
    if (!a) m.set(k, (a = []));
    a.push(l.command);
  }
  return m;
}

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
}

function main(): void {
  const host = arg('--host', '0.0.0.0');
  const port = Number(arg('--port', '2525'));
  const logPath = arg('--log', '');
  const log = logPath ? createWriteStream(logPath, { flags: 'a' }) : null;
  const socks = new Set<net.Socket>();
  const server = net.createServer((sock) => {
    socks.add(sock);
    sock.on('close', () => socks.delete(sock));
    sock.on('error', () => undefined);
    const remoteAddress = sock.remoteAddress ?? '';
    const remotePort = sock.remotePort ?? 0;
    let buf = '';
    sock.setEncoding('latin1');
    sock.write('220 ready\r\n');
    sock.on('data', (d: string) => {
      buf += d;
      for (;;) {
        const i = buf.indexOf('\r\n');
        if (i < 0) break;
        const command = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const line: GreetingLogLine = { t: Date.now(), remoteAddress, remotePort, command };
        log?.write(JSON.stringify(line) + '\n');
        if (command.toUpperCase() === 'QUIT') {
          sock.end('221 bye\r\n');
          buf = '';
          return;
        }
        sock.write('250 ok\r\n');
      }
    });
  });
  server.listen(port, host, () => {
    process.stdout.write(`listening ${host}:${port}\n`);
  });
  const stop = (): void => {
    server.close();
    for (const s of socks) s.destroy();
    if (log) log.end(() => process.exit(0));
    else process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

if (require.main === module) main();
