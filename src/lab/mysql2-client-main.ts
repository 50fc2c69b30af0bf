/**
 * A Node MySQL client for the lab with server-side prepared statements (npm `mysql2`,
 * `connection.execute`: COM_STMT_PREPARE once per statement text and connection, then
 * COM_STMT_EXECUTE in the binary protocol; `unprepare`: COM_STMT_CLOSE), as real applications
 * use them. Run it in the client's namespace:
 *
 *   node mysql2-client-main.js --host 198.18.1.1 --port 3306 --user tc --password tcpw \
 *     --database tcdb [--connections 4] [--statements 40] [--phases 1] [--go-file F] [--tag 1]
 *
 * Each of `--connections` connections runs `--statements` statements per phase on table `kv`
 * (id INT PRIMARY KEY, conn INT, v VARCHAR(64): the caller creates it), cycling through a
 * prepared INSERT, a prepared SELECT, a prepared UPDATE and a text-protocol SELECT, with
 * values unique to the run (`--tag`), the connection, the phase and the statement. After each
 * phase but the last it closes the prepared SELECT (it is prepared again in the next phase),
 * prints `phase N done` and waits until the file `<go-file>.<N+1>` exists (at most 60 s) before
 * the next phase: so a connection can be opened and used before tcpcopy starts and go on
 * after (sessions picked up mid-stream). Finally it quits each connection (COM_QUIT) and
 * prints one JSON line: { connections, prepares, executes, queries, closes }.
 * mysql2 is a devDependency: this program is for the lab, not for users.
 */
import { existsSync } from 'node:fs';

interface Args {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  connections: number;
  statements: number;
  phases: number;
  goFile: string;
  tag: number;
}

function parseArgs(argv: readonly string[]): Args {
  const get = (k: string, d?: string): string => {
    const i = argv.indexOf(`--${k}`);
    const v = i >= 0 ? argv[i + 1] : d;
    if (v === undefined) throw new Error(`mysql2-client: --${k} is required`);
    return v;
  };
  const int = (k: string, d: number, max: number): number => {
    const n = Number(get(k, String(d)));
    if (!Number.isInteger(n) || n < 0 || n > max) throw new Error(`mysql2-client: --${k} ${n}: expected 0..${max}`);
    return n;
  };
  return {
    host: get('host'),
    port: int('port', 3306, 65535),
    user: get('user'),
    password: get('password', ''),
    database: get('database'),
    connections: int('connections', 4, 500),
    statements: int('statements', 40, 1_000_000),
    phases: int('phases', 1, 10),
    goFile: get('go-file', ''),
    tag: int('tag', 1, 999),
  };
}

/** Resolves once `file` exists (polling every 50 ms); rejects after `ms`. */
async function waitFile(file: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!existsSync(file)) {
    if (Date.now() > deadline) throw new Error(`mysql2-client: ${file} did not appear within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const INSERT = 'INSERT INTO kv (id, conn, v) VALUES (?, ?, ?)';
const SELECT = 'SELECT v FROM kv WHERE id = ?';
const UPDATE = 'UPDATE kv SET v = ? WHERE id = ?';

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const mysql = await import('mysql2/promise');
  const totals = { connections: 0, prepares: 0, executes: 0, queries: 0, closes: 0 };
  const conns = await Promise.all(
    Array.from({ length: a.connections }, () =>
      mysql.createConnection({
        host: a.host,
        port: a.port,
        user: a.user,
        password: a.password,
        database: a.database,
        connectTimeout: 10_000,
      }),
    ),
  );
  totals.connections = conns.length;
  for (let phase = 0; phase < a.phases; phase++) {
    await Promise.all(
      conns.map(async (c, i) => {
        const prepared = new Set<string>();
        const exec = async (sql: string, params: Array<string | number>): Promise<void> => {
          if (!prepared.has(sql)) {
            prepared.add(sql);
            if (phase === 0 || sql === SELECT) totals.prepares++;
          }
          await c.execute(sql, params);
          totals.executes++;
        };
        for (let j = 0; j < a.statements; j++) {
          const id = a.tag * 1e8 + i * 1e5 + phase * 1e4 + (j >> 2);
          switch (j % 4) {
            case 0:
              await exec(INSERT, [id, i, `v${id}`]);
              break;
            case 1:
              await exec(SELECT, [id]);
              break;
            case 2:
              await exec(UPDATE, [`u${id}`, id]);
              break;
            default:
              await c.query(`SELECT COUNT(*) AS n FROM kv WHERE conn = ${i} AND id <= ${id}`);
              totals.queries++;
          }
        }
        if (phase + 1 < a.phases) {
          c.unprepare(SELECT);
          totals.closes++;
        }
      }),
    );
    if (phase + 1 < a.phases) {
      process.stdout.write(`phase ${phase} done\n`);
      if (a.goFile !== '') await waitFile(`${a.goFile}.${phase + 1}`, 60_000);
    }
  }
  await Promise.all(conns.map((c) => c.end()));
  process.stdout.write(`${JSON.stringify(totals)}\n`);
}

main().catch((e: Error) => {
  process.stderr.write(`mysql2-client: ${e.message}\n`);
  process.exit(1);
});
