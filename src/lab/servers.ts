/**
 * Real servers for the lab: nginx, redis-server and a tiny Node HTTP server, each with its
 * own config and logs in the lab directory, started in a host's namespace through the lab
 * (so down() stops them by pid).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseNginxLog, parseNodeLog, NGINX_LOG_FORMAT, type AccessRecord, type ParsedLog } from './access-log';
import type { HostName } from './names';
import type { LabProcess, SpawnOptions } from './process';
import { sleep, type ExecResult } from './sh';
import type { LabHost } from './topology';

/** What the server starters need from the lab (implemented by Lab). */
export interface LabServices {
  /** The lab's directory. */
  readonly dir: string;
  /** Host info by name. */
  host(name: HostName): LabHost;
  /** Spawns a tracked process in a host's namespace. */
  spawn(host: HostName, argv: string[], opts?: SpawnOptions): LabProcess;
  /** Runs a command in a host's namespace. */
  exec(host: HostName, argv: string[], opts?: { timeoutMs?: number; input?: string }): Promise<ExecResult>;
}

/** Polls `check` every 50 ms until true; throws proc.startError when proc exits or time runs out. */
async function waitUntil(
  proc: LabProcess,
  what: string,
  timeoutMs: number,
  check: () => boolean | Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (!proc.running) {
      await proc.exited;
      throw proc.startError(`exited before ${what}`);
    }
    if (Date.now() > deadline) {
      await proc.stop();
      throw proc.startError(`not ${what} within ${timeoutMs} ms`);
    }
    await sleep(50);
  }
}

/** A running server with an access log. */
export interface LoggingServer {
  /** Host it runs on. */
  host: HostName;
  /** TCP port. */
  port: number;
  /** Its process (pid, output). */
  proc: LabProcess;
  /** Path of its access log. */
  accessLog: string;
  /** Reads and parses the access log now. */
  readLog(): ParsedLog;
  /** Polls the access log until it holds at least `count` records (default timeout 5000 ms); resolves the records (maybe fewer on timeout). */
  waitForCount(count: number, timeoutMs?: number): Promise<AccessRecord[]>;
  /** Stops the server by pid (SIGTERM, then SIGKILL after a grace). */
  stop(): Promise<void>;
}

function logReader(file: string, parse: (t: string) => ParsedLog): Pick<LoggingServer, 'readLog' | 'waitForCount'> {
  const readLog = (): ParsedLog => parse(existsSync(file) ? readFileSync(file, 'utf8') : '');
  return {
    readLog,
    async waitForCount(count: number, timeoutMs = 5000): Promise<AccessRecord[]> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const r = readLog().records;
        if (r.length >= count || Date.now() > deadline) return r;
        await sleep(50);
      }
    },
  };
}

/** Options of startNginx. */
export interface NginxOptions {
  /** TCP port to listen on. Required. */
  port: number;
  /** Address to bind. Default: every address of the host's namespace. */
  bind?: string;
  /** Without `bind`: also listen on every IPv6 address (`listen [::]:port`). Default false (the Lab passes its `ipv6`). */
  ipv6?: boolean;
  /** worker_processes. Default 1. */
  workers?: number;
  /** keepalive_requests. Default 1000000. */
  keepaliveRequests?: number;
  /** keepalive_timeout, seconds. Default 65. */
  keepaliveTimeoutS?: number;
  /** Sizes N (bytes) served as /bytes/N from prepared files. Default [0, 1, 100, 1000, 10000, 100000, 1000000]. */
  bodySizes?: readonly number[];
  /** Extra directives inserted in the server block. */
  extraServerConfig?: string;
  /** Start time limit, ms. Default 10000. */
  timeoutMs?: number;
  /** Let nginx outlive this Node process (lab-main up). Default false. */
  detached?: boolean;
}

/** A running nginx. Routes: `/` -> 200 "ok\n" (any method; a request body is read and discarded, so
 * $request_length does not count it), `/bytes/N` -> N bytes (GET), `/upload` -> 200 "uploaded\n" (POST bodies up to 64 MiB
 * are read in full and counted in $request_length), `/status/404` and `/status/500` -> that status. */
export interface NginxServer extends LoggingServer {
  /** Config file path. */
  conf: string;
  /** Error log path. */
  errorLog: string;
}

/** Starts nginx (`nginx -c CONF -g 'daemon off;'`, master pid is ours) in a host's namespace. */
export async function startNginx(lab: LabServices, host: HostName, opts: NginxOptions): Promise<NginxServer> {
  const name = `nginx-${host}-${opts.port}`;
  const base = path.join(lab.dir, name);
  mkdirSync(base, { recursive: true });
  const www = path.join(base, 'www');
  mkdirSync(path.join(www, 'bytes'), { recursive: true });
  writeFileSync(path.join(www, 'upload'), 'uploaded\n');
  for (const n of opts.bodySizes ?? [0, 1, 100, 1000, 10000, 100000, 1000000]) {
    writeFileSync(path.join(www, 'bytes', String(n)), Buffer.alloc(n, 0x61));
  }
  const conf = path.join(base, 'nginx.conf');
  const accessLog = path.join(base, 'access.log');
  const errorLog = path.join(base, 'error.log');
  const pidFile = path.join(base, 'nginx.pid');
  const tmp = (d: string): string => path.join(base, 'tmp', d);
  for (const d of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(tmp(d), { recursive: true });
  const listen = opts.bind
    ? `${opts.bind.includes(':') ? `[${opts.bind}]` : opts.bind}:${opts.port}`
    : String(opts.port);
  writeFileSync(
    conf,
    `# generated by the tcpcopy lab
user root;
worker_processes ${opts.workers ?? 1};
pid ${pidFile};
error_log ${errorLog} warn;
events { worker_connections 8192; }
http {
  default_type application/octet-stream;
  log_format tcpcopy_lab '${NGINX_LOG_FORMAT}';
  access_log ${accessLog} tcpcopy_lab;
  client_body_temp_path ${tmp('body')};
  proxy_temp_path ${tmp('proxy')};
  fastcgi_temp_path ${tmp('fastcgi')};
  uwsgi_temp_path ${tmp('uwsgi')};
  scgi_temp_path ${tmp('scgi')};
  keepalive_requests ${opts.keepaliveRequests ?? 1000000};
  keepalive_timeout ${opts.keepaliveTimeoutS ?? 65}s;
  client_max_body_size 64m;
  client_body_buffer_size 1m;
  server_tokens off;
  server {
    listen ${listen} backlog=4096;${
      opts.ipv6 === true && !opts.bind
        ? `
    listen [::]:${opts.port} backlog=4096;`
        : ''
    }
    server_name _;
    location / { return 200 "ok\\n"; }
    location /bytes/ { root ${www}; }
    # The mirror subrequest makes nginx read the whole body (so $request_length counts it);
    # the static handler then answers POST with 405, which error_page turns into 200.
    location /upload { mirror /_sink; mirror_request_body on; root ${www}; error_page 405 =200 @uploaded; }
    location = /_sink { internal; return 204; }
    location @uploaded { return 200 "uploaded\\n"; }
    location = /status/404 { return 404; }
    location = /status/500 { return 500; }
${opts.extraServerConfig ?? ''}
  }
}
`,
  );
  const proc = lab.spawn(host, ['nginx', '-p', base, '-e', errorLog, '-c', conf, '-g', 'daemon off;'], {
    label: name,
    graceMs: 3000,
    detached: opts.detached ?? false,
    logFile: path.join(base, 'stderr.log'),
  });
  await waitUntil(proc, 'listening (pid file)', opts.timeoutMs ?? 10_000, () => existsSync(pidFile));
  return {
    host,
    port: opts.port,
    proc,
    conf,
    accessLog,
    errorLog,
    ...logReader(accessLog, parseNginxLog),
    async stop() {
      await proc.stop();
    },
  };
}

/** Options of startRedis. */
export interface RedisOptions {
  /** TCP port. Required. */
  port: number;
  /** Addresses to bind (space separated). Default: every address of the host (online: 198.18.0.1 and 198.18.1.1). */
  bind?: string;
  /** Start time limit, ms. Default 10000. */
  timeoutMs?: number;
  /** The default user's password (`requirepass`); cli() and commandStats() log in with it. Default: none. */
  requirepass?: string;
  /** ACL users (`user NAME on >PASSWORD ~* &* +@all`). Default: none. */
  users?: readonly { user: string; password: string }[];
}

/** A running redis-server (no persistence). */
export interface RedisServer {
  /** Host it runs on. */
  host: HostName;
  /** First bound address (the one cli() talks to). */
  ip: string;
  /** TCP port. */
  port: number;
  /** Its process. */
  proc: LabProcess;
  /** Config file path. */
  conf: string;
  /** Runs redis-cli against this server from its own namespace. */
  cli(args: string[]): Promise<ExecResult>;
  /** Calls per command from INFO commandstats, e.g. { set: 10, get: 5, info: 1 } (lower-case names). */
  commandStats(): Promise<Record<string, number>>;
  /** Stops it by pid. */
  stop(): Promise<void>;
}

/** Starts redis-server with its own config (`save ""`, no AOF) in a host's namespace. */
export async function startRedis(lab: LabServices, host: HostName, opts: RedisOptions): Promise<RedisServer> {
  const h = lab.host(host);
  const bind = opts.bind ?? h.addresses.join(' ');
  const ip = bind.split(' ')[0] ?? h.ip;
  const name = `redis-${host}-${opts.port}`;
  const base = path.join(lab.dir, name);
  mkdirSync(base, { recursive: true });
  const conf = path.join(base, 'redis.conf');
  writeFileSync(
    conf,
    `# generated by the tcpcopy lab
bind ${bind}
port ${opts.port}
protected-mode no
daemonize no
save ""
appendonly no
dir ${base}
logfile ${path.join(base, 'redis.log')}
tcp-backlog 511
${opts.requirepass !== undefined ? `requirepass ${opts.requirepass}\n` : ''}${(opts.users ?? [])
      .map((u) => `user ${u.user} on >${u.password} ~* &* +@all\n`)
      .join('')}`,
  );
  const proc = lab.spawn(host, ['redis-server', conf], { label: name });
  const cli = (args: string[]): Promise<ExecResult> =>
    lab.exec(
      host,
      [
        'redis-cli',
        '-h',
        ip,
        '-p',
        String(opts.port),
        ...(opts.requirepass !== undefined ? ['--no-auth-warning', '-a', opts.requirepass] : []),
        ...args,
      ],
      { timeoutMs: 10_000 },
    );
  await waitUntil(
    proc,
    'answering PING',
    opts.timeoutMs ?? 10_000,
    async () => (await cli(['PING'])).stdout.trim() === 'PONG',
  );
  return {
    host,
    ip,
    port: opts.port,
    proc,
    conf,
    cli,
    async commandStats() {
      const r = await cli(['INFO', 'commandstats']);
      const out: Record<string, number> = {};
      for (const m of r.stdout.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm))
        out[(m[1] ?? '').toLowerCase()] = Number(m[2]);
      return out;
    },
    async stop() {
      await proc.stop();
    },
  };
}

/** Options of startNodeHttp. */
export interface NodeHttpOptions {
  /** TCP port. Required. */
  port: number;
  /** Address to bind. Default 0.0.0.0 (every address of the namespace). */
  bind?: string;
  /** Start time limit, ms. Default 10000. */
  timeoutMs?: number;
}

/** A running node-server.ts; its log is JSON lines (see access-log.ts NodeLogLine). */
export type NodeHttpServer = LoggingServer;

/** Starts the tiny Node HTTP server (dist/src/lab/node-server.js) in a host's namespace. */
export async function startNodeHttp(lab: LabServices, host: HostName, opts: NodeHttpOptions): Promise<NodeHttpServer> {
  const name = `node-${host}-${opts.port}`;
  const accessLog = path.join(lab.dir, `${name}.log`);
  const script = path.join(__dirname, 'node-server.js');
  const proc = lab.spawn(
    host,
    [process.execPath, script, '--host', opts.bind ?? '0.0.0.0', '--port', String(opts.port), '--log', accessLog],
    { label: name },
  );
  await proc.waitFor(/^listening/m, opts.timeoutMs ?? 10_000);
  return {
    host,
    port: opts.port,
    proc,
    accessLog,
    ...logReader(accessLog, parseNodeLog),
    async stop() {
      await proc.stop();
    },
  };
}
