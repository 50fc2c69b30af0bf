'use strict';
/**
 * A worked example of a tcpcopy protocol module (doc/modules.md): it rewrites the Host header
 * of every replayed HTTP/1.x request, so the request's length changes and tcpcopy has to map
 * the client's sequence space to the one it sends the target.
 *
 *   tcpcopy -x 80-198.18.0.2:8080 -s 198.18.0.3 --module ./examples/modules/http-host.js \
 *           --module-opt host=staging.example
 *
 * Options (--module-opt KEY=VALUE): host (the new Host value; default replay.test).
 * Requests with a body are framed by Content-Length; a chunked body makes the module give up
 * framing for that connection (the rest passes through unchanged), a request that is not
 * HTTP/1.x ends the session as `notHttp`.
 *
 * Pure, as a module must be: no clock, no I/O, no timers; its per-session state is the object
 * startSession returns.
 */

/** Longest request head searched for its end before the module gives up framing. */
const MAX_HEAD = 64 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');

function createModule(opts) {
  const host = (opts.host && opts.host[0]) || 'replay.test';
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(host)) throw new Error(`host=${host}: not a host name`);
  return {
    name: 'httphost',
    wantsTargetPayload: false,
    wantsOnlineReplies: false,
    reasons: { notHttp: 'the client did not speak HTTP/1.x' },
    counters: { rewritten: 'requests whose Host header was rewritten', unframed: 'connections passed through unframed' },
    startSession() {
      return { requests: 0 };
    },
    frameClient(_st, data, off, len) {
      const view = data.subarray(off, off + len);
      const end = view.indexOf(HEAD_END);
      if (end < 0) return len > MAX_HEAD ? -1 : 0;
      const head = view.toString('latin1', 0, end);
      if (/\r\ntransfer-encoding:[^\r]*chunked/i.test(head)) return -1;
      const m = /\r\ncontent-length:\s*(\d+)/i.exec(head);
      const total = end + 4 + (m ? Number(m[1]) : 0);
      return total <= len ? total : 0;
    },
    onClientMessage(st, msg, act) {
      const text = msg.toString('latin1');
      if (!/^[A-Z]+ \S+ HTTP\/1\.[01]\r\n/.test(text)) {
        act.end('notHttp');
        return;
      }
      st.requests++;
      const out = text.replace(/\r\nHost:[^\r]*/i, `\r\nHost: ${host}`);
      if (out === text) {
        act.pass();
        return;
      }
      act.count('rewritten');
      act.replace(Buffer.from(out, 'latin1'));
    },
    onTargetBytes() {
      // this module does not read the target's replies
    },
  };
}

module.exports = { createModule };
