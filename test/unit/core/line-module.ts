/**
 * A small line-based protocol module for the engine's module tests: messages end with '\n';
 * what a message says decides its verdict, so a packet script can exercise every verdict.
 *
 *   REWRITE x   -> replaced by "REWRITTEN-AND-LONGER x" (the length changes)
 *   INS x       -> "PRE\n" inserted before it, then passed
 *   HOLD x      -> held until the target has said "OK"
 *   WAIT ms x   -> held up to `ms` (hold(ms)) until the target has said "OK"; when the limit passed
 *                  (expired): dropped with reason 'late' if x is "drop", else held again
 *   DROPR x     -> dropped with reason 'bad'
 *   DROP x      -> dropped without a reason (not needed)
 *   END x       -> the session ends with reason 'refused'
 *   anything else passes.
 * Target bytes are collected (st.target, with missing counts as '?'); a target "HELLO"
 * makes it send "ANSWER\n" at once; a target "BYE" ends the session ('targetBye').
 */
import type { ProtocolModule, SessionStart } from '../../../src/modules/api';

export interface LineState {
  start: SessionStart;
  /** Every target byte delivered, '?' per missing byte. */
  target: string;
  /** Every online byte delivered. */
  online: string;
  /** The target has said OK. */
  ok: boolean;
  ended: boolean;
  /** Messages offered, in order (retries included). */
  offered: string[];
}

export function lineModule(
  opts: { wantsOnlineReplies?: boolean; pipelined?: boolean } = {},
): ProtocolModule<LineState> & {
  sessions: LineState[];
} {
  const sessions: LineState[] = [];
  return {
    name: 'line',
    wantsTargetPayload: true,
    wantsOnlineReplies: opts.wantsOnlineReplies ?? false,
    pipelined: opts.pipelined ?? false,
    reasons: {
      late: 'held past its limit',
      bad: 'a bad line',
      refused: 'the module refused the session',
      targetBye: 'the target said BYE',
    },
    counters: { rewritten: 'lines rewritten' },
    sessions,
    startSession(start) {
      const st: LineState = { start, target: '', online: '', ok: false, ended: false, offered: [] };
      sessions.push(st);
      return st;
    },
    frameClient(_st, data, off, len) {
      const i = data.subarray(off, off + len).indexOf(0x0a);
      return i < 0 ? 0 : i + 1;
    },
    onClientMessage(st, msg, act) {
      const text = msg.toString('latin1');
      st.offered.push(text);
      const [word, ...rest] = text.trimEnd().split(' ');
      switch (word) {
        case 'REWRITE':
          act.count('rewritten');
          act.replace(Buffer.from(`REWRITTEN-AND-LONGER ${rest.join(' ')}\n`, 'latin1'));
          return;
        case 'INS':
          act.insert(Buffer.from('PRE\n'));
          act.pass();
          return;
        case 'HOLD':
          if (st.ok) act.pass();
          else act.hold();
          return;
        case 'WAIT':
          if (st.ok) act.pass();
          else if (act.expired && rest[1] === 'drop') act.drop('late');
          else act.hold(Number(rest[0]));
          return;
        case 'DROPR':
          act.drop('bad');
          return;
        case 'DROP':
          act.drop();
          return;
        case 'END':
          act.end('refused');
          return;
        default:
          act.pass();
      }
    },
    onTargetBytes(st, data, missing, act) {
      st.target += data.toString('latin1') + '?'.repeat(missing);
      if (st.target.includes('OK')) st.ok = true;
      if (data.toString('latin1').includes('HELLO')) act.send(Buffer.from('ANSWER\n'));
      if (data.toString('latin1').includes('BYE')) act.end('targetBye');
    },
    onOnlineBytes(st, data, missing) {
      st.online += data.toString('latin1') + '?'.repeat(missing);
    },
    endSession(st) {
      st.ended = true;
    },
  };
}
