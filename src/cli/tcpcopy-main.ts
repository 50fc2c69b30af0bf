#!/usr/bin/env node
import { createLogger } from '../io/logger';
import { daemonize, packageVersion, reportStartupError, setNice, writePidFile } from './process-control';
import { EXIT } from '../core/errors';
import { raiseNofileLimit } from '../io/native';
import { boundYoungGeneration } from './young-gen';
import { boundHeapGrowth } from './heap-growth';

/**
 * tcpcopy's entry point: subcommands (agent, inspect, doctor, lab, compare-report) or a replay. The replay's
 * modules are loaded only for a replay, so that `tcpcopy agent` on a production host loads
 * none of them.
 */
async function main(argv: string[]): Promise<number> {
  const sub = argv[0];
  if (sub === 'agent') {
    const { runAgent } = await import('../agent/agent-main');
    return runAgent(argv.slice(1));
  }
  if (sub === 'inspect') {
    const { runInspect } = await import('./inspect');
    return runInspect(argv.slice(1), process.stdout);
  }
  if (sub === 'doctor' && argv.includes('--agent')) {
    const { runAgentDoctor } = await import('../doctor/agent-doctor');
    return runAgentDoctor(argv.slice(1), process.stdout);
  }
  if (sub === 'doctor') {
    const { runTcpcopyDoctor } = await import('../doctor/tcpcopy-doctor');
    return runTcpcopyDoctor(argv.slice(1), process.stdout);
  }
  if (sub === 'compare-report') {
    const { runCompareReport } = await import('./compare-report');
    return runCompareReport(argv.slice(1), process.stdout);
  }
  if (sub === 'lab') {
    const { labCli } = await import('../lab/lab-cli');
    return labCli(argv.slice(1));
  }
  const { parseTcpcopyArgs } = await import('./tcpcopy-config');
  const { helpText } = await import('./tcpcopy-options');
  const { Replay } = await import('../run/replay');
  const cfg = parseTcpcopyArgs(argv);
  if (cfg.help) {
    process.stdout.write(helpText(packageVersion()) + '\n');
    return EXIT.OK;
  }
  if (cfg.version) {
    process.stdout.write(`tcpcopy ${packageVersion()}\n`);
    return EXIT.OK;
  }
  if (cfg.daemon && daemonize(cfg.logFile)) return EXIT.OK;
  if (cfg.pidFile !== null) writePidFile(cfg.pidFile);
  if (cfg.nice !== 0) setNice(cfg.nice);
  raiseNofileLimit();
  const log = createLogger({
    name: 'tcpcopy',
    file: cfg.logFile ?? undefined,
    level: cfg.debug ? 'debug' : 'info',
    format: cfg.logFormat,
  });
  // V8 would grow its young generation to 32 MiB under load (issue 18, item 13)
  boundYoungGeneration();
  // and its old generation to about 4 x the live heap between full collections (heap-growth.ts)
  boundHeapGrowth();
  const replay = new Replay(cfg, log);
  process.on('SIGINT', () => replay.stop('SIGINT'));
  process.on('SIGTERM', () => replay.stop('SIGTERM'));
  process.on('SIGUSR1', () => replay.printReport());
  try {
    return await replay.run();
  } finally {
    log.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // live captures and sockets are closed by now; do not wait for stray handles
    setTimeout(() => process.exit(code), 200).unref();
  },
  (e: unknown) => {
    process.exitCode = reportStartupError('tcpcopy', e);
    setTimeout(() => process.exit(process.exitCode as number), 100).unref();
  },
);
