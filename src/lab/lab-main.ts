/**
 * `node dist/src/lab/lab-main.js up|down|status --prefix P [--client-addresses N] [--online2]`
 *
 * up:     builds a lab (removing a stale one with that prefix), starts nginx on online:80 and
 *         target:8080 (detached, so they outlive this command), writes a state file
 *         (/tmp/tcpcopy-lab-<P>.json) and prints it. The lab stays until `down`.
 * down:   stops the processes recorded in the state file (by pid, after checking the pid
 *         still runs the recorded program), deletes the namespaces, the lab directory and
 *         the state file. Works without a state file too (namespaces only).
 * status: prints the namespaces present and the recorded processes (alive or not) as JSON.
 * Exit codes: 0 ok, 1 failure, 2 bad usage.
 */
import { existsSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TcpcopyError } from '../core/errors';
import { Lab, type LabState } from './lab';
import { allNamespaces, validatePrefix } from './names';
import { pidAlive, sleep } from './sh';
import { listNamespaces, removeStale } from './topology';

/** Path of the state file `up` writes for a prefix. */
export function stateFile(prefix: string): string {
  return path.join(os.tmpdir(), `tcpcopy-lab-${prefix}.json`);
}

function readState(prefix: string): LabState | null {
  const f = stateFile(prefix);
  if (!existsSync(f)) return null;
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as LabState;
  } catch {
    return null;
  }
}

/** True when /proc/<pid>/cmdline still starts with the recorded program (guards against pid reuse). */
function sameProgram(pid: number, argv: readonly string[]): boolean {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return (
      cmd[0] === argv[0] ||
      path.basename(cmd[0] ?? '') === path.basename(argv[0] ?? '') ||
      (cmd[0] ?? '').startsWith(`${argv[0] ?? ''}:`)
    );
  } catch {
    return false;
  }
}

/** Takes down the lab with this prefix (state file processes, namespaces, dir). */
export async function labDown(prefix: string, log: (m: string) => void): Promise<void> {
  const st = readState(prefix);
  for (const p of st?.processes ?? []) {
    if (!pidAlive(p.pid) || !sameProgram(p.pid, p.argv)) continue;
    try {
      process.kill(p.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    for (let i = 0; i < 30 && pidAlive(p.pid); i++) await sleep(100);
    if (pidAlive(p.pid)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  for (const problem of await removeStale(prefix, log)) log(`lab: ${problem}`);
  if (st?.dir && st.dir.startsWith(path.join(os.tmpdir(), 'tcpcopy-lab-')))
    rmSync(st.dir, { recursive: true, force: true });
  if (existsSync(stateFile(prefix))) unlinkSync(stateFile(prefix));
}

/** The CLI; resolves the exit code. */
export async function labMain(argv: readonly string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  let prefix: string | undefined;
  let clientAddresses: number | undefined;
  let online2 = false;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === '--prefix') prefix = rest[++i];
    else if (a === '--client-addresses') clientAddresses = Number(rest[++i]);
    else if (a === '--online2') online2 = true;
    else {
      process.stderr.write(`lab: unknown option ${String(a)}\n`);
      return 2;
    }
  }
  if (prefix === undefined || !['up', 'down', 'status'].includes(cmd ?? '')) {
    process.stderr.write('usage: lab-main up|down|status --prefix P [--client-addresses N] [--online2]\n');
    return 2;
  }
  const log = (m: string): void => {
    process.stderr.write(`${m}\n`);
  };
  try {
    validatePrefix(prefix);
    if (cmd === 'down') {
      await labDown(prefix, log);
      return 0;
    }
    if (cmd === 'status') {
      const mine = new Set(allNamespaces(prefix));
      const st = readState(prefix);
      const out = {
        prefix,
        namespaces: (await listNamespaces()).filter((n) => mine.has(n)),
        stateFile: st ? stateFile(prefix) : null,
        dir: st?.dir ?? null,
        processes: (st?.processes ?? []).map((p) => ({ ...p, alive: pidAlive(p.pid) && sameProgram(p.pid, p.argv) })),
        hosts: st?.hosts ?? null,
      };
      process.stdout.write(JSON.stringify(out, null, 2) + '\n');
      return 0;
    }
    await labDown(prefix, log);
    const lab = await Lab.up({
      prefix,
      online2,
      keepDir: true,
      log,
      ...(clientAddresses !== undefined ? { clientAddresses } : {}),
    });
    try {
      await lab.startNginx('online', { port: 80, detached: true });
      await lab.startNginx('target', { port: 8080, detached: true });
      if (online2) await lab.startNginx('online2', { port: 80, detached: true });
    } catch (e) {
      await lab.down();
      throw e;
    }
    const st = lab.state();
    writeFileSync(stateFile(prefix), JSON.stringify(st, null, 2) + '\n');
    process.stdout.write(JSON.stringify({ ...st, stateFile: stateFile(prefix) }, null, 2) + '\n');
    return 0;
  } catch (e) {
    process.stderr.write(`lab ${cmd}: ${e instanceof TcpcopyError ? `${e.code}: ` : ''}${(e as Error).message}\n`);
    return 1;
  }
}

if (require.main === module) {
  void labMain(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
