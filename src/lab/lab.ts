/**
 * The test lab: network namespaces for client / online / target / assistant (and optionally
 * online2 / client2) joined by a bridge, with addresses only in 198.18.0.0/15, real servers,
 * captures and a load generator; down() removes everything, also after failures.
 * See doc/lab.md for the topology and the reasons behind it.
 */
import { mkdtempSync, rmSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TcpcopyError } from '../core/errors';
import { startCapture, type CaptureOptions, type LabCapture } from './capture';
import type { LoadOptions, LoadSummary } from './loadgen';
import { loadArgs } from './loadgen-main';
import { allNamespaces, nsName, validatePrefix, type HostName } from './names';
import { LabProcess, type SpawnOptions } from './process';
import {
  startNginx,
  startNodeHttp,
  startRedis,
  type NginxOptions,
  type NginxServer,
  type NodeHttpOptions,
  type NodeHttpServer,
  type RedisOptions,
  type RedisServer,
} from './servers';
import { startMariadb, type MariadbOptions, type MariadbServer } from './mariadb';
import { run, type ExecResult } from './sh';
import { buildTopology, removeNamespaces, removeStale, type LabHost, type Topology } from './topology';

export type { LabHost } from './topology';
export type { HostName } from './names';

/** Options of Lab.up. */
export interface LabOptions {
  /** Name prefix of every namespace and link, [a-z][a-z0-9]*, at most 9 characters. Required. */
  prefix: string;
  /** Extra client addresses beyond the main one: client gets 198.18.1.2 .. 198.18.1.(2+N). Default 50, max 250. */
  clientAddresses?: number;
  /** Also build online2 (198.18.0.4, 198.18.2.1) and client2 (198.18.2.2 ..). Default false. */
  online2?: boolean;
  /** Also build the replay host (198.18.0.5 on the LAN): the replayer of `tcpcopy agent` runs there. Default false. */
  replayHost?: boolean;
  /** rp_filter on the target (all, default and its interface). Default 0. */
  targetRpFilter?: number;
  /**
   * Dual stack: every host also gets IPv6 addresses in 2001:2::/48 (RFC 5180; LAN 2001:2::/64,
   * clients 2001:2:0:1::2 .., see names.ts LAN6), the target routes the IPv6 client prefixes to
   * the assistant too, IPv6 forwarding is off, and nginx listens on both families. Default false.
   */
  ipv6?: boolean;
  /** Keep lab.dir after down() (for post-mortems). Default false. */
  keepDir?: boolean;
  /** Logger for cleanup problems and notices. Default: write to stderr. */
  log?: (msg: string) => void;
}

/** Hosts of a lab. */
export interface LabHosts {
  /** The client (load generator side), 198.18.1.2 and the extra client addresses. */
  client: LabHost;
  /** The online server (where tcpcopy runs), 198.18.0.1 on the LAN, 198.18.1.1 towards the client. */
  online: LabHost;
  /** The target server, 198.18.0.2. */
  target: LabHost;
  /** The assistant (where intercept runs), 198.18.0.3, forwarding off. */
  assistant: LabHost;
  /** Second online server (only with online2), 198.18.0.4 / 198.18.2.1. */
  online2?: LabHost;
  /** Its client (only with online2), 198.18.2.2 ... */
  client2?: LabHost;
  /** The replay host (only with replayHost), 198.18.0.5. */
  replay?: LabHost;
}

/** Options of Lab.exec. */
export interface LabExecOptions {
  /** Time limit, ms; the promise rejects with ERR_LAB_TIMEOUT after it. Default 30000. */
  timeoutMs?: number;
  /** Text for the command's stdin. */
  input?: string;
}

/** What Lab.state() returns. */
export interface LabState {
  /** The prefix. */
  prefix: string;
  /** The lab directory. */
  dir: string;
  /** Namespaces, switch included. */
  namespaces: string[];
  /** Bridge name in the switch namespace. */
  bridge: string;
  /** Hosts by role. */
  hosts: LabHosts;
  /** Tracked processes. */
  processes: Array<{ pid: number; label: string; argv: string[] }>;
}

/** A built lab. Create with {@link Lab.up} or {@link withLab}. */
export class Lab {
  /** Hosts by role. */
  readonly hosts: LabHosts;
  /** Temp directory for configs, logs and captures; removed by down() unless keepDir. */
  readonly dir: string;
  /** The prefix. */
  readonly prefix: string;
  /** Bridge name inside the switch namespace. */
  readonly bridge: string;
  /** Namespace of the switch. */
  readonly switchNs: string;
  /** A dual-stack lab (LabOptions.ipv6): hosts have `ip6` / `addresses6`. */
  readonly ipv6: boolean;
  private readonly procs = new Set<LabProcess>();
  private readonly namespaces: string[];
  private readonly log: (m: string) => void;
  private readonly keepDir: boolean;
  private downPromise: Promise<void> | null = null;

  private constructor(opts: LabOptions, dir: string, topo: Topology, log: (m: string) => void) {
    this.prefix = opts.prefix;
    this.dir = dir;
    this.log = log;
    this.keepDir = opts.keepDir ?? false;
    this.namespaces = topo.namespaces;
    this.bridge = topo.bridge;
    this.switchNs = nsName(opts.prefix, 'switch');
    this.ipv6 = opts.ipv6 ?? false;
    const h = topo.hosts;
    if (!h.client || !h.online || !h.target || !h.assistant)
      throw new TcpcopyError('ERR_LAB_SETUP', 'topology is missing a host');
    this.hosts = { client: h.client, online: h.online, target: h.target, assistant: h.assistant };
    if (h.online2) this.hosts.online2 = h.online2;
    if (h.client2) this.hosts.client2 = h.client2;
    if (h.replay) this.hosts.replay = h.replay;
  }

  /**
   * Builds a lab: removes stale namespaces with this prefix first, then creates everything.
   * On failure removes what it made and rethrows. Needs root.
   */
  static async up(opts: LabOptions): Promise<Lab> {
    validatePrefix(opts.prefix);
    const n = opts.clientAddresses ?? 50;
    if (!Number.isInteger(n) || n < 0 || n > 250) {
      throw new TcpcopyError('ERR_LAB_OPTION', `clientAddresses=${n}: expected an integer 0..250`);
    }
    if (process.getuid && process.getuid() !== 0) {
      throw new TcpcopyError('ERR_LAB_ROOT', 'the lab needs root (network namespaces): run the tests as root');
    }
    const log = opts.log ?? ((m: string) => process.stderr.write(`${m}\n`));
    await removeStale(opts.prefix, log);
    const dir = mkdtempSync(path.join(os.tmpdir(), `tcpcopy-lab-${opts.prefix}-`));
    chmodSync(dir, 0o755);
    try {
      const topo = await buildTopology({
        prefix: opts.prefix,
        clientAddresses: n,
        online2: opts.online2 ?? false,
        replay: opts.replayHost ?? false,
        targetRpFilter: opts.targetRpFilter ?? 0,
        ipv6: opts.ipv6 ?? false,
        log,
      });
      return new Lab(opts, dir, topo, log);
    } catch (e) {
      const problems = await removeNamespaces(allNamespaces(opts.prefix), log);
      for (const p of problems) log(`lab: cleanup after failed up: ${p}`);
      if (!opts.keepDir) rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** Host info by name; throws ERR_LAB_HOST when the lab has no such host. */
  host(name: HostName): LabHost {
    const h = this.hosts[name];
    if (!h)
      throw new TcpcopyError(
        'ERR_LAB_HOST',
        `lab host ${name} does not exist (online2/client2 need LabOptions.online2, replay LabOptions.replayHost)`,
      );
    return h;
  }

  private nsOf(host: HostName | 'switch'): string {
    return host === 'switch' ? this.switchNs : this.host(host).ns;
  }

  /** Runs a command in a host's namespace (`ip netns exec`); resolves {code, stdout, stderr}; rejects on timeout. */
  exec(host: HostName | 'switch', argv: string[], opts: LabExecOptions = {}): Promise<ExecResult> {
    return run(['ip', 'netns', 'exec', this.nsOf(host), ...argv], opts);
  }

  /** Spawns a long-running process in a host's namespace, tracked so down() stops it (by pid). */
  spawn(host: HostName | 'switch', argv: string[], opts: SpawnOptions = {}): LabProcess {
    if (this.downPromise) throw new TcpcopyError('ERR_LAB_DOWN', 'lab is down');
    const p = new LabProcess(this.nsOf(host), argv, { cwd: this.dir, ...opts });
    this.procs.add(p);
    void p.exited.then(() => this.procs.delete(p));
    return p;
  }

  /** Starts nginx in a host's namespace (see servers.ts for routes and log format); in a dual-stack lab on both families. */
  startNginx(host: HostName, opts: NginxOptions): Promise<NginxServer> {
    return startNginx(this, host, { ipv6: this.ipv6, ...opts });
  }

  /** Starts redis-server in a host's namespace (no persistence). */
  startRedis(host: HostName, opts: RedisOptions): Promise<RedisServer> {
    return startRedis(this, host, opts);
  }

  /** Starts a MariaDB server (own data directory, general query log) in a host's namespace (see mariadb.ts). */
  startMariadb(host: HostName, opts: MariadbOptions = {}): Promise<MariadbServer> {
    return startMariadb(this, host, opts);
  }

  /** Starts the tiny Node HTTP server (JSON-lines log) in a host's namespace. */
  startNodeHttp(host: HostName, opts: NodeHttpOptions): Promise<NodeHttpServer> {
    return startNodeHttp(this, host, opts);
  }

  /** Starts tcpdump on a host's interface into a pcap file; resolves once it is listening. */
  capture(host: HostName | 'switch', opts: CaptureOptions): Promise<LabCapture> {
    const dev = opts.dev ?? (host === 'switch' ? this.bridge : this.host(host).dev);
    return startCapture(this, host, dev, opts);
  }

  /**
   * Runs the load generator (loadgen-main) in a host's namespace and resolves its summary.
   * `localAddresses` defaults to every address of a client host. Time limit: durationMs +
   * timeoutMs + 15 s.
   */
  async load(host: HostName, opts: LoadOptions): Promise<LoadSummary> {
    const o: LoadOptions = { ...opts };
    const h = this.host(host);
    if (o.localAddresses === undefined && (host === 'client' || host === 'client2')) o.localAddresses = h.addresses;
    const script = path.join(__dirname, 'loadgen-main.js');
    const r = await this.exec(host, [process.execPath, script, ...loadArgs(o)], {
      timeoutMs: o.durationMs + (o.timeoutMs ?? 5000) + 15_000,
    });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (r.code !== 0 || !line.startsWith('{')) {
      throw new TcpcopyError('ERR_LAB_LOAD', `loadgen failed (exit ${r.code}): ${r.stderr.trim()}`, {
        stderr: r.stderr,
      });
    }
    return JSON.parse(line) as LoadSummary;
  }

  /** A JSON-able description (for `lab-main up` state files and `status`). */
  state(): LabState {
    return {
      prefix: this.prefix,
      dir: this.dir,
      namespaces: [...this.namespaces],
      bridge: this.bridge,
      hosts: this.hosts,
      processes: [...this.procs].map((p) => ({ pid: p.pid, label: p.label, argv: [...p.argv] })),
    };
  }

  /** Processes still tracked (running). */
  get processes(): readonly LabProcess[] {
    return [...this.procs];
  }

  /**
   * Stops every tracked process by pid (stop signal, SIGKILL after its grace), deletes every
   * namespace (and with them every link), removes dir unless keepDir. Idempotent; never throws.
   */
  down(): Promise<void> {
    if (!this.downPromise) this.downPromise = this.doDown();
    return this.downPromise;
  }

  private async doDown(): Promise<void> {
    try {
      await Promise.all(
        [...this.procs].map(async (p) => {
          const e = await p.stop();
          if (e.signal === 'SIGKILL') this.log(`lab: ${p.label} (pid ${p.pid}) needed SIGKILL`);
        }),
      );
    } catch (e) {
      this.log(`lab: stopping processes: ${(e as Error).message}`);
    }
    try {
      const problems = await removeNamespaces(allNamespaces(this.prefix), this.log);
      for (const p of problems) this.log(`lab: ${p}`);
    } catch (e) {
      this.log(`lab: removing namespaces: ${(e as Error).message}`);
    }
    if (!this.keepDir) {
      try {
        rmSync(this.dir, { recursive: true, force: true });
      } catch (e) {
        this.log(`lab: rm ${this.dir}: ${(e as Error).message}`);
      }
    }
  }
}

/**
 * Brings a lab up, runs `fn`, and always takes it down (finally), also when the process
 * gets SIGINT/SIGTERM meanwhile (then it exits with 130/143 after cleanup).
 */
export async function withLab<T>(opts: LabOptions, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await Lab.up(opts);
  const onSignal = (sig: NodeJS.Signals): void => {
    void lab.down().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await fn(lab);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await lab.down();
  }
}
