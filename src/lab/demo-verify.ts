/**
 * The demo's verification: compares what the online nginx logged (the real traffic) with
 * what the target nginx logged (the replay) and tcpcopy's own accounting, and turns it into
 * readable lines and a verdict. Pure: no I/O.
 */
import type { AccessRecord } from './access-log';

/** The parts of tcpcopy's `--report json:FILE` the demo reads. */
export interface DemoTcpcopyReport {
  /** Request accounting: captured = replayed + lost (by reason). */
  accounting: { captured: number; replayed: number; lost: Record<string, number>; balanced: boolean };
  /** Why tcpcopy stopped (e.g. 'SIGINT'). */
  stopReason?: string;
}

/** What the demo expects from the replay, derived from the tcpcopy options it ran with. */
export interface DemoExpectation {
  /** Every captured session is replayed this many times (-n). Default 1. */
  replicas: number;
  /** Client addresses are rewritten (-c), so the target sees other addresses than online. */
  rewritesClients: boolean;
  /** Sessions are sampled (-r below 100, or -g), so only tcpcopy's accounting knows how many requests to expect. */
  samples: boolean;
  /** The lab's client addresses (what online and, without -c, the target should see). */
  clientAddresses: readonly string[];
}

/** Result of {@link verifyDemo}. */
export interface DemoVerdict {
  /** True when the target received at least `minRatio` of the expected requests and the addresses are right. */
  ok: boolean;
  /** Requests the online server logged. */
  online: number;
  /** Requests the target logged. */
  target: number;
  /** Requests the target should have logged (online x replicas, minus those -r sampled out). */
  expected: number;
  /** target / expected, 0..(more than 1 when the target got extra requests). */
  ratio: number;
  /** The human-readable verification section, one entry per line. */
  lines: string[];
  /** The last line: `demo: OK: ...` or `demo: MISMATCH: ...`. */
  verdictLine: string;
}

/** Fraction of the expected requests the target must log for an OK verdict. */
export const DEMO_MIN_RATIO = 0.999;

function countBy(recs: readonly AccessRecord[], key: (r: AccessRecord) => string): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of recs) m.set(key(r), (m.get(key(r)) ?? 0) + 1);
  return m;
}

function pct(n: number, d: number): string {
  return d === 0 ? (n === 0 ? '100.0' : 'inf') : ((100 * n) / d).toFixed(1);
}

/**
 * Compares the online and target access logs and tcpcopy's report.
 * `report` is null when tcpcopy wrote no JSON report (it then cannot be OK).
 */
export function verifyDemo(
  onlineRecs: readonly AccessRecord[],
  targetRecs: readonly AccessRecord[],
  report: DemoTcpcopyReport | null,
  exp: DemoExpectation,
): DemoVerdict {
  const lines: string[] = [];
  const online = onlineRecs.length;
  const target = targetRecs.length;
  const sampledOut = report?.accounting.lost['sampledOut'] ?? 0;
  // Sampling: expect the requests of the sessions tcpcopy chose to replay (its own accounting).
  const expected =
    exp.samples && report !== null
      ? Math.max(0, report.accounting.captured - sampledOut)
      : Math.max(0, online * exp.replicas - sampledOut);
  const ratio = expected === 0 ? (target === 0 ? 1 : Infinity) : target / expected;
  lines.push(
    `  online nginx (198.18.0.1:80) logged     ${online} requests${exp.replicas > 1 ? ` (x ${exp.replicas} replicas = ${online * exp.replicas})` : ''}`,
  );
  if (exp.samples)
    lines.push(
      `  sampled out by -r/-g                     ${sampledOut} requests (expected = tcpcopy's captured - sampled out)`,
    );
  lines.push(
    `  target nginx (198.18.0.2:8080) logged   ${target} requests (${pct(target, expected)}% of ${expected} expected)`,
  );
  if (report !== null) {
    const a = report.accounting;
    const lost =
      Object.entries(a.lost)
        .filter(([, v]) => v > 0)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ') || 'none';
    lines.push(
      `  tcpcopy's accounting                    captured ${a.captured}, replayed ${a.replayed}, lost ${lost}${a.balanced ? '' : ' (not balanced)'}`,
    );
  } else {
    lines.push('  tcpcopy wrote no JSON report');
  }

  // per family, when the load was dual stack
  const v6 = (r: AccessRecord): boolean => r.remoteAddr.includes(':');
  if (onlineRecs.some(v6)) {
    const o6 = onlineRecs.filter(v6).length;
    const t6 = targetRecs.filter(v6).length;
    lines.push(
      `  by family                                IPv4 online ${online - o6}, target ${target - t6}; IPv6 online ${o6}, target ${t6}`,
    );
  }

  // per path
  const byPathOnline = countBy(onlineRecs, (r) => `${r.method} ${r.path}`);
  const byPathTarget = countBy(targetRecs, (r) => `${r.method} ${r.path}`);
  const keys = [...new Set([...byPathOnline.keys(), ...byPathTarget.keys()])].sort();
  const width = Math.max(14, ...keys.map((k) => k.length)) + 2;
  lines.push('');
  lines.push(`  ${'request'.padEnd(width)}${'online'.padStart(8)}${'target'.padStart(8)}`);
  let pathsOk = true;
  for (const k of keys) {
    const o = byPathOnline.get(k) ?? 0;
    const t = byPathTarget.get(k) ?? 0;
    const want = o * exp.replicas;
    const mark = t === want ? '' : `   <- ${t < want ? 'missing' : 'extra'} ${Math.abs(want - t)}`;
    if ((!exp.samples && t < want * DEMO_MIN_RATIO) || t > want) pathsOk = false;
    lines.push(`  ${k.padEnd(width)}${String(o).padStart(8)}${String(t).padStart(8)}${mark}`);
  }

  // client addresses
  lines.push('');
  const clients = new Set(exp.clientAddresses);
  const seenOnline = [...new Set(onlineRecs.map((r) => r.remoteAddr))].sort(ipOrder);
  const seenTarget = [...new Set(targetRecs.map((r) => r.remoteAddr))].sort(ipOrder);
  const foreign = seenTarget.filter((a) => !clients.has(a));
  let addrsOk = true;
  lines.push(`  client addresses seen by online          ${seenOnline.length} (${range(seenOnline)})`);
  lines.push(`  client addresses seen by the target      ${seenTarget.length} (${range(seenTarget)})`);
  if (exp.rewritesClients) {
    lines.push('  (-c rewrites the client addresses, so the target sees the rewritten ones)');
  } else if (foreign.length > 0) {
    addrsOk = false;
    lines.push(`  NOT from the lab's clients: ${foreign.slice(0, 5).join(' ')}${foreign.length > 5 ? ' ...' : ''}`);
  } else {
    lines.push("  every request reached the target from an original client address (the lab's client range)");
  }

  const countOk = expected > 0 && ratio >= DEMO_MIN_RATIO && target <= expected;
  const ok = countOk && pathsOk && addrsOk && report !== null;
  const why: string[] = [];
  if (!countOk) why.push(`the target received ${target} of ${expected} requests (${pct(target, expected)}%)`);
  if (countOk && !pathsOk) why.push('per-request counts differ');
  if (!addrsOk) why.push(`${foreign.length} client addresses outside the lab's client range`);
  if (report === null) why.push('tcpcopy wrote no report');
  const verdictLine = ok
    ? `demo: OK: the target received ${target} of ${expected} requests (${pct(target, expected)}%)`
    : `demo: MISMATCH: ${why.join('; ')}`;
  return { ok, online, target, expected, ratio, lines, verdictLine };
}

function ipOrder(a: string, b: string): number {
  const a6 = a.includes(':');
  if (a6 !== b.includes(':')) return a6 ? 1 : -1; // IPv4 first
  if (a6) return a < b ? -1 : a > b ? 1 : 0;
  const na = a.split('.').map(Number);
  const nb = b.split('.').map(Number);
  for (let i = 0; i < 4; i++) {
    const d = (na[i] ?? 0) - (nb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function range(sorted: readonly string[]): string {
  if (sorted.length === 0) return 'none';
  if (sorted.length === 1) return sorted[0] ?? '';
  return `${sorted[0] ?? ''} .. ${sorted[sorted.length - 1] ?? ''}`;
}

/** Reads what the demo must expect from extra tcpcopy options (-n N / --replicas N, -c / --client-ip). */
export function expectationFromArgs(args: readonly string[], clientAddresses: readonly string[]): DemoExpectation {
  let replicas = 1;
  let rewritesClients = false;
  let samples = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    let v: string | undefined;
    if (a === '-n' || a === '--replicas') v = args[i + 1];
    else if (a.startsWith('--replicas=')) v = a.slice('--replicas='.length);
    else if (/^-n\d+$/.test(a)) v = a.slice(2);
    if (v !== undefined && /^\d+$/.test(v)) replicas = Number(v);
    if (a === '-g' || a === '--ramp') samples = true;
    const r =
      a === '-r' || a === '--rate'
        ? args[i + 1]
        : a.startsWith('--rate=')
          ? a.slice(7)
          : /^-r\d+$/.test(a)
            ? a.slice(2)
            : undefined;
    if (r !== undefined && Number(r) < 100) samples = true;
    if (a === '-c' || a === '--client-ip' || a.startsWith('--client-ip=') || /^-c./.test(a)) rewritesClients = true;
  }
  return { replicas, rewritesClients, samples, clientAddresses };
}
