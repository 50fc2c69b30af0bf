/**
 * `node dist/src/lab/demo-main.js [tcpcopy options]` (what `npm run demo` runs): the demo
 * with its defaults, dual stack (IPv4 and IPv6 clients at once; `--ipv4` for IPv4 only), extra
 * arguments are appended to tcpcopy's command line. Needs root.
 * Exit code: 0 the target received the requests, 1 mismatch or failure, 2 a program did not start.
 */
import { TcpcopyError } from '../core/errors';
import { npmDemoArgs, runDemo } from './demo';

if (require.main === module) {
  if (process.getuid?.() !== 0) {
    process.stderr.write('demo: needs root (it builds network namespaces and sends raw packets): run it as root\n');
    process.exitCode = 1;
  } else {
    runDemo(npmDemoArgs(process.argv.slice(2))).then(
      // the lab is down by now; do not wait for stray timers (e.g. a stop grace timer)
      (code) => {
        process.exit(code);
      },
      (e: unknown) => {
        process.stderr.write(`demo: ${e instanceof TcpcopyError ? `${e.code}: ` : ''}${(e as Error).message}\n`);
        process.exitCode = 1;
      },
    );
  }
}
