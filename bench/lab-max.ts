/**
 * The highest offered load tcpcopy replays at >= 99.9% (issue 7, part 1): one live tcpcopy
 * (warmed up first) under ascending loads, `stepSeconds` each, keep-alive and one request per
 * connection. A step passes when the target logged >= 99.9% of what online logged in that
 * step. The answer is the highest rate actually sent in a passing step. The search stops at the
 * first failing step, or when the load generator itself sent under 95% of the offered rate and
 * no more than in the step before: then the answer is "at least" that, the limit being the
 * generator's (everything shares 2 CPUs), which the result says.
 *
 * After the steps, when wrk is installed, one more step per mode drives wrk flat out (64
 * connections, no rate: the most the lab can offer, 10-14k short connections/s and 15-45k
 * keep-alive requests/s here, where the lab's own generator stops at about 3.5k and 20k), so
 * that tcpcopy's peak resident set is measured at every load the lab can offer (issue 18 item
 * 13). Its fidelity is reported but does not change the answer above.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { withLab, type Lab } from '../src/lab/lab';
import { parseProm } from '../src/lab/soak-eval';
import { startIntercept, startLiveTcpcopy, waitSettled } from '../test/e2e/replay-helpers';
import { applyTargetModel, BENCH_TCPCOPY_ARGS, loadOptions, type TargetModel } from './lab';
import { peakRssMB } from './lab-proc';
import { breakdownLine, MemTrace, type MappingBreakdown } from './mem-trace';

/** One step of the search. */
export interface MaxStep {
  /** Offered requests/s; 0 for the wrk step (flat out). */
  offeredRate: number;
  /** Who drove the step: the lab's load generator at offeredRate, or wrk flat out. */
  generator: 'loadgen' | 'wrk';
  sentRate: number;
  online: number;
  target: number;
  fidelity: number;
  /** tcpcopy's largest resident set during the step (VmRSS sampled every 200 ms), MiB. */
  tcpcopyPeakRssMB: number;
  /**
   * What the resident set is made of, the largest of each during the step (tcpcopy's metrics,
   * read about once a second): the V8 heap reserved (both generations) and in use, memory
   * outside the heap (Buffers), open sessions. MiB, sessions a count; NaN when never read.
   */
  heapTotalMB: number;
  heapUsedMB: number;
  externalMB: number;
  sessions: number;
  /**
   * Resident set by kind of mapping at the step's largest resident set, read from outside
   * (/proc/PID/smaps every 100 ms, so a starved tcpcopy cannot make it miss the peak); null when
   * not read.
   */
  mappings: MappingBreakdown | null;
}

/**
 * Each step's requests carry their own query (`?s=TAG`), and online and target lines are
 * counted per tag: a starved tcpcopy still replaying the warm-up or an earlier step while the
 * next one runs would otherwise be counted in it (a first step at 105% in one run).
 */
export function tagged(path: string, tag: string): string {
  return `${path}?s=${tag}`;
}

/** Lines of the access log whose request carries `?s=TAG` (followed by a space: the request line's). */
export function taggedLines(s: { accessLog: string }, tag: string): number {
  let b: Buffer;
  try {
    b = fs.readFileSync(s.accessLog);
  } catch {
    return 0;
  }
  const needle = Buffer.from(`?s=${tag} `);
  let n = 0;
  for (let i = b.indexOf(needle); i !== -1; i = b.indexOf(needle, i + needle.length)) n++;
  return n;
}

/** tcpcopy's metrics endpoint in the online namespace (for the memory breakdown). */
const METRICS = '127.0.0.1:9464';

/** tcpcopy's resident set now (VmRSS), MiB; NaN when it is gone. */
function rssMB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** tcpcopy's heap, external memory (MiB) and sessions from its metrics; NaNs when it does not answer. */
async function memoryOf(
  lab: Lab,
): Promise<{ heapTotalMB: number; heapUsedMB: number; externalMB: number; sessions: number }> {
  const r = await lab
    .exec('online', ['curl', '-s', '--max-time', '2', `http://${METRICS}/metrics`], { timeoutMs: 5000 })
    .catch(() => ({ code: 1, stdout: '' }));
  const m = r.code === 0 ? parseProm(r.stdout) : new Map<string, number>();
  const g = (k: string): number => m.get(`tcpcopy_${k}`) ?? NaN;
  const MB = 1048576;
  return {
    heapTotalMB: g('heap_total_bytes') / MB,
    heapUsedMB: g('heap_used_bytes') / MB,
    externalMB: g('external_memory_bytes') / MB,
    sessions: g('sessions_active'),
  };
}

/** The search's answer for one mode. */
export interface MaxLoadResult {
  mode: 'keepalive' | 'short';
  model: TargetModel;
  /** Highest offered rate (req/s) replayed at >= 99.9%; 0 when none. */
  highestOkRate: number;
  /** Why the search stopped: a step under 99.9%, the generator under 95% of the offered rate, or the last step passed. */
  stoppedBy: 'fidelity' | 'generator' | 'steps';
  steps: MaxStep[];
  /** tcpcopy's peak RSS over its whole life (VmHWM: warm-up and every step), MiB. */
  tcpcopyPeakRssMB: number;
  /** tcpcopy's own accounting at exit (its JSON report): losses by reason; absent when no report. */
  accounting?: { captured: number; replayed: number; lost: Record<string, number>; unexplained: number };
}

/** Seconds of the wrk step; its connections. */
const WRK_SECONDS = 5;
const WRK_CONNECTIONS = 64;

/** Whether wrk is on this machine's PATH (the lab's namespaces share the file system). */
function haveWrk(): boolean {
  return (process.env['PATH'] ?? '').split(':').some((d) => d !== '' && fs.existsSync(`${d}/wrk`));
}

/** wrk flat out from the client for WRK_SECONDS; resolves its requests per second (NaN when it failed). */
async function driveWrk(lab: Lab, keepAlive: boolean, tag: string): Promise<number> {
  const r = await lab.exec(
    'client',
    [
      'timeout',
      String(WRK_SECONDS + 20),
      'wrk',
      '-d',
      `${WRK_SECONDS}s`,
      '-t',
      '2',
      '-c',
      String(WRK_CONNECTIONS),
      ...(keepAlive ? [] : ['-H', 'Connection: close']),
      `http://198.18.1.1${tagged('/', tag)}`,
    ],
    { timeoutMs: (WRK_SECONDS + 30) * 1000 },
  );
  const m = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  return r.code === 0 && m ? Number(m[1]) : NaN;
}

/**
 * Sets the nice value of every thread of `pid` (Linux nice is per thread: the capture ring's
 * thread too); false when one could not be set. Used to starve tcpcopy of CPU on purpose.
 */
export function reniceAll(pid: number, nice: number): boolean {
  let ok = true;
  let tids: string[] = [String(pid)];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    // gone or not Linux: the main thread only
  }
  for (const t of tids) {
    try {
      os.setPriority(Number(t), nice);
    } catch {
      ok = false;
    }
  }
  return ok;
}

/** Stops and continues `pid` in turn (RUN ms running, STOP ms stopped) until stop(), which leaves it running. */
function dutyCycle(pid: number, runMs: number, stopMs: number): { stop(): void } {
  let timer: NodeJS.Timeout | null = null;
  let done = false;
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(pid, sig);
    } catch {
      done = true; // gone
    }
  };
  const run = (): void => {
    signal('SIGCONT');
    if (!done) timer = setTimeout(halt, runMs);
  };
  const halt = (): void => {
    signal('SIGSTOP');
    timer = setTimeout(run, stopMs);
  };
  timer = setTimeout(halt, runMs);
  return {
    stop() {
      done = true;
      if (timer !== null) clearTimeout(timer);
      signal('SIGCONT');
    },
  };
}

/** Ascending offered rates per mode. */
export const MAX_STEPS = {
  keepalive: [10_000, 15_000, 20_000, 25_000, 30_000, 40_000],
  short: [4000, 6000, 8000, 10_000, 12_000, 16_000],
} as const;

/** Paths of the lab's load, tagged per step (see `tagged`). */
const PATHS = ['/', '/bytes/100', '/bytes/1000'];

/** The settings of runMaxLoad beyond the model. */
export interface MaxLoadOptions {
  /** Seconds per step; default 5. */
  stepSeconds?: number;
  /** Extra node arguments for tcpcopy (BENCH_NODE_ARGS). */
  nodeArgs?: readonly string[];
  /** Extra tcpcopy arguments (BENCH_TCPCOPY_ARGS). */
  tcpcopyArgs?: readonly string[];
  /**
   * The nice value given to tcpcopy's threads once it runs (BENCH_TCPCOPY_NICE, default 0 =
   * unchanged), e.g. 19 to measure it starved of CPU by the load generator and the servers (the
   * contention case of issue 18 item 13: a busy production host).
   */
  tcpcopyNice?: number;
  /**
   * Starves tcpcopy by the clock instead of by priority (BENCH_TCPCOPY_DUTY=RUN/STOP, ms): it is
   * stopped (SIGSTOP) for STOP ms after every RUN ms, every thread alike, so it gets at most
   * RUN/(RUN+STOP) of the wall time whatever the machine's load; null: never stopped.
   */
  tcpcopyDuty?: { runMs: number; stopMs: number } | null;
  /** The modes measured (BENCH_MAX_MODES, e.g. `short`); default both. */
  modes?: ReadonlyArray<'keepalive' | 'short'>;
  /** At most this many load generator steps per mode (BENCH_MAX_STEPS; 0: the wrk step only); default all. */
  maxSteps?: number;
}

/** Runs the search for both modes; `log` gets a line per step. */
export async function runMaxLoad(
  log: (s: string) => void,
  model: TargetModel,
  o: MaxLoadOptions = {},
): Promise<MaxLoadResult[]> {
  const stepSeconds = o.stepSeconds ?? 5;
  const tcpcopyNice = o.tcpcopyNice ?? 0;
  return withLab({ prefix: 'tcs4', clientAddresses: 50 }, async (lab) => {
    const online = await lab.startNginx('online', { port: 80 });
    const target = await lab.startNginx('target', { port: 8080 });
    await startIntercept(lab);
    const out: MaxLoadResult[] = [];
    for (const mode of o.modes ?? (['keepalive', 'short'] as const)) {
      const keepAlive = mode === 'keepalive';
      const concurrency = keepAlive ? 32 : 16;
      const tc = await startLiveTcpcopy(
        lab,
        [...BENCH_TCPCOPY_ARGS, ...(o.tcpcopyArgs ?? []), '--metrics', METRICS],
        'online',
        ['--status', '0'],
        o.nodeArgs ?? [],
      );
      await applyTargetModel(lab, model, tc.proc.pid);
      if (tcpcopyNice !== 0 && !reniceAll(tc.proc.pid, tcpcopyNice))
        log(`max: could not renice tcpcopy to ${tcpcopyNice}`);
      const duty = o.tcpcopyDuty ? dutyCycle(tc.proc.pid, o.tcpcopyDuty.runMs, o.tcpcopyDuty.stopMs) : null;
      const rates = MAX_STEPS[mode].slice(0, o.maxSteps ?? Infinity);
      // warm-up at the first step's rate, not counted (its own tag: replayed late, it is not counted in a step)
      await lab.load('client', {
        ...loadOptions({ keepAlive, rate: MAX_STEPS[mode][0], concurrency }, 3),
        paths: PATHS.map((p) => tagged(p, `${mode}-warm`)),
      });
      const res: MaxLoadResult = {
        mode,
        model,
        highestOkRate: 0,
        stoppedBy: 'steps',
        steps: [],
        tcpcopyPeakRssMB: NaN,
      };
      /** One step: `drive` offers the load tagged `tag` and resolves the rate sent; returns the step with its memory figures. */
      const step = async (
        generator: MaxStep['generator'],
        rate: number,
        drive: (tag: string) => Promise<number>,
      ): Promise<MaxStep> => {
        await new Promise((r) => setTimeout(r, 500));
        const tag = `${mode}-${res.steps.length}`;
        const trace = new MemTrace(tc.proc.pid, 100);
        let stepRss = rssMB(tc.proc.pid);
        const mem = { heapTotalMB: NaN, heapUsedMB: NaN, externalMB: NaN, sessions: NaN };
        let reading = false;
        let ticks = 0;
        const sampler = setInterval(() => {
          stepRss = Math.max(stepRss, rssMB(tc.proc.pid));
          if (ticks++ % 5 !== 0 || reading) return;
          reading = true;
          void memoryOf(lab).then((x) => {
            for (const k of Object.keys(mem) as Array<keyof typeof mem>)
              if (!(mem[k] >= x[k])) mem[k] = Number.isNaN(x[k]) ? mem[k] : x[k];
            reading = false;
          });
        }, 200);
        const { sent, onlineN, targetN } = await (async () => {
          try {
            const sent = await drive(tag);
            const onlineN = taggedLines(online, tag);
            const targetN = await waitSettled(() => taggedLines(target, tag), onlineN, 15_000, 500);
            return { sent, onlineN, targetN };
          } finally {
            clearInterval(sampler);
            trace.stop();
          }
        })();
        const st: MaxStep = {
          offeredRate: rate,
          generator,
          sentRate: Math.round(sent),
          online: onlineN,
          target: targetN,
          fidelity: targetN / Math.max(1, onlineN),
          tcpcopyPeakRssMB: Math.max(stepRss, trace.peakRssKB / 1024),
          ...mem,
          mappings: trace.peak,
        };
        res.steps.push(st);
        const dir = process.env['BENCH_MEM_TRACE'];
        if (dir) fs.writeFileSync(`${dir}/${tag}.json`, JSON.stringify({ step: st, samples: trace.samples }));
        log(
          `max[${model}] ${mode} ${generator === 'wrk' ? 'wrk flat out' : `${rate}/s`}: sent ${st.sentRate}/s, online ${onlineN}, target ${targetN} (${(st.fidelity * 100).toFixed(2)}%), tcpcopy peak RSS ${st.tcpcopyPeakRssMB.toFixed(0)} MiB (heap ${st.heapUsedMB.toFixed(0)}/${st.heapTotalMB.toFixed(0)}, external ${st.externalMB.toFixed(0)} MiB, sessions ${st.sessions}); at the peak: ${breakdownLine(trace.peak)}`,
        );
        return st;
      };
      for (const rate of rates) {
        const st = await step('loadgen', rate, async (tag) => {
          const sum = await lab.load('client', {
            ...loadOptions({ keepAlive, rate, concurrency }, stepSeconds),
            paths: PATHS.map((p) => tagged(p, tag)),
          });
          return sum.requestsPerSec;
        });
        if (st.fidelity < 0.999) {
          res.stoppedBy = 'fidelity';
          break;
        }
        const before = res.highestOkRate;
        res.highestOkRate = Math.max(res.highestOkRate, Math.min(rate, st.sentRate));
        // the generator fell short of the offered rate and got no further than the last step
        if (st.sentRate < 0.95 * rate && st.sentRate < before * 1.05) {
          res.stoppedBy = 'generator';
          break;
        }
      }
      if (haveWrk()) await step('wrk', 0, (tag) => driveWrk(lab, keepAlive, tag));
      duty?.stop();
      res.tcpcopyPeakRssMB = peakRssMB(tc.proc.pid);
      const end = await tc.stop();
      const dir = process.env['BENCH_MEM_TRACE'];
      if (dir) fs.writeFileSync(`${dir}/${mode}-tcpcopy.log`, end.stderr + end.stdout);
      const acc = end.report?.accounting;
      if (acc !== undefined) {
        const lost = Object.entries(acc.lost)
          .filter(([, n]) => n > 0)
          .map(([k, n]) => `${k} ${n}`)
          .join(', ');
        res.accounting = {
          captured: acc.captured,
          replayed: acc.replayed,
          lost: acc.lost,
          unexplained: acc.unexplained,
        };
        log(
          `max[${model}] ${mode}: tcpcopy's report: captured ${acc.captured}, replayed ${acc.replayed}, lost ${lost || 'none'}` +
            `, unexplained ${acc.unexplained}; capture ring drops ${end.report?.capture?.dropped ?? 'n/a'}`,
        );
      }
      log(
        `max[${model}] ${mode}: highest load replayed at >= 99.9%: ${res.highestOkRate} req/s` +
          (res.stoppedBy === 'generator'
            ? ' (at least: the load generator could not offer more on this box)'
            : res.stoppedBy === 'steps'
              ? ' (at least: the last step)'
              : '') +
          `; tcpcopy peak RSS ${res.tcpcopyPeakRssMB.toFixed(0)} MiB`,
      );
      out.push(res);
    }
    return out;
  });
}
