/**
 * The lab's Node PostgreSQL client (npm pg): `node pg-client-main.js JSON` with host, port,
 * user, password, database, connections, statements, phases, goFile, tag. Each connection, per
 * phase: INSERTs with a named prepared statement (Parse once per connection, then Bind/Execute)
 * and SELECTs as unnamed extended queries; phase k > 0 starts when `${goFile}.k` exists, after
 * printing "phase k-1 done". Prints one JSON line of totals at the end.
 */
import * as fs from 'node:fs';
import { Client } from 'pg';

interface Opts {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  connections: number;
  statements: number;
  phases?: number;
  goFile?: string;
  tag: number;
}

async function waitFile(f: string): Promise<void> {
  for (let i = 0; i < 6000 && !fs.existsSync(f); i++) await new Promise((r) => setTimeout(r, 50));
  if (!fs.existsSync(f)) throw new Error(`${f} did not appear within 300 s`);
}

async function main(): Promise<void> {
  const o = JSON.parse(process.argv[2] ?? '{}') as Opts;
  const phases = o.phases ?? 1;
  const clients = await Promise.all(
    Array.from({ length: o.connections }, async () => {
      const c = new Client({ host: o.host, port: o.port, user: o.user, password: o.password, database: o.database });
      await c.connect();
      return c;
    }),
  );
  let statements = 0;
  for (let ph = 0; ph < phases; ph++) {
    if (ph > 0) {
      process.stdout.write(`phase ${ph - 1} done\n`);
      await waitFile(`${o.goFile}.${ph}`);
    }
    await Promise.all(
      clients.map(async (c, ci) => {
        for (let i = 0; i < o.statements; i++) {
          const id = ((o.tag * 1000 + ci) * 100 + ph) * 10000 + i;
          if (i % 2 === 0)
            await c.query({ name: 'ins_kv', text: 'INSERT INTO kv VALUES ($1, $2, $3)', values: [id, ci, `v${id}`] });
          else await c.query('SELECT count(*) FROM kv WHERE conn = $1 AND id < $2', [ci, id]);
          statements++;
        }
      }),
    );
  }
  await Promise.all(clients.map((c) => c.end()));
  process.stdout.write(JSON.stringify({ connections: clients.length, statements }) + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
