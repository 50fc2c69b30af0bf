/**
 * `tcpcopy lab up|run|down|status`: the namespace lab for users who want to try tcpcopy's
 * options in a sandbox (see doc/lab.md).
 *
 *   up      builds the lab with prefix `tcpcopy`, starts nginx on online:80 and target:8080 and
 *           intercept on the assistant (all detached: they outlive the command), prints how to
 *           run tcpcopy and drive load in it. Stays until `down`.
 *   run     the whole demo (prefix `demo`, its own lab, removed afterwards) with the given
 *           tcpcopy options appended: `tcpcopy lab run -n 2`; `run --agent [options]` runs the
 *           split deployment (tcpcopy agent on online, the replayer on the replay host).
 *   down    removes the `tcpcopy` lab (processes by recorded pid, namespaces, files).
 *   status  what exists of the `tcpcopy` lab (JSON).
 * Exit codes: 0 ok, 1 failure (or a demo mismatch), 2 bad usage or a program did not start.
 */
import { readFileSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { TcpcopyError } from '../core/errors';
import { describeLab, runDemo, shellLine } from './demo';
import { Lab } from './lab';
import { labDown, labMain, stateFile } from './lab-main';
import { sleep } from './sh';

/** Prefix of the lab `tcpcopy lab up` builds (namespaces tcpcopyonline, tcpcopytarget, ...). */
export const LAB_CLI_PREFIX = 'tcpcopy';

const USAGE = `usage: tcpcopy lab up | run [tcpcopy options] | down | status

  up      build a lab (network namespaces tcpcopy*, addresses 198.18.0.0/15) with nginx on
          online:80 and target:8080 and intercept on the assistant; prints how to use it
  run     the demo: a fresh lab, live tcpcopy with these extra options, real traffic,
          a check of the target's access log; the lab is removed afterwards
          e.g. tcpcopy lab run -n 2      (every session twice)
               tcpcopy lab run -r 50     (half of the sessions)
               tcpcopy lab run --agent   (tcpcopy agent on online, the replay on a fifth host)
  down    remove the lab built by up
  status  show what exists of it
`;

const DIST = path.join(__dirname, '..', '..');
const TCPCOPY_JS = path.join(DIST, 'src', 'cli', 'tcpcopy-main.js');
const INTERCEPT_JS = path.join(DIST, 'src', 'cli', 'intercept-main.js');
const LOADGEN_JS = path.join(DIST, 'src', 'lab', 'loadgen-main.js');

/** Runs `tcpcopy lab ...` (argv after `lab`); resolves the exit code. */
export async function labCli(
  argv: readonly string[],
  out: (l: string) => void = (l) => {
    process.stdout.write(`${l}\n`);
  },
): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '-h' || cmd === '--help' || cmd === 'help') {
    out(USAGE);
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === 'status') return labMain(['status', '--prefix', LAB_CLI_PREFIX]);
  if (!['up', 'run', 'down'].includes(cmd)) {
    process.stderr.write(`tcpcopy lab: unknown command ${cmd}\n${USAGE}`);
    return 2;
  }
  if (cmd !== 'run' && rest.length > 0) {
    process.stderr.write(`tcpcopy lab ${cmd}: takes no arguments (got ${rest.join(' ')})\n`);
    return 2;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write(`tcpcopy lab ${cmd}: needs root (network namespaces, raw sockets)\n`);
    return 1;
  }
  const log = (m: string): void => {
    process.stderr.write(`${m}\n`);
  };
  try {
    if (cmd === 'run') {
      const agent = rest[0] === '--agent';
      return await runDemo({ tcpcopyArgs: agent ? rest.slice(1) : rest, out, agent });
    }
    if (cmd === 'down') {
      await labDown(LAB_CLI_PREFIX, log);
      out(`lab "${LAB_CLI_PREFIX}" removed`);
      return 0;
    }
    return await labUp(out, log);
  } catch (e) {
    process.stderr.write(
      `tcpcopy lab ${cmd}: ${e instanceof TcpcopyError ? `${e.code}: ` : ''}${(e as Error).message}\n`,
    );
    return 1;
  }
}

/** `lab up`: the lab plus detached nginx x2 and intercept, a state file for `down`, and a guide. */
async function labUp(out: (l: string) => void, log: (m: string) => void): Promise<number> {
  await labDown(LAB_CLI_PREFIX, log);
  const lab = await Lab.up({ prefix: LAB_CLI_PREFIX, clientAddresses: 20, keepDir: true, log });
  const icpLog = path.join(lab.dir, 'intercept.log');
  const icpArgs = ['-i', lab.hosts.assistant.dev, '-F', 'tcp and src port 8080'];
  try {
    await lab.startNginx('online', { port: 80, detached: true });
    await lab.startNginx('target', { port: 8080, detached: true });
    const icp = lab.spawn('assistant', [process.execPath, INTERCEPT_JS, ...icpArgs], {
      detached: true,
      logFile: icpLog,
      label: 'intercept',
    });
    const deadline = Date.now() + 15_000;
    while (!(existsSync(icpLog) && readFileSync(icpLog, 'utf8').includes('listening on'))) {
      if (!icp.running || Date.now() > deadline) {
        throw new TcpcopyError(
          'ERR_LAB_START',
          `intercept did not start: ${existsSync(icpLog) ? readFileSync(icpLog, 'utf8').trim() : 'no log'}`,
        );
      }
      await sleep(50);
    }
  } catch (e) {
    await lab.down();
    throw e;
  }
  writeFileSync(stateFile(LAB_CLI_PREFIX), JSON.stringify(lab.state(), null, 2) + '\n');
  const h = lab.hosts;
  const ns = (x: { ns: string }): string => `ip netns exec ${x.ns}`;
  const onlineLog = path.join(lab.dir, 'nginx-online-80', 'access.log');
  const targetLog = path.join(lab.dir, 'nginx-target-8080', 'access.log');
  out(`lab "${LAB_CLI_PREFIX}" is up (files in ${lab.dir}, state ${stateFile(LAB_CLI_PREFIX)})`);
  for (const l of describeLab(lab)) out(l);
  out('running (detached):');
  out(`   nginx on online:80      access log ${onlineLog}`);
  out(`   nginx on target:8080    access log ${targetLog}`);
  out(`   intercept on assistant  log ${icpLog}`);
  out(`      ${ns(h.assistant)} ${shellLine(['intercept', ...icpArgs])}`);
  out('');
  out('1. run tcpcopy on online (Ctrl-C stops it and prints its report; add any option to try it):');
  out(`   ${ns(h.online)} node ${TCPCOPY_JS} -x 80-${h.target.ip}:8080 -s ${h.assistant.ip}`);
  out('2. from another terminal, send traffic from the client to online (bounded in count and time):');
  out(
    `   ${ns(h.client)} node ${LOADGEN_JS} --url http://198.18.1.1/ --requests 3000 --duration-ms 10000 --concurrency 10 --local-addresses ${h.client.addresses.slice(0, 5).join(',')}`,
  );
  out(`   ${ns(h.client)} curl -s http://198.18.1.1/bytes/100 | wc -c`);
  out('3. compare what the servers logged:');
  out(`   wc -l ${onlineLog} ${targetLog}`);
  out('');
  out('when done: tcpcopy lab down   (or: node dist/src/cli/tcpcopy-main.js lab down)');
  return 0;
}
