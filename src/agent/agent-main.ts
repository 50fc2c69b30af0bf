/**
 * `tcpcopy agent ...`: the production side of a split deployment (doc/usage.md "Deployment").
 * Loaded by tcpcopy-main.ts before anything of the replay: the agent process holds the option
 * machinery, the logger, the native addon and the agent itself, nothing of the engine.
 */
import * as v8 from 'node:v8';
import { EXIT } from '../core/errors';
import { readSecret } from '../channel/secret';
import { createLogger } from '../io/logger';
import { daemonize, packageVersion, setNice, writePidFile } from '../cli/process-control';
import { Agent } from './agent';
import { agentHelpText, parseAgentArgs } from './agent-options';

/**
 * V8's memory reducer would run two full garbage collections about 8 s after start-up (and again
 * after later ones) to give back a heap of 4-5 MiB: 40 ms of CPU on 3 threads, more than
 * the agent's own work in those seconds at a few thousand requests/s. The agent's heap stays
 * that small (no JavaScript per packet), so it is not worth it. Read at every GC, so setting
 * it at run time works (unlike `--no-memory-reducer`, fixed when the heap is set up).
 */
const GC_FLAGS = '--no-memory-reducer-for-small-heaps';

/** Runs the agent until SIGINT/SIGTERM; returns the exit status. Throws TcpcopyError at start-up. */
export async function runAgent(argv: readonly string[]): Promise<number> {
  v8.setFlagsFromString(GC_FLAGS);
  const cfg = parseAgentArgs(argv);
  if (cfg.help) {
    process.stdout.write(agentHelpText(packageVersion()) + '\n');
    return EXIT.OK;
  }
  if (cfg.version) {
    process.stdout.write(`tcpcopy agent ${packageVersion()}\n`);
    return EXIT.OK;
  }
  const secret = cfg.secretFile !== null ? readSecret(cfg.secretFile) : null;
  if (cfg.daemon && daemonize(cfg.logFile)) return EXIT.OK;
  if (cfg.pidFile !== null) writePidFile(cfg.pidFile);
  if (cfg.nice !== 0) setNice(cfg.nice);
  const log = createLogger({ name: 'tcpcopy-agent', file: cfg.logFile ?? undefined, format: cfg.logFormat });
  const agent = new Agent(cfg, log, secret);
  process.on('SIGINT', () => agent.stop('SIGINT'));
  process.on('SIGTERM', () => agent.stop('SIGTERM'));
  try {
    await agent.run();
    return EXIT.OK;
  } finally {
    log.close();
  }
}
