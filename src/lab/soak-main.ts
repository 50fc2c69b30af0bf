/**
 * `npm run soak -- --minutes N [--cycle-minutes C] [--out DIR] [--keepalive-rate R] [--short-rate R] [--prefix P]`:
 * the soak test (see soak.ts). Needs root. Its lab has its own names (--prefix, default tsk1), so
 * scripts/soak.sh does not take the e2e lock (SOAK_LOCK=1 makes it). Prints the
 * per-minute table and the verdict, writes soak.json, soak.txt and soak.svg into DIR (default
 * /tmp/tcpcopy-soak-<time>), exits 0 when it passed, 1 when a check failed, 2 on a usage error.
 */
import { parseArgs } from 'node:util';
import * as path from 'node:path';
import * as os from 'node:os';
import { runSoak, soakSummary } from './soak';
import { validatePrefix } from './names';

/** Parses the command line and runs the soak; resolves the exit code. */
export async function soakMain(argv: readonly string[]): Promise<number> {
  let v: Record<string, string | undefined>;
  try {
    v = parseArgs({
      args: [...argv],
      options: {
        minutes: { type: 'string' },
        'cycle-minutes': { type: 'string' },
        out: { type: 'string' },
        'keepalive-rate': { type: 'string' },
        'short-rate': { type: 'string' },
        prefix: { type: 'string' },
      },
      strict: true,
    }).values;
  } catch (e) {
    process.stderr.write(`soak: ${(e as Error).message}\n`);
    return 2;
  }
  const num = (name: string, dflt: number, min: number, max: number): number => {
    const t = v[name];
    const n = t === undefined ? dflt : Number(t);
    if (!(n >= min && n <= max)) throw new Error(`--${name} ${t}: expected a number ${min}..${max}`);
    return n;
  };
  let minutes: number, cycle: number | undefined, ka: number, short: number;
  try {
    minutes = num('minutes', 60, 1, 24 * 60);
    cycle = v['cycle-minutes'] !== undefined ? num('cycle-minutes', 5, 1, 24 * 60) : undefined;
    ka = num('keepalive-rate', 300, 1, 100_000);
    short = num('short-rate', 100, 1, 20_000);
    if (v['prefix'] !== undefined) validatePrefix(v['prefix']);
  } catch (e) {
    process.stderr.write(`soak: ${(e as Error).message}\n`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('soak: needs root (network namespaces)\n');
    return 2;
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
  const outDir = v['out'] ?? path.join(os.tmpdir(), `tcpcopy-soak-${stamp}`);
  const r = await runSoak({
    minutes,
    outDir,
    keepAliveRate: ka,
    shortRate: short,
    ...(cycle !== undefined ? { cycleMs: cycle * 60_000 } : {}),
    ...(v['prefix'] !== undefined ? { prefix: v['prefix'] } : {}),
    log: (s) => process.stderr.write(`${s}\n`),
  });
  process.stdout.write(`${soakSummary(r)}\nfiles: ${r.files.table} ${r.files.json} ${r.files.chart}\n`);
  return r.passed ? 0 : 1;
}

if (require.main === module) {
  soakMain(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      process.stderr.write(`soak: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
