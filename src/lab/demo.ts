/**
 * The demo (`npm run demo`, `tcpcopy lab run [options]`): builds the namespace lab, starts
 * nginx on online:80 and target:8080, intercept on the assistant and tcpcopy live on online,
 * drives real HTTP traffic at the online nginx, stops tcpcopy, prints its report and checks
 * the target's access log against the online one. The lab is always removed afterwards.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { withLab, type Lab } from './lab';
import type { LoadOptions, LoadSummary } from './loadgen';
import type { LabProcess } from './process';
import { sleep } from './sh';
import { expectationFromArgs, verifyDemo, type DemoTcpcopyReport } from './demo-verify';

/** Compiled CLIs (dist/src/cli). */
const TCPCOPY_JS = path.join(__dirname, '..', 'cli', 'tcpcopy-main.js');
const INTERCEPT_JS = path.join(__dirname, '..', 'cli', 'intercept-main.js');

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Lab prefix (namespaces `<prefix>online` ...). Default 'demo'. */
  prefix?: string;
  /** Extra tcpcopy options appended to `-x 80-198.18.0.2:8080 -s 198.18.0.3`. Default none. */
  tcpcopyArgs?: readonly string[];
  /** Seconds of keep-alive load. Default 10. */
  keepAliveS?: number;
  /** Keep-alive requests per second (all connections together). Default 300. */
  keepAliveRate?: number;
  /** Keep-alive connections. Default 10. */
  keepAliveConnections?: number;
  /** Seconds of one-request-per-connection load. Default 5. */
  closeS?: number;
  /** One-request-per-connection requests per second. Default 100. */
  closeRate?: number;
  /** Seconds between tcpcopy status lines (--status). Default 2. */
  statusS?: number;
  /** Where the demo's lines go. Default: stdout. */
  out?: (line: string) => void;
  /**
   * Dual stack (`tcpcopy lab run --ipv6`, `npm run demo -- --ipv6`): the lab gets IPv6 addresses
   * in 2001:2::/48, the same load runs over IPv4 and IPv6 at once, tcpcopy copies both families
   * (`-x 80-198.18.0.2:8080,80-[2001:2::2]:8080`) over channel v2 (a generated `--secret-file`
   * on both sides: the 1.x channel is IPv4-only). Default false.
   */
  ipv6?: boolean;
  /**
   * The split deployment (issue 17): `tcpcopy agent` captures on online and streams to a
   * replayer (`tcpcopy -i tcp://198.18.0.5:36525`, with the extra options) on a fifth host,
   * `replay`. Default false: tcpcopy itself on online.
   */
  agent?: boolean;
}

/** Takes the demo's own `--ipv6` out of the extra tcpcopy options. */
export function demoArgs(argv: readonly string[]): { ipv6: boolean; tcpcopyArgs: string[] } {
  return { ipv6: argv.includes('--ipv6'), tcpcopyArgs: argv.filter((a) => a !== '--ipv6') };
}

/**
 * `npm run demo`'s arguments: dual stack by default (issue 16: the demo shows both families),
 * `--ipv4` for the IPv4-only demo; the rest are tcpcopy options.
 */
export function npmDemoArgs(argv: readonly string[]): { ipv6: boolean; tcpcopyArgs: string[] } {
  return { ipv6: !argv.includes('--ipv4'), tcpcopyArgs: argv.filter((a) => a !== '--ipv6' && a !== '--ipv4') };
}

/** The replayer's listening port in the agent demo. */
const AGENT_STREAM_PORT = 36525;

/** Request paths the load generator cycles through (routes of the lab's nginx). */
export const DEMO_PATHS: readonly string[] = ['/', '/bytes/100', '/bytes/1000', '/bytes/10000'];

/** Quotes an argv for display as a shell command line. */
export function shellLine(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Relays a process's new stderr lines (without the timestamp) to `out`, prefixed with its name. */
class Relay {
  private seen = 0;
  constructor(
    private readonly p: LabProcess,
    private readonly name: string,
    private readonly out: (l: string) => void,
  ) {}
  /** Prints the lines that arrived since the last call. */
  pump(): void {
    const text = this.p.stderr;
    if (text.length < this.seen) this.seen = 0;
    const end = text.lastIndexOf('\n') + 1;
    if (end <= this.seen) return;
    for (const line of text.slice(this.seen, end).split('\n')) {
      if (line.trim() === '') continue;
      const l = line.replace(/^\d{4}-\d\d-\d\dT[\d:.]+Z \S+ /, '');
      this.out(`    ${this.name} | ${l.length > 170 ? `${l.slice(0, 167)}...` : l}`);
    }
    this.seen = end;
  }
}

/**
 * Runs the whole demo in a fresh lab; resolves the exit code: 0 = the target received the
 * requests, 1 = mismatch, 2 = tcpcopy or intercept did not start (e.g. bad extra options).
 */
export async function runDemo(opts: DemoOptions = {}): Promise<number> {
  const out =
    opts.out ??
    ((l: string) => {
      process.stdout.write(`${l}\n`);
    });
  const prefix = opts.prefix ?? 'demo';
  const t0 = Date.now();
  const el = (): string => `${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s`;
  out(
    `== building the lab (network namespaces "${prefix}*", addresses in 198.18.0.0/15 only, nothing leaves this machine)`,
  );
  const onSignal = (sig: NodeJS.Signals): void => out(`demo: ${sig}: stopping, removing the lab`);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const v6 = opts.ipv6 === true;
  const result = await withLab(
    {
      prefix,
      clientAddresses: 20,
      replayHost: opts.agent === true,
      ipv6: v6,
      log: (m) => out(`    ${m.startsWith('lab') ? m : `lab: ${m}`}`),
    },
    async (lab): Promise<{ code: number; verdict: string }> => {
      const h = lab.hosts;
      // IPv6 needs channel v2: both sides get the same generated secret
      const secretFile = path.join(lab.dir, 'channel.secret');
      if (v6) writeFileSync(secretFile, randomBytes(32).toString('base64') + '\n', { mode: 0o600 });
      const secretArgs = v6 ? ['--secret-file', secretFile] : [];
      for (const l of describeLab(lab)) out(l);
      const online = await lab.startNginx('online', { port: 80 });
      const target = await lab.startNginx('target', { port: 8080 });
      out(`${el()}  nginx running on online:80 and target:8080`);

      out('');
      out(
        '== starting intercept and tcpcopy (tcpcopy = node dist/src/cli/tcpcopy-main.js, intercept = node dist/src/cli/intercept-main.js)',
      );
      const icpArgs = ['-i', h.assistant.dev, '-F', 'tcp and src port 8080', ...secretArgs];
      out(`   on the assistant:  ip netns exec ${h.assistant.ns} ${shellLine(['intercept', ...icpArgs])}`);
      const icp = lab.spawn('assistant', [process.execPath, INTERCEPT_JS, ...icpArgs], { label: 'intercept' });
      const icpRelay = new Relay(icp, 'intercept', out);
      try {
        await icp.waitFor(/listening on/, 15_000);
      } catch (e) {
        icpRelay.pump();
        return { code: 2, verdict: `demo: intercept did not start: ${(e as Error).message}` };
      }
      icpRelay.pump();
      const reportFile = path.join(lab.dir, 'tcpcopy-report.json');
      const extra = [...(opts.tcpcopyArgs ?? [])];
      const agent = opts.agent === true ? h.replay : undefined;
      const tcArgs = [
        ...(agent !== undefined ? ['-i', `tcp://${agent.ip}:${AGENT_STREAM_PORT}`] : []),
        '-x',
        `80-${h.target.ip}:8080${v6 ? `,80-[${h.target.ip6 ?? ''}]:8080` : ''}`,
        '-s',
        h.assistant.ip,
        ...secretArgs,
        ...extra,
        '--report',
        `json:${reportFile}`,
        '--status',
        String(opts.statusS ?? 2),
      ];
      const tcHost = agent !== undefined ? 'replay' : 'online';
      out(
        `   on ${`${tcHost}:`.padEnd(16)} ip netns exec ${(agent ?? h.online).ns} ${shellLine(['tcpcopy', ...tcArgs])}`,
      );
      const tc = lab.spawn(tcHost, [process.execPath, TCPCOPY_JS, ...tcArgs], {
        label: 'tcpcopy',
        stopSignal: 'SIGINT',
        graceMs: 15_000,
      });
      const tcRelay = new Relay(tc, 'tcpcopy', out);
      let ag: LabProcess | null = null;
      let agRelay: Relay | null = null;
      try {
        await tc.waitFor(agent !== undefined ? /listening for agents/ : /capturing on/, 15_000);
        if (agent !== undefined) {
          const agArgs = [
            'agent',
            '-i',
            h.online.clientDev ?? h.online.dev,
            '-x',
            '80',
            '--to',
            `${agent.ip}:${AGENT_STREAM_PORT}`,
            '--status',
            String(opts.statusS ?? 2),
            // the replayer has --secret-file in the dual-stack demo: the agent proves it too
            ...secretArgs,
          ];
          out(`   on online:         ip netns exec ${h.online.ns} ${shellLine(['tcpcopy', ...agArgs])}`);
          ag = lab.spawn('online', [process.execPath, TCPCOPY_JS, ...agArgs], {
            label: 'tcpcopy agent',
            stopSignal: 'SIGTERM',
            graceMs: 5000,
          });
          agRelay = new Relay(ag, 'agent', out);
          await ag.waitFor(/streaming to replayer/, 15_000);
          agRelay.pump();
        }
      } catch {
        if (ag !== null) {
          await ag.stop('SIGTERM', 2000);
          agRelay?.pump();
          await tc.stop('SIGINT', 5000);
        }
        await tc.exited;
        tcRelay.pump();
        if (tc.stdout.trim() !== '') out(tc.stdout.trim());
        return {
          code: 2,
          verdict: `demo: tcpcopy did not start (exit ${JSON.stringify(tc.exit)}); check the extra options: ${shellLine(extra)}`,
        };
      }
      tcRelay.pump();
      if (agent !== undefined)
        out(
          `   the agent on online captures the requests arriving at online:80 and streams them to tcpcopy on ${agent.ip}, which`,
        );
      out('   tcpcopy captures the requests arriving at online:80 and replays each session to the target as raw IP');
      out('   packets from the original client address; the target answers those addresses, its route sends the');
      out(
        '   replies to the assistant, where intercept captures them and returns their headers to tcpcopy (port 36524).',
      );

      out('');
      const ka = opts.keepAliveS ?? 10;
      const kaRate = opts.keepAliveRate ?? 300;
      const kaConns = opts.keepAliveConnections ?? 10;
      const cl = opts.closeS ?? 5;
      const clRate = opts.closeRate ?? 100;
      out(
        `== real traffic: client -> online nginx (http://198.18.1.1/${v6 ? ' and http://[2001:2:0:1::1]/ at once' : ''}), paths ${DEMO_PATHS.join(' ')}`,
      );
      out(
        `   ${ka} s keep-alive (${kaConns} connections, ${kaRate} requests/s), then ${cl} s one request per connection (${clRate}/s)`,
      );
      const ticker = setInterval(() => {
        agRelay?.pump();
        tcRelay.pump();
        icpRelay.pump();
        out(
          `${el()}  online nginx ${online.readLog().records.length} requests, target nginx ${target.readLog().records.length}`,
        );
      }, 2000);
      let loadFailed: Error | null = null;
      try {
        const base: LoadOptions = {
          url: 'http://198.18.1.1:80/',
          requests: 1,
          durationMs: 1,
          paths: DEMO_PATHS,
          timeoutMs: 5000,
        };
        // dual stack: the same load over IPv6 at the same time, from the IPv6 client addresses
        const families = (o: LoadOptions): Promise<LoadSummary[]> =>
          Promise.all([
            lab.load('client', o),
            ...(v6
              ? [
                  lab.load('client', {
                    ...o,
                    url: 'http://[2001:2:0:1::1]:80/',
                    localAddresses: h.client.addresses6 ?? [],
                  }),
                ]
              : []),
          ]);
        const done = (what: string, ss: LoadSummary[]): void => {
          ss.forEach((s, i) =>
            out(
              `${el()}  ${what} load done${v6 ? (i === 0 ? ' (IPv4)' : ' (IPv6)') : ''}: ${s.requestsSent} requests, ${s.responsesOk} ok, ${s.connectionsOpened} connections, p50 ${s.latencyMs.p50} ms`,
            ),
          );
        };
        done(
          'keep-alive',
          await families({
            ...base,
            requests: Math.ceil(ka * kaRate),
            durationMs: ka * 1000,
            rate: kaRate,
            concurrency: kaConns,
            keepAlive: true,
          }),
        );
        done(
          'short-connection',
          await families({
            ...base,
            requests: Math.ceil(cl * clRate),
            durationMs: cl * 1000,
            rate: clRate,
            concurrency: 4,
            keepAlive: false,
          }),
        );
      } catch (e) {
        loadFailed = e as Error;
      } finally {
        clearInterval(ticker);
      }
      if (loadFailed !== null) out(`demo: the load generator failed: ${loadFailed.message}`);

      const exp = expectationFromArgs(extra, [...h.client.addresses, ...(h.client.addresses6 ?? [])]);
      const onlineCount = online.readLog().records.length;
      out(
        `${el()}  waiting for the replay to drain (target has ${target.readLog().records.length} of ${onlineCount * exp.replicas})`,
      );
      await drain(() => target.readLog().records.length, onlineCount * exp.replicas, tcRelay);
      out(`${el()}  stopping ${ag !== null ? 'the agent (SIGTERM), ' : ''}tcpcopy (SIGINT) and intercept (SIGTERM)`);
      if (ag !== null) {
        await ag.stop('SIGTERM', 5000);
        agRelay?.pump();
      }
      await tc.stop('SIGINT', 15_000);
      tcRelay.pump();
      await icp.stop('SIGTERM', 5000);
      icpRelay.pump();

      out('');
      out("== tcpcopy's report (what it printed on stdout when stopped)");
      out(tc.stdout.trimEnd() || '   (nothing: tcpcopy printed no report)');
      const report = readReport(reportFile);
      out('');
      out('== verification: what the servers logged');
      const v = verifyDemo(online.readLog().records, target.readLog().records, report, exp);
      for (const l of v.lines) out(l);
      out('');
      out(`${el()}  removing the lab (processes, namespaces, files)`);
      return { code: v.ok && loadFailed === null ? 0 : 1, verdict: v.verdictLine };
    },
  );
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  out(`${el()}  lab removed`);
  out(result.verdict);
  return result.code;
}

/** Waits until the target's count reaches `want`, or it stops changing for 3 s (at most 12 s). */
async function drain(count: () => number, want: number, relay: Relay): Promise<void> {
  const deadline = Date.now() + 12_000;
  let last = -1;
  let lastChange = Date.now();
  while (Date.now() < deadline) {
    const n = count();
    if (n >= want) break;
    if (n !== last) {
      last = n;
      lastChange = Date.now();
    }
    if (Date.now() - lastChange > 3000) break;
    relay.pump();
    await sleep(200);
  }
  // let the last ACKs and FINs of the replayed sessions go through
  await sleep(500);
}

function readReport(file: string): DemoTcpcopyReport | null {
  if (!existsSync(file)) return null;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as DemoTcpcopyReport;
  } catch {
    return null;
  }
}

/** Convenience for lab-cli: the lab's hosts as printed by the demo (used by `lab up`). */
export function describeLab(lab: Lab): string[] {
  const h = lab.hosts;
  const rp = h.replay;
  const lines = [
    `   client     ${h.client.addresses[0] ?? ''} .. ${h.client.addresses[h.client.addresses.length - 1] ?? ''}  namespace ${h.client.ns}`,
    `   online     ${h.online.ip} / 198.18.1.1  nginx :80       namespace ${h.online.ns}`,
    `   target     ${h.target.ip}  nginx :8080, route 198.18.1.0/24 via ${h.assistant.ip}  namespace ${h.target.ns}`,
    `   assistant  ${h.assistant.ip}  intercept (ip_forward=0)  namespace ${h.assistant.ns}`,
    ...(rp !== undefined
      ? [`   replay     ${rp.ip}  tcpcopy -i tcp://, fed by the agent on online  namespace ${rp.ns}`]
      : []),
  ];
  const a6 = h.client.addresses6;
  if (lab.ipv6 && a6 !== undefined)
    lines.push(
      `   IPv6       client ${a6[0] ?? ''} .. ${a6[a6.length - 1] ?? ''}, online ${h.online.ip6 ?? ''} / 2001:2:0:1::1, target ${h.target.ip6 ?? ''} (route 2001:2:0:1::/64 via ${h.assistant.ip6 ?? ''}), assistant ${h.assistant.ip6 ?? ''} (forwarding=0)`,
    );
  return lines;
}
