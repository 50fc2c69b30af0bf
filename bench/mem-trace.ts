/**
 * A fine-grained memory trace of a process read from outside it (/proc), so that it does not
 * depend on the process getting CPU (a starved tcpcopy answers its metrics endpoint seconds
 * late): the resident set every `everyMs` from /proc/PID/smaps_rollup, and, at the largest
 * resident set seen, the resident set of each kind of mapping from /proc/PID/smaps (issue 18
 * item 13: what grows outside the JS heap when tcpcopy is starved of CPU).
 */
import * as fs from 'node:fs';

/** Resident KiB by kind of mapping. */
export interface MappingBreakdown {
  /** Files mapped (the node binary, libraries). */
  fileKB: number;
  /** The capture ring (the packet socket's shared mapping). */
  ringKB: number;
  /** The main malloc arena ([heap], brk). */
  brkKB: number;
  /** glibc's per-thread malloc arenas (anonymous, 64 MiB aligned, 64 MiB with their reserve). */
  arenaKB: number;
  /** Other anonymous mappings: the V8 heap's pages, large malloc blocks (mmap), thread stacks. */
  anonKB: number;
  /** The largest single other-anonymous mapping, KiB, and how many other-anonymous mappings are resident. */
  largestAnonKB: number;
  anonMappings: number;
}

/** One sample of the trace. */
export interface MemSample {
  /** ms since the trace started. */
  t: number;
  rssKB: number;
  anonKB: number;
  fileKB: number;
  shmemKB: number;
}

const ARENA = 64 * 1024 * 1024;

/** Parses /proc/PID/smaps text into the breakdown. */
export function breakdownOf(smaps: string): MappingBreakdown {
  const b: MappingBreakdown = {
    fileKB: 0,
    ringKB: 0,
    brkKB: 0,
    arenaKB: 0,
    anonKB: 0,
    largestAnonKB: 0,
    anonMappings: 0,
  };
  type M = { start: number; end: number; perms: string; name: string; rss: number };
  const maps: M[] = [];
  let cur: M | null = null;
  for (const line of smaps.split('\n')) {
    const h = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (h) {
      cur = {
        start: parseInt(h[1] ?? '0', 16),
        end: parseInt(h[2] ?? '0', 16),
        perms: h[3] ?? '',
        name: h[4] ?? '',
        rss: 0,
      };
      maps.push(cur);
      continue;
    }
    const r = /^Rss:\s+(\d+) kB/.exec(line);
    if (r && cur) cur.rss = Number(r[1]);
  }
  for (let i = 0; i < maps.length; i++) {
    const m = maps[i] as M;
    if (m.rss === 0) continue;
    if (m.name === '[heap]') b.brkKB += m.rss;
    else if (m.name.startsWith('/') && !m.name.startsWith('/dev/zero') && !m.name.startsWith('/memfd'))
      b.fileKB += m.rss;
    else if (m.name.startsWith('socket:') || m.perms.endsWith('s')) b.ringKB += m.rss;
    else if (m.name === '' && m.start % ARENA === 0 && isArena(maps, i)) b.arenaKB += m.rss;
    else if (m.name === '' || m.name.startsWith('[anon')) {
      b.anonKB += m.rss;
      b.anonMappings++;
      b.largestAnonKB = Math.max(b.largestAnonKB, m.rss);
    } else b.anonKB += m.rss; // [stack], [vvar]...
  }
  return b;
}

/** A 64 MiB aligned rw-p mapping followed by its ---p reserve up to 64 MiB: a glibc thread arena. */
function isArena(maps: ReadonlyArray<{ start: number; end: number; perms: string }>, i: number): boolean {
  const m = maps[i];
  if (m === undefined || !m.perms.startsWith('rw')) return false;
  const next = maps[i + 1];
  const end = next !== undefined && next.start === m.end && next.perms.startsWith('---') ? next.end : m.end;
  return end - m.start === ARENA;
}

/** Reads smaps_rollup; null when the process is gone. */
function rollup(pid: number): { rssKB: number; anonKB: number; fileKB: number; shmemKB: number } | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const g = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
    return {
      rssKB: g('Rss'),
      anonKB: g('Anonymous'),
      fileKB: g('Rss') - g('Anonymous') - g('Shmem'),
      shmemKB: g('Shmem'),
    };
  } catch {
    return null;
  }
}

/** A running trace: stop() returns the samples, the peak's breakdown and the breakdown at the start. */
export class MemTrace {
  readonly samples: MemSample[] = [];
  peak: MappingBreakdown | null = null;
  peakRssKB = 0;
  readonly first: MappingBreakdown | null;
  private readonly t0 = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly pid: number,
    everyMs = 100,
  ) {
    this.first = this.smaps();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  private smaps(): MappingBreakdown | null {
    try {
      return breakdownOf(fs.readFileSync(`/proc/${this.pid}/smaps`, 'utf8'));
    } catch {
      return null;
    }
  }

  private sample(): void {
    const r = rollup(this.pid);
    if (r === null) return;
    this.samples.push({ t: Date.now() - this.t0, ...r });
    // a new peak (by at least 1 MiB): the breakdown of the mappings at it
    if (r.rssKB > this.peakRssKB + 1024 || this.peak === null) {
      this.peakRssKB = Math.max(this.peakRssKB, r.rssKB);
      this.peak = this.smaps() ?? this.peak;
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** One line of a breakdown, MiB. */
export function breakdownLine(b: MappingBreakdown | null): string {
  if (b === null) return 'n/a';
  const m = (kb: number): string => (kb / 1024).toFixed(1);
  return `file ${m(b.fileKB)}, ring ${m(b.ringKB)}, brk ${m(b.brkKB)}, thread arenas ${m(b.arenaKB)}, other anon ${m(b.anonKB)} (${b.anonMappings} mappings, largest ${m(b.largestAnonKB)}) MiB`;
}
