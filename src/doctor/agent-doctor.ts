/**
 * `tcpcopy doctor --agent HOST[:PORT] [--secret-file FILE] [--json]`: checks the agent path from
 * a production host. It connects to the replayer as an agent would (hello with QUERY, the
 * channel v2 handshake with --secret-file), reads the replayer's INFO (the agents and pcap
 * streams it sees, their packets and drops, the clock skew it measured) and measures this
 * host's clock against the replayer's (half the round trip corrected).
 */
import * as net from 'node:net';
import * as os from 'node:os';
import { randomBytes } from 'node:crypto';
import { V2ClientHandshake } from '../channel/v2';
import { readSecret } from '../channel/secret';
import { AGENT_DEFAULT_PORT } from '../agent/agent-options';
import { encodeHello, FRAME_HEADER_BYTES, FRAME_INFO, HELLO_AUTH, HELLO_QUERY } from '../agent/stream-format';
import type { StreamSourceInfo } from '../io/stream-input';
import { check, type CheckResult, exitStatus, formatJson, formatText } from './result';
import { checkAgentSources, checkClockSkew } from './agent-checks';

/** What the replayer answered. */
interface Answer {
  info: { nowMs: number; sources: StreamSourceInfo[] } | null;
  rttMs: number;
  sentAt: number;
  error: string | null;
}

/** Queries the replayer; never rejects. */
function query(host: string, port: number, secret: Buffer | null, timeoutMs = 5000): Promise<Answer> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let sentAt = t0;
    let buf = Buffer.alloc(0);
    let hs = secret !== null ? new V2ClientHandshake(secret, randomBytes(32)) : null;
    let done = false;
    const finish = (a: Omit<Answer, 'sentAt'>): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ ...a, sentAt });
    };
    const sock = net.connect({ host, port });
    const timer = setTimeout(
      () => finish({ info: null, rttMs: 0, error: `no answer within ${timeoutMs / 1000} s` }),
      timeoutMs,
    );
    sock.on('connect', () => {
      sentAt = Date.now();
      sock.write(
        encodeHello({
          flags: HELLO_QUERY | (secret !== null ? HELLO_AUTH : 0),
          littleEndian: true,
          agentId: 0,
          shard: 0,
          shards: 1,
          name: `doctor@${os.hostname()}`,
        }),
      );
    });
    sock.on('data', (chunk: Buffer) => {
      if (hs !== null) {
        const step = hs.feed(chunk);
        if (step.kind === 'send') sock.write(step.bytes);
        else if (step.kind === 'fail')
          finish({ info: null, rttMs: 0, error: step.message.replace(/intercept/g, 'the replayer') });
        else if (step.kind === 'ok') {
          hs = null;
          buf = Buffer.from(step.rest);
          sentAt = Date.now();
        }
        if (hs !== null || buf.length === 0) return;
      } else {
        buf = Buffer.concat([buf, chunk]);
      }
      if (buf.subarray(0, 4).toString('latin1') === 'TCNO')
        return finish({
          info: null,
          rttMs: 0,
          error: 'the replayer requires --secret-file (give the doctor the same file)',
        });
      if (buf.length < FRAME_HEADER_BYTES) return;
      const len = buf.readUInt32BE(4);
      if (buf[0] !== FRAME_INFO) return finish({ info: null, rttMs: 0, error: `unexpected frame type ${buf[0]}` });
      if (buf.length < FRAME_HEADER_BYTES + len) return;
      try {
        const info = JSON.parse(
          buf.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + len).toString('utf8'),
        ) as Answer['info'];
        finish({ info, rttMs: Date.now() - sentAt, error: null });
      } catch (e) {
        finish({ info: null, rttMs: 0, error: `bad INFO: ${(e as Error).message}` });
      }
    });
    sock.on('error', (e) => finish({ info: null, rttMs: 0, error: e.message }));
    sock.on('close', () => finish({ info: null, rttMs: 0, error: 'closed by the replayer without an answer' }));
  });
}

/** Runs the agent-path doctor; returns the exit status. */
export async function runAgentDoctor(argv: readonly string[], out: NodeJS.WritableStream): Promise<number> {
  let target = '';
  let secretFile: string | null = null;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--agent') target = argv[++i] ?? '';
    else if (a === '--secret-file') secretFile = argv[++i] ?? null;
    else if (a === '--json') json = true;
  }
  const m = /^([A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(target);
  if (m === null) {
    out.write(
      'tcpcopy doctor --agent HOST[:PORT] [--secret-file FILE] [--json]: expected the replayer, e.g. --agent 198.18.0.5:36525\n',
    );
    return 2;
  }
  const host = m[1] as string;
  const port = m[2] !== undefined ? Number(m[2]) : AGENT_DEFAULT_PORT;
  const secret = secretFile !== null ? readSecret(secretFile) : null;
  const results: CheckResult[] = [];
  const a = await query(host, port, secret);
  if (a.info === null) {
    results.push(
      check(
        'stream',
        'fail',
        `replayer ${host}:${port}: ${a.error ?? 'no answer'}`,
        `start it there: tcpcopy -i tcp://${port} -x ... -s ...; check the firewall between the hosts${secret === null ? '' : ' and that both use the same --secret-file'}`,
      ),
    );
  } else {
    results.push(
      check(
        'stream',
        'ok',
        `replayer ${host}:${port} accepts agents${secret !== null ? ' (shared secret verified both ways)' : ''}; answered in ${a.rttMs} ms`,
      ),
    );
    results.push(...checkAgentSources(a.info.sources));
    results.push(checkClockSkew(a.info.nowMs - (a.sentAt + a.rttMs / 2), a.rttMs));
  }
  out.write(json ? formatJson(results) : formatText(results));
  return exitStatus(results);
}
