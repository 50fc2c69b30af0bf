/**
 * Client of the greeting server (greeting-server.ts), run as a child process:
 * `node dist/src/lab/greeting-client.js --host H --port P --connections C --commands N
 * [--concurrency K] [--local-address A]... [--timeout-ms T]`.
 *
 * Each connection waits for the "220" greeting, sends N commands ("CMD <conn> <i>") one at a
 * time, each only after the previous "250" answer, then QUIT and waits for the server's close.
 * Bounded: C connections, N commands each, and a per-connection time limit. Prints one JSON
 * summary line ({@link GreetingClientSummary}).
 */
import net from 'node:net';

/** What the client did. */
export interface GreetingClientSummary {
  /** Connections completed (greeting, N commands, QUIT, close). */
  completed: number;
  /** Connections that failed, with a reason each. */
  errors: string[];
  /** Command lines sent, QUIT included. */
  commandsSent: number;
  /** Wall time, ms. */
  durationMs: number;
}

function args(name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < process.argv.length - 1; i++)
    if (process.argv[i] === name) out.push(process.argv[i + 1] as string);
  return out;
}

function arg(name: string, def: string): string {
  return args(name)[0] ?? def;
}

/** Runs one connection; resolves the number of command lines sent. */
function session(
  host: string,
  port: number,
  id: number,
  n: number,
  localAddress: string | undefined,
  timeoutMs: number,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const opts: net.NetConnectOpts = { host, port };
    if (localAddress !== undefined) opts.localAddress = localAddress;
    const sock = net.connect(opts);
    sock.setNoDelay(true);
    sock.setEncoding('latin1');
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`conn ${id}: timeout`));
    }, timeoutMs);
    let buf = '';
    let sent = 0;
    let phase: 'greeting' | 'commands' | 'quit' = 'greeting';
    const next = (): void => {
      if (sent < n) {
        sock.write(`CMD ${id} ${sent}\r\n`);
      } else {
        phase = 'quit';
        sock.write('QUIT\r\n');
      }
      sent++;
    };
    sock.on('data', (d: string) => {
      buf += d;
      for (;;) {
        const i = buf.indexOf('\r\n');
        if (i < 0) return;
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (phase === 'greeting') {
          if (!line.startsWith('220')) {
            sock.destroy();
            reject(new Error(`conn ${id}: greeting ${line}`));
            return;
          }
          phase = 'commands';
          next();
        } else if (phase === 'commands') {
          if (!line.startsWith('250')) {
            sock.destroy();
            reject(new Error(`conn ${id}: answer ${line}`));
            return;
          }
          next();
        }
      }
    });
    sock.on('end', () => sock.end());
    sock.on('close', () => {
      clearTimeout(timer);
      if (phase === 'quit') resolve(sent);
      else reject(new Error(`conn ${id}: closed in ${phase}`));
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

async function main(): Promise<void> {
  const host = arg('--host', '127.0.0.1');
  const port = Number(arg('--port', '2525'));
  const conns = Math.min(10_000, Number(arg('--connections', '1')));
  const n = Math.min(100_000, Number(arg('--commands', '10')));
  const conc = Math.max(1, Number(arg('--concurrency', '4')));
  const timeoutMs = Number(arg('--timeout-ms', '20000'));
  const locals = args('--local-address');
  const t0 = Date.now();
  const sum: GreetingClientSummary = { completed: 0, errors: [], commandsSent: 0, durationMs: 0 };
  let nextId = 0;
  const worker = async (): Promise<void> => {
    while (nextId < conns) {
      const id = nextId++;
      try {
        sum.commandsSent += await session(
          host,
          port,
          id,
          n,
          locals.length > 0 ? locals[id % locals.length] : undefined,
          timeoutMs,
        );
        sum.completed++;
      } catch (e) {
        sum.errors.push((e as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(conc, conns) }, () => worker()));
  sum.durationMs = Date.now() - t0;
  process.stdout.write(JSON.stringify(sum) + '\n');
}

if (require.main === module) void main();
