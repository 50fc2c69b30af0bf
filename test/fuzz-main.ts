/**
 * `npm run fuzz -- [--minutes N] [--target NAME,...] [--seed N] [--batch N] [--hang-seconds S] [--out DIR]`
 *
 * Runs the fuzz targets of test/fuzz/targets.ts (the same properties as the unit suite) for
 * N minutes (default 1), round robin, in batches of fresh random seeds, in a worker thread
 * watched by the main thread: a case that runs longer than --hang-seconds (default 30) is a
 * hang. Every failing input (shrunk by fast-check) and every hanging one is saved under
 * test/fixtures/fuzz/ (or --out DIR) as a regression case that the unit suite replays.
 * At most 3 cases are saved per target and run; a target that failed 3 times is left out.
 * Prints a summary per target; exits 1 when something was found, 0 otherwise, 2 on bad usage.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import fc from 'fast-check';
import { ALL_TARGETS, findTarget } from './fuzz/targets';
import { propertyOf, type FuzzTarget } from './fuzz/target';
import { FIXTURE_DIR, saveCase } from './fuzz/saved-cases';
import { fromJson, toJson } from './fuzz/serialize';

/** A batch the main thread asks the worker to run. */
interface BatchRequest {
  target: string;
  seed: number;
  numRuns: number;
  /** Stop generating after this long (ms): batches stay short whatever a case costs. */
  timeLimitMs: number;
}
/** What the worker answers. */
interface BatchResult {
  target: string;
  seed: number;
  cases: number;
  failed: boolean;
  error: string;
  path: string | null;
  input: unknown;
}

/** Options of a fuzz run. */
interface FuzzOptions {
  /** --minutes: how long to run, minutes (default 1). */
  minutes: number;
  /** --target: names of the targets to run (default all). */
  targets: FuzzTarget[];
  /** --seed: first seed (later batches use seed+1, seed+2, ...); default random. */
  seed: number | null;
  /** --batch: most cases per batch, as a multiple of the target's unitRuns (default 1000; a batch ends after BATCH_MS anyway). */
  batch: number;
  /** --hang-seconds: a case running longer is saved as a hang (default 30). */
  hangSeconds: number;
  /** --out: folder for saved cases (default test/fixtures/fuzz). */
  out: string;
}

const MAX_SAVED_PER_TARGET = 3;
/** Longest batch, ms (then the next target's turn). */
const BATCH_MS = 5000;

function usage(msg: string): never {
  process.stderr.write(
    `fuzz: ${msg}\nusage: npm run fuzz -- [--minutes N] [--target NAME,...] [--seed N] [--batch N] [--hang-seconds S] [--out DIR]\n` +
      `targets: ${ALL_TARGETS.map((t) => t.name).join(', ')}\n`,
  );
  process.exit(2);
}

function parseOptions(argv: string[]): FuzzOptions {
  const o: FuzzOptions = {
    minutes: 1,
    targets: [...ALL_TARGETS],
    seed: null,
    batch: 1000,
    hangSeconds: 30,
    out: FIXTURE_DIR,
  };
  const num = (flag: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (v === undefined || v.trim() === '' || !Number.isFinite(n) || n < min)
      usage(`${flag} ${v ?? ''}: expected a number >= ${min}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    if (a === '--minutes') o.minutes = num(a, v, 0);
    else if (a === '--seed') o.seed = Math.floor(num(a, v, -(2 ** 31)));
    else if (a === '--batch') o.batch = num(a, v, 0.01);
    else if (a === '--hang-seconds') o.hangSeconds = num(a, v, 1);
    else if (a === '--out') {
      if (v === undefined) usage('--out needs a folder');
      o.out = v;
    } else if (a === '--target') {
      if (v === undefined) usage('--target needs a name');
      o.targets = v.split(',').map((n) => findTarget(n) ?? usage(`unknown target ${n}`));
    } else if (a === '-h' || a === '--help') usage('help');
    else usage(`unknown argument ${a ?? ''}`);
    i++;
  }
  return o;
}

// ---- worker: runs batches, counts cases in shared memory for the watchdog ----

async function workerMain(): Promise<void> {
  const counter = new Int32Array(workerData as SharedArrayBuffer);
  const port = parentPort;
  if (port === null) return;
  port.on('message', (req: BatchRequest) => {
    void (async () => {
      const t = findTarget(req.target);
      if (!t) throw new Error(`unknown target ${req.target}`);
      Atomics.store(counter, 0, 0);
      const r = await fc.check(
        propertyOf(t, () => Atomics.add(counter, 0, 1)),
        {
          seed: req.seed,
          numRuns: req.numRuns,
          interruptAfterTimeLimit: req.timeLimitMs,
          markInterruptAsFailure: false,
        },
      );
      const err = r.errorInstance;
      const res: BatchResult = {
        target: req.target,
        seed: req.seed,
        cases: r.numRuns,
        failed: r.failed,
        error: err instanceof Error ? (err.stack ?? err.message) : String(err),
        path: r.counterexamplePath,
        input: r.failed && r.counterexample ? toJson(r.counterexample[0]) : null,
      };
      port.postMessage(res);
    })();
  });
}

// ---- main: schedules batches, watches for hangs, saves what fails ----

/** The input fast-check generated as case number `k` (0-based) of a batch with `seed`. */
async function regenerate(t: FuzzTarget, seed: number, k: number): Promise<unknown> {
  let i = 0;
  let got: unknown = undefined;
  await fc.check(
    fc.asyncProperty(t.arb, async (v) => {
      if (i++ === k) got = v;
      await Promise.resolve();
    }),
    { seed, numRuns: k + 1 },
  );
  return got;
}

interface Tally {
  batches: number;
  cases: number;
  failures: number;
  hangs: number;
  ms: number;
  saved: string[];
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const end = Date.now() + o.minutes * 60_000;
  const shared = new SharedArrayBuffer(4);
  const counter = new Int32Array(shared);
  let worker = new Worker(__filename, { workerData: shared });
  const tally = new Map<string, Tally>(
    o.targets.map((t) => [t.name, { batches: 0, cases: 0, failures: 0, hangs: 0, ms: 0, saved: [] }]),
  );
  let seed = o.seed ?? Math.floor(Math.random() * 2 ** 31);
  let active = [...o.targets];
  let turn = 0;
  process.stdout.write(
    `fuzz: ${o.targets.length} targets for ${o.minutes} min, first seed ${seed}, saving to ${o.out}\n`,
  );
  while (Date.now() < end && active.length > 0) {
    const t = active[turn++ % active.length] as FuzzTarget;
    const tl = tally.get(t.name) as Tally;
    const req: BatchRequest = {
      target: t.name,
      seed: seed++,
      numRuns: Math.max(1, Math.round(t.unitRuns * o.batch)),
      timeLimitMs: Math.max(100, Math.min(BATCH_MS, end - Date.now())),
    };
    const started = Date.now();
    const res = await new Promise<BatchResult | 'hang' | Error>((resolve) => {
      let last = -1;
      let lastChange = Date.now();
      const watch = setInterval(() => {
        const c = Atomics.load(counter, 0);
        if (c !== last) {
          last = c;
          lastChange = Date.now();
        } else if (Date.now() - lastChange > o.hangSeconds * 1000) {
          cleanup();
          resolve('hang');
        }
      }, 250);
      const onMsg = (m: BatchResult): void => {
        cleanup();
        resolve(m);
      };
      const onErr = (e: Error): void => {
        cleanup();
        resolve(e);
      };
      const cleanup = (): void => {
        clearInterval(watch);
        worker.off('message', onMsg);
        worker.off('error', onErr);
      };
      worker.on('message', onMsg);
      worker.on('error', onErr);
      worker.postMessage(req);
    });
    tl.batches++;
    tl.ms += Date.now() - started;
    if (res === 'hang' || res instanceof Error) {
      const k = Math.max(0, Atomics.load(counter, 0) - 1);
      await worker.terminate();
      worker = new Worker(__filename, { workerData: shared });
      const hang = res === 'hang';
      if (hang) tl.hangs++;
      else tl.failures++;
      tl.cases += k + 1;
      // a case number beyond numRuns means fast-check was shrinking: the input cannot be rebuilt
      const input = k < req.numRuns ? await regenerate(t, req.seed, k) : undefined;
      const error = hang
        ? `no progress for ${o.hangSeconds} s on case ${k} (seed ${req.seed})`
        : `worker died on case ${k} (seed ${req.seed}): ${res instanceof Error ? (res.stack ?? res.message) : ''}`;
      process.stdout.write(`fuzz: ${t.name}: ${error}\n`);
      if (input !== undefined) {
        const f = saveCase(o.out, {
          target: t.name,
          error,
          kind: hang ? 'hang' : 'failure',
          seed: req.seed,
          path: null,
          input,
        });
        tl.saved.push(f);
        process.stdout.write(`fuzz: saved ${f}\n`);
      }
    } else {
      tl.cases += res.cases;
      if (res.failed) {
        tl.failures++;
        const f = saveCase(o.out, {
          target: t.name,
          error: res.error,
          kind: 'failure',
          seed: res.seed,
          path: res.path,
          input: fromJson(res.input),
        });
        tl.saved.push(f);
        process.stdout.write(
          `fuzz: ${t.name} FAILED (seed ${res.seed}, path ${res.path ?? '-'}): ${res.error.split('\n')[0] ?? ''}\nfuzz: saved ${f}\n`,
        );
      }
    }
    if (tl.failures + tl.hangs >= MAX_SAVED_PER_TARGET) active = active.filter((x) => x !== t);
  }
  await worker.terminate();
  const rows = [...tally.entries()].map(([name, x]) => [
    name,
    String(x.batches),
    String(x.cases),
    x.ms > 0 ? ((x.cases * 1000) / x.ms).toFixed(0) : '-',
    String(x.failures),
    String(x.hangs),
  ]);
  const head = ['target', 'batches', 'cases', 'cases/s', 'failures', 'hangs'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => c.padEnd(w[i] ?? 0))
      .join('  ')
      .trimEnd();
  process.stdout.write(`\n${line(head)}\n${rows.map(line).join('\n')}\n`);
  const found = [...tally.values()].reduce((a, x) => a + x.failures + x.hangs, 0);
  const total = [...tally.values()].reduce((a, x) => a + x.cases, 0);
  process.stdout.write(
    found === 0
      ? `fuzz: ${total} cases, nothing found\n`
      : `fuzz: ${total} cases, ${found} problem(s); saved cases are replayed by the unit suite (test/unit/fuzz/regressions.test.ts)\n`,
  );
  process.exitCode = found === 0 ? 0 : 1;
}

if (isMainThread) {
  main().catch((e: unknown) => {
    process.stderr.write(`fuzz: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(2);
  });
} else {
  void workerMain();
}
