#!/usr/bin/env node
/**
 * `intercept` entry point: parse options, optionally daemonize, capture replies and serve
 * them to tcpcopy over the channel until SIGINT/SIGTERM, then print the final counters.
 */
import { parseMetricsAddress, startMetricsServer } from '../io/metrics-server';
import { interceptMetrics } from '../run/metrics';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { EXIT, TcpcopyError } from '../core/errors';
import { reportStartupError } from './process-control';
import { RingCapture } from '../io/ring-capture';
import type { PacketSource } from '../io/types';
import { parseIp } from '../core/wire/segment';
import { NfqueueSource } from '../intercept/nfqueue';
import { readSecret } from '../channel/secret';
import { Intercept } from '../intercept/intercept';
import { createLogger, openLogFile } from '../io/logger';
import { raiseNofileLimit } from '../io/native';
import { INTERCEPT_HELP, parseInterceptArgs } from './intercept-options';
import type { InterceptConfig } from '../config/intercept-config';

const CHILD_ENV = 'TCPCOPY_INTERCEPT_DAEMON_CHILD';

function version(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** Re-runs this program detached, output to the log file; returns the child's pid. */
function daemonize(cfg: InterceptConfig): number {
  const out = cfg.logFile !== null ? openLogFile(cfg.logFile) : 'ignore';
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, [CHILD_ENV]: '1' },
  });
  child.unref();
  return child.pid ?? -1;
}

async function run(cfg: InterceptConfig): Promise<void> {
  const log = createLogger({
    name: 'intercept',
    file: cfg.logFile ?? undefined,
    level: cfg.logLevel,
    format: cfg.logFormat,
  });
  const nofile = raiseNofileLimit();
  if (cfg.pidFile) {
    try {
      fs.writeFileSync(cfg.pidFile, `${process.pid}\n`);
    } catch (e) {
      throw new TcpcopyError(
        'ERR_PID_FILE',
        `-P ${cfg.pidFile}: cannot write (${(e as Error).message}); fix: pick a writable path`,
        { option: '-P', value: cfg.pidFile },
      );
    }
  }
  const source: PacketSource =
    cfg.nfqueue !== null
      ? new NfqueueSource({
          queue: cfg.nfqueue,
          maxLen: cfg.queueMaxLen,
          copyRange: cfg.payload ? 320 : cfg.secretFile !== null ? Math.min(65535, 128 + cfg.payloadMax) : 128,
          pass: cfg.passList.map(parseIp),
        })
      : new RingCapture({
          device: cfg.device,
          filter: cfg.filter,
          snaplen: cfg.snaplen,
          direction: 'both',
          blockTimeoutMs: cfg.captureDelayMs,
          timestamps: false,
        });
  const secret = cfg.secretFile !== null ? readSecret(cfg.secretFile) : null;
  const icp = new Intercept(
    {
      host: cfg.bind,
      port: cfg.port,
      recordBytes: cfg.payload ? 192 : 64,
      payloadMax: cfg.payloadMax,
      routeTimeoutMs: cfg.routeTimeoutS * 1000,
      maxRoutes: cfg.maxRoutes,
      maxRoutesPerPeer: cfg.maxRoutesPerPeer,
      allow: cfg.allow,
      ...(nofile !== null && nofile.soft > 0 ? { maxConnections: Math.max(16, nofile.soft - 64) } : {}),
      ...(secret !== null ? { secret } : {}),
    },
    source,
    log,
  );
  await icp.start();
  const metrics =
    cfg.metrics !== null
      ? await startMetricsServer(parseMetricsAddress(cfg.metrics), () => interceptMetrics(icp.stats()))
      : null;
  const input =
    cfg.nfqueue !== null
      ? `reading NFQUEUE ${cfg.nfqueue}${cfg.passList.length > 0 ? ` (passing replies to ${cfg.passList.join(',')})` : ''}`
      : `capturing on ${cfg.device} with filter '${cfg.filter}'`;
  log.info(
    `intercept ${version()} listening on ${cfg.bind}:${icp.port}, ${input}${cfg.payload ? ', 192-byte records' : ''}${secret !== null ? ', channel v2 (shared secret required)' : cfg.allow.length > 0 ? ', channel 1.x from --allow addresses only' : ', channel 1.x (unauthenticated) open to any address: consider --allow or --secret-file'}${nofile !== null ? `, open-files limit ${nofile.soft}` : ''}`,
  );
  const status = setInterval(() => {
    const s = icp.stats();
    log.info('status', {
      captured: s.captured,
      routed: s.routed,
      noRoute: s.noRoute,
      held: s.held,
      routes: s.routes,
      routesExpired: s.routesExpired,
      peers: s.peers,
      framesSent: s.framesSent,
      bytesSent: s.bytesSent,
      captureDropped: s.capture.dropped,
      badHello: s.badHello,
      authRefused: s.authRefused,
      routesRefused: s.routesRefused + s.routesRefusedQuota + s.routesRefusedOwned,
      notAllowed: s.notAllowed,
      fdExhausted: s.fdExhausted,
      perPeer: s.perPeer.map(
        (p) =>
          `${p.peer} adds=${p.clientAdds} refused=${p.routesRefused} records=${p.records} frames=${p.frames} bytes=${p.bytes} dropped=${p.dropped}`,
      ),
    });
  }, 30_000);
  status.unref();
  let stopping = false;
  const stop = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    clearInterval(status);
    void metrics?.close();
    log.info(`${sig}: stopping`);
    icp.stop().then(
      () => {
        const s = icp.stats();
        log.info('final counters', { ...s });
        if (cfg.reportFile !== null) {
          try {
            fs.writeFileSync(cfg.reportFile, JSON.stringify(s, null, 1) + '\n');
          } catch (e) {
            log.error(`--report ${cfg.reportFile}: ${(e as Error).message}`);
          }
        }
        log.close();
        if (cfg.pidFile) {
          try {
            fs.unlinkSync(cfg.pidFile);
          } catch {
            /* already gone */
          }
        }
        process.exit(EXIT.OK);
      },
      (e: Error) => {
        log.error(`stop failed: ${e.message}`);
        process.exit(EXIT.FAILURE);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** The program: returns the exit code for early exits; resolves when running. */
export async function main(argv: readonly string[]): Promise<number | null> {
  if (argv[0] === 'doctor') {
    const { runInterceptDoctor } = await import('../doctor/intercept-doctor');
    return runInterceptDoctor(argv.slice(1), process.stdout);
  }
  const cmd = parseInterceptArgs(argv);
  if (cmd.kind === 'help') {
    process.stdout.write(INTERCEPT_HELP + '\n');
    return EXIT.OK;
  }
  if (cmd.kind === 'version') {
    process.stdout.write(`intercept ${version()}\n`);
    return EXIT.OK;
  }
  const cfg = cmd.config;
  if (cfg.daemon && process.env[CHILD_ENV] !== '1') {
    if (!cfg.logFile) process.stderr.write('intercept: -d without -l: the log is discarded; give -l FILE to keep it\n');
    const pid = daemonize(cfg);
    process.stdout.write(`intercept running in the background as pid ${pid}\n`);
    return EXIT.OK;
  }
  await run(cfg);
  return null;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code !== null) process.exitCode = code;
    },
    (e: unknown) => process.exit(reportStartupError('intercept', e)),
  );
}
