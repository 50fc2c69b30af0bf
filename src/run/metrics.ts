import { LAG_BUCKETS, type ModuleStats, OUTCOMES } from '../core/stats';
import type { InterceptReport } from '../intercept/intercept';
import { type ReplayReport, requestAccounting } from './report';

/**
 * Prometheus text exposition format (0.0.4) for tcpcopy and intercept: built from the same
 * snapshot the status line and the report read, per scrape (never on the hot path).
 */

/** Label set of one sample. */
export type Labels = Readonly<Record<string, string>>;

/** Escapes a label value: backslash, double quote and newline. */
export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Formats a sample value: integers as is, +Inf/-Inf/NaN spelled as Prometheus wants. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

/** Builds one exposition: families with HELP and TYPE lines followed by their samples. */
export class PromText {
  private readonly lines: string[] = [];
  private readonly seen = new Set<string>();

  constructor(private readonly prefix: string) {}

  /** Starts a family `prefix_name` (once; later calls for the same name only add samples). */
  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): this {
    const full = `${this.prefix}_${name}`;
    if (!this.seen.has(full)) {
      this.seen.add(full);
      this.lines.push(`# HELP ${full} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${full} ${type}`);
    }
    return this;
  }

  /** One sample of `prefix_name` (name may carry a suffix like _bucket). */
  sample(name: string, value: number, labels: Labels = {}): this {
    const ls = Object.entries(labels)
      .map(([k, v]) => `${k}="${escapeLabelValue(v)}"`)
      .join(',');
    this.lines.push(`${this.prefix}_${name}${ls === '' ? '' : `{${ls}}`} ${formatValue(value)}`);
    return this;
  }

  /** A family with a single unlabelled sample. */
  single(name: string, type: 'counter' | 'gauge', help: string, value: number): this {
    return this.family(name, type, help).sample(name, value);
  }

  /**
   * A histogram from the engine's log2 buckets (bucket 0: < 1 ms; bucket i: [2^(i-1), 2^i) ms):
   * cumulative `le` buckets 1, 2, 4, ... ms, then +Inf, _sum and _count.
   */
  log2Histogram(name: string, help: string, buckets: readonly number[], count: number, sum: number): this {
    this.family(name, 'histogram', help);
    let acc = 0;
    for (let i = 0; i < LAG_BUCKETS - 1; i++) {
      acc += buckets[i] ?? 0;
      this.sample(`${name}_bucket`, acc, { le: String(2 ** i) });
    }
    this.sample(`${name}_bucket`, count, { le: '+Inf' });
    this.sample(`${name}_sum`, sum);
    return this.sample(`${name}_count`, count);
  }

  /** The exposition text, newline-terminated. */
  toString(): string {
    return this.lines.join('\n') + '\n';
  }
}

/** The protocol module's counters (`--module`), labelled with its name. */
function moduleMetrics(p: PromText, m: ModuleStats): void {
  const mod = { module: m.name };
  p.family('module_sessions_ended_total', 'counter', 'Sessions the protocol module ended, by reason.');
  for (const [reason, v] of Object.entries(m.ended)) p.sample('module_sessions_ended_total', v, { ...mod, reason });
  p.family('module_requests_lost_total', 'counter', 'Requests lost by protocol-module reason.');
  for (const [reason, v] of Object.entries(m.lost)) p.sample('module_requests_lost_total', v, { ...mod, reason });
  p.family('module_counter_total', 'counter', "The protocol module's own counters.");
  for (const [counter, v] of Object.entries(m.counters)) p.sample('module_counter_total', v, { ...mod, counter });
  p.family('module_messages_total', 'counter', 'Client messages offered to the module, and their verdicts.');
  for (const [verdict, v] of [
    ['offered', m.messages],
    ['replaced', m.replaced],
    ['dropped', m.dropped],
    ['held', m.held],
    ['holdExpired', m.holdExpired],
    ['inserted', m.inserted],
    ['sent', m.sent],
  ] as const)
    p.sample('module_messages_total', v, { ...mod, verdict });
  p.family('module_reply_bytes_total', 'counter', 'Reply bytes delivered to the module, by side and kind.');
  for (const [side, o] of [
    ['target', m.target],
    ['online', m.online],
  ] as const) {
    p.sample('module_reply_bytes_total', o.bytes, { ...mod, side, kind: 'data' });
    p.sample('module_reply_bytes_total', o.missing, { ...mod, side, kind: 'missing' });
  }
  p.single('module_errors_total', 'counter', 'Module calls that threw or broke the API.', m.errors);
}

/** tcpcopy's metrics from its report snapshot (`Replay.report()`), plus whether the channel is up. */
export function tcpcopyMetrics(r: ReplayReport, channelUp: boolean): string {
  const e = r.engine;
  const p = new PromText('tcpcopy');
  const acc = requestAccounting(e, r.requestsInFlight);
  p.family('sessions_total', 'counter', 'Replayed sessions ended, by outcome.');
  for (const o of OUTCOMES) p.sample('sessions_total', e.outcomes[o], { outcome: o });
  p.single(
    'sessions_created_total',
    'counter',
    'Sessions created (SYN seen or first data seen mid-stream).',
    e.sessionsCreated,
  );
  p.single('sessions_sampled_out_total', 'counter', 'Sessions skipped by sampling (-r, -g).', e.sessionsSampledOut);
  p.single('sessions_active', 'gauge', 'Sessions in the table now.', e.sessionsActive);
  p.single(
    'requests_captured_total',
    'counter',
    'Requests captured, including sampled-out ones (= replayed + lost).',
    acc.captured,
  );
  p.single('requests_replayed_total', 'counter', 'Requests sent to the target and acknowledged by it.', acc.replayed);
  p.family('requests_lost_total', 'counter', 'Requests not replayed, by reason (inFlight: still open).');
  const reasons = new Set<string>([
    'sampledOut',
    'noSyn',
    'noIpv6Channel',
    ...OUTCOMES.filter((o) => o !== 'completed'),
  ]);
  for (const k of Object.keys(acc.lost)) reasons.add(k);
  for (const k of reasons) p.sample('requests_lost_total', acc.lost[k] ?? 0, { reason: k });
  p.single(
    'requests_balanced',
    'gauge',
    '1 when captured = replayed + lost + in flight (nothing unexplained).',
    acc.balanced ? 1 : 0,
  );
  p.single(
    'requests_unexplained',
    'gauge',
    'Captured requests neither replayed, lost for a reason nor in an open session (a counting bug when not 0).',
    acc.unexplained,
  );
  p.single('client_packets_total', 'counter', 'Captured client->server packets of the transfers.', e.clientPackets);
  p.single('client_bytes_total', 'counter', 'Captured client payload bytes.', e.clientBytes);
  p.single('capture_frames_total', 'counter', 'Frames read from the capture (file or live).', r.capture.frames);
  p.single('capture_dropped_total', 'counter', 'Frames dropped by the kernel before capture.', r.capture.dropped);
  p.single('packets_sent_total', 'counter', 'Packets emitted toward the target.', e.packetsSent);
  p.single('bytes_sent_total', 'counter', 'Bytes (IP total length) emitted toward the target.', e.bytesSent);
  p.single('send_failures_total', 'counter', 'Packets the raw socket failed to send.', r.sender.failed);
  p.family('retransmissions_total', 'counter', 'Retransmitted segments, by trigger.');
  p.sample('retransmissions_total', e.retransTimeout, { kind: 'timeout' }).sample(
    'retransmissions_total',
    e.retransFast,
    { kind: 'fast' },
  );
  p.single('syns_sent_total', 'counter', 'SYNs sent, including retries.', e.synsSent);
  p.single('resets_sent_total', 'counter', 'RSTs sent.', e.resetsSent);
  p.single('resets_ignored_total', 'counter', 'Target RSTs outside the receive window, ignored.', e.resetsIgnored);
  p.single('replies_total', 'counter', 'Reply headers received from intercept.', e.replies);
  p.single('reply_bytes_total', 'counter', 'Reply payload bytes reported by intercept.', e.replyBytes);
  p.single('replies_no_session_total', 'counter', 'Replies for which no session exists.', e.repliesNoSession);
  p.single('channel_up', 'gauge', '1 when every intercept is connected.', channelUp ? 1 : 0);
  if (e.module !== null) moduleMetrics(p, e.module);
  p.log2Histogram(
    'replay_lag_ms',
    'Target first reply time minus the captured request time, ms.',
    e.lagHistogram,
    e.lagCount,
    e.lagSumMs,
  );
  p.single(
    'cpu_seconds_total',
    'counter',
    'CPU time used (user + system), seconds.',
    r.process.cpuUserS + r.process.cpuSystemS,
  );
  p.single('resident_memory_bytes', 'gauge', 'Resident memory now, bytes.', process.memoryUsage.rss());
  const mem = process.memoryUsage();
  p.single('heap_used_bytes', 'gauge', 'V8 heap in use now, bytes.', mem.heapUsed);
  p.single('heap_total_bytes', 'gauge', 'V8 heap reserved now (both generations), bytes.', mem.heapTotal);
  p.single(
    'external_memory_bytes',
    'gauge',
    'Memory of Buffers and other objects outside the V8 heap, bytes.',
    mem.external,
  );
  const mb = r.memoryBudget;
  if (mb !== undefined) {
    p.single('memory_budget_bytes', 'gauge', 'The memory budget (--memory-budget), bytes.', mb.budgetMB * 1048576);
    p.single('memory_over_budget_total', 'counter', 'Times the resident memory reached the budget.', mb.overBudget);
    p.single(
      'memory_refusing_seconds_total',
      'counter',
      'Time new connections were refused (lost as overload) over the budget, seconds.',
      mb.closedMs / 1000,
    );
    p.single('memory_sessions_shed_total', 'counter', 'Sessions given up over the budget.', mb.sessionsShed);
    p.single(
      'memory_sessions_idle_ended_total',
      'counter',
      'Sessions with nothing waiting ended early over the budget (no request lost).',
      mb.sessionsIdleEnded,
    );
    p.single('memory_collections_total', 'counter', 'Full collections asked for over the budget.', mb.collections);
  }
  return p.toString();
}

/** intercept's metrics from its stats snapshot (`Intercept.stats()`), per-peer samples labelled `peer`. */
export function interceptMetrics(s: InterceptReport): string {
  const p = new PromText('intercept');
  p.single('replies_total', 'counter', 'Captured replies handed to the router.', s.captured);
  p.single('replies_undecodable_total', 'counter', 'Captured frames that were not IPv4/TCP.', s.undecodable);
  p.single('replies_routed_total', 'counter', 'Replies put into a frame for a tcpcopy.', s.routed);
  p.single('replies_no_route_total', 'counter', 'Replies with no route (including expired held ones).', s.noRoute);
  p.single('replies_held_total', 'counter', 'SYN-ACK/RST replies held until their CLIENT_ADD.', s.held);
  p.single('replies_held_delivered_total', 'counter', 'Held replies delivered.', s.heldDelivered);
  p.single(
    'replies_held_expired_total',
    'counter',
    'Held replies whose CLIENT_ADD did not come in time (also no-route).',
    s.heldExpired,
  );
  p.single(
    'replies_hold_full_total',
    'counter',
    'SYN-ACK/RST replies without route that found the hold store full (also no-route).',
    s.holdFull,
  );
  p.single('frames_sent_total', 'counter', 'Frames sent to tcpcopy.', s.framesSent);
  p.single('records_sent_total', 'counter', 'Reply records sent to tcpcopy.', s.recordsSent);
  p.single('bytes_sent_total', 'counter', 'Bytes sent to tcpcopy.', s.bytesSent);
  p.single(
    'records_dropped_total',
    'counter',
    'Records dropped because a tcpcopy could not keep up.',
    s.recordsDropped,
  );
  p.family('route_events_total', 'counter', 'Route table events.');
  for (const [ev, v] of [
    ['added', s.routesAdded],
    ['updated', s.routesUpdated],
    ['deleted', s.routesDeleted],
    ['expired', s.routesExpired],
    ['refused', s.routesRefused],
  ] as const) {
    p.sample('route_events_total', v, { event: ev });
  }
  p.single('routes', 'gauge', 'Routes in the table now.', s.routes);
  p.single('peers', 'gauge', 'tcpcopy connections now.', s.peers);
  p.single('peers_total', 'counter', 'tcpcopy connections accepted.', s.peersTotal);
  p.family('bad_messages_total', 'counter', 'Protocol errors from tcpcopy connections.');
  p.sample('bad_messages_total', s.badHello, { kind: 'hello' })
    .sample('bad_messages_total', s.badMessages, { kind: 'message' })
    .sample('bad_messages_total', s.badPeers, { kind: 'peer_closed' });
  p.family('channel_auth_total', 'counter', 'Channel v2 authentications of tcpcopy connections, by result.');
  p.sample('channel_auth_total', s.authOk, { result: 'ok' }).sample('channel_auth_total', s.authRefused, {
    result: 'refused',
  });
  p.single('payload_routes_total', 'counter', 'Channel v2 CLIENT_ADDs that asked for reply payloads.', s.payloadRoutes);
  p.single(
    'payload_bytes_sent_total',
    'counter',
    'Reply payload bytes sent to sessions that asked (v2).',
    s.payloadBytesSent,
  );
  p.single(
    'payload_truncated_total',
    'counter',
    'Replies to such sessions whose payload was cut (--payload-max, snaplen).',
    s.payloadTruncated,
  );
  p.single(
    'stamp_records_total',
    'counter',
    "Records sent with intercept's capture time (v2 sessions that asked: --compare).",
    s.stampsSent,
  );
  p.single('capture_frames_total', 'counter', 'Frames captured.', s.capture.received);
  p.single('capture_dropped_total', 'counter', 'Frames dropped by the kernel.', s.capture.dropped);
  const peers: [string, keyof Omit<import('../intercept/types').PeerStats, 'peer'>, string][] = [
    ['peer_client_adds_total', 'clientAdds', 'CLIENT_ADD messages from this tcpcopy connection.'],
    ['peer_client_dels_total', 'clientDels', 'CLIENT_DEL messages from this tcpcopy connection.'],
    ['peer_records_total', 'records', 'Reply records framed for this connection.'],
    ['peer_frames_sent_total', 'frames', 'Frames written to this connection.'],
    ['peer_bytes_sent_total', 'bytes', 'Bytes written to this connection.'],
    ['peer_records_dropped_total', 'dropped', 'Records dropped: this connection was backed up.'],
  ];
  for (const [name, field, help] of peers) {
    p.family(name, 'counter', help);
    for (const ps of s.perPeer) p.sample(name, ps[field], { peer: ps.peer });
  }
  return p.toString();
}
