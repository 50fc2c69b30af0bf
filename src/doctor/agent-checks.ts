/** The agent-path doctor's checks (pure: facts in, CheckResults out). */
import type { StreamSourceInfo } from '../io/stream-input';
import { check, type CheckResult } from './result';

/** A clock skew beyond this is a warning (the replay lag figures compare the hosts' clocks). */
export const SKEW_WARN_MS = 50;

/** One result per source the replayer sees (connected, packets, drops, its skew); a warning when none. */
export function checkAgentSources(sources: readonly StreamSourceInfo[]): CheckResult[] {
  if (sources.length === 0)
    return [
      check(
        'agents',
        'warn',
        'the replayer has seen no agent and no pcap stream yet',
        'start tcpcopy agent -x PORT --to REPLAYER on the production host(s)',
      ),
    ];
  return sources.map((s) => {
    const what = `slot ${s.slot}: ${s.kind} ${s.name} (${s.remote}) ${s.connected > 0 ? 'connected' : 'disconnected'}, ${s.packets} packets`;
    const skew = s.clockSkewMs !== null ? `, clock skew ${s.clockSkewMs.toFixed(0)} ms` : '';
    if (s.connected === 0)
      return check('agent', 'warn', `${what}${skew}`, 'the agent is not connected now: see its log (reconnecting?)');
    if (s.droppedPackets > 0 || s.kernelDropped > 0)
      return check(
        'agent',
        'warn',
        `${what}; dropped ${s.droppedPackets} packets (${s.agentDropped} with payload) because the replayer could not keep up or was away, ${s.kernelDropped} kernel ring drops${skew}`,
        'a replayer that cannot keep up loses batches: add replay hosts (--to A,B shards by connection) or give the replay host more CPU; kernel drops: a larger -B on the agent',
      );
    return check('agent', 'ok', `${what}, drops 0${skew}`);
  });
}

/** This host's clock against the replayer's: `skewMs` = replayer - this host (round trip corrected). */
export function checkClockSkew(skewMs: number, rttMs: number): CheckResult {
  const text = `replayer clock - this host's clock = ${skewMs.toFixed(0)} ms (±${(rttMs / 2).toFixed(0)} ms)`;
  if (Math.abs(skewMs) > SKEW_WARN_MS)
    return check(
      'clock',
      'warn',
      text,
      'run NTP (chrony) on both hosts: replay lag figures and logs compare their clocks',
    );
  return check('clock', 'ok', text);
}
