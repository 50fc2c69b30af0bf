/**
 * The lab's Node Redis client (raw RESP over node:net): `node redis-client-main.js JSON` with
 * host, port, password (optional), connections, commands, pipeline, phases, goFile. Each
 * connection logs in (AUTH) once, then per phase sends `commands` commands in pipelined
 * batches of `pipeline`, waiting for each batch's replies: phase 0 SADD, phase k > 0 RPUSH (so
 * what a replay of phase k did is told apart by command); phase k > 0 starts when
 * `${goFile}.k` exists, after printing "phase k-1 done". Prints one JSON line of totals at the
 * end (commands per command name, error replies). Bounded: every wait has a time limit.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import { ReplyFramer, buildCommand } from '../modules/redis/resp';

interface Opts {
  host: string;
  port: number;
  password?: string;
  connections: number;
  commands: number;
  pipeline?: number;
  phases?: number;
  goFile?: string;
}

async function waitFile(f: string): Promise<void> {
  for (let i = 0; i < 6000 && !fs.existsSync(f); i++) await new Promise((r) => setTimeout(r, 50));
  if (!fs.existsSync(f)) throw new Error(`${f} did not appear within 300 s`);
}

/** One connection: send a batch, resolve when as many replies came. */
class Conn {
  private readonly sock: net.Socket;
  private want = 0;
  private got = 0;
  errors = 0;
  private wake: (() => void) | null = null;
  private readonly framer = new ReplyFramer((t) => {
    if (t === 0x2d) this.errors++;
    this.got++;
    if (this.got >= this.want && this.wake) this.wake();
  });

  constructor(host: string, port: number) {
    this.sock = net.connect(port, host);
    this.sock.setNoDelay(true);
    this.sock.on('data', (b) => this.framer.feed(b, 0));
  }

  ready(): Promise<void> {
    return new Promise((res, rej) => {
      this.sock.once('connect', () => res());
      this.sock.once('error', rej);
    });
  }

  async batch(cmds: Buffer[]): Promise<void> {
    this.want += cmds.length;
    const done = new Promise<void>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`no reply within 60 s (${this.got}/${this.want})`)), 60_000);
      this.wake = () => {
        clearTimeout(t);
        this.wake = null;
        res();
      };
    });
    this.sock.write(Buffer.concat(cmds));
    if (this.got >= this.want) this.wake?.();
    await done;
  }

  end(): void {
    this.sock.end();
  }
}

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2] ?? '{}') as Opts;
  const phases = o.phases ?? 1;
  const pipeline = Math.max(1, o.pipeline ?? 1);
  const conns = Array.from({ length: o.connections }, () => new Conn(o.host, o.port));
  await Promise.all(conns.map((c) => c.ready()));
  if (o.password !== undefined)
    await Promise.all(conns.map((c) => c.batch([buildCommand(['AUTH', o.password as string])])));
  const counts: Record<string, number> = {};
  for (let ph = 0; ph < phases; ph++) {
    if (ph > 0) {
      process.stdout.write(`phase ${ph - 1} done\n`);
      await waitFile(`${o.goFile}.${ph}`);
    }
    const name = ph === 0 ? 'sadd' : 'rpush';
    await Promise.all(
      conns.map(async (c, ci) => {
        for (let i = 0; i < o.commands; i += pipeline) {
          const cmds: Buffer[] = [];
          for (let k = i; k < Math.min(o.commands, i + pipeline); k++)
            cmds.push(buildCommand([name.toUpperCase(), `lab:${ci}:${ph}`, `v${k}`]));
          await c.batch(cmds);
          counts[name] = (counts[name] ?? 0) + cmds.length;
        }
      }),
    );
  }
  conns.forEach((c) => c.end());
  const errors = conns.reduce((a, c) => a + c.errors, 0);
  process.stdout.write(JSON.stringify({ connections: conns.length, counts, errors }) + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
