/**
 * Hints in the final report that name the likely cause of a loss the counters alone leave
 * open. Today one: sessions of a MySQL port replayed without `--module mysql`. A MySQL login
 * answers the online server's random scramble, so the target refuses the replayed login
 * ("Access denied") and closes the connection; the client's later queries then meet a reset
 * and are counted as `targetReset`, which is true but does not say why (issue 13).
 * Pure: reads the engine's counters and the transfers.
 */
import type { EngineStats } from '../core/stats';

/** A well-known port of a protocol whose replay needs a module. */
interface ProtocolPort {
  port: number;
  protocol: string;
  /** Why a plain TCP replay of it fails. */
  why: string;
  /** The options that fix it. */
  fix: string;
}

/** Ports whose plain replay loses sessions, with the module that replays them. */
export const PROTOCOL_PORTS: readonly ProtocolPort[] = [
  {
    port: 3306,
    protocol: 'MySQL',
    why: "a replayed MySQL login answers the online server's scramble, so the target refuses it (Access denied) and closes the connection, and the session's queries are lost",
    fix: '--module mysql --mysql-user USER:PASSWORD',
  },
];

/** The ports of a transfer the hints look at. */
export interface HintTransfer {
  readonly onlinePort: number;
  readonly targetPort: number;
}

/**
 * Report lines (without indentation) explaining losses: for each protocol port among the
 * transfers' online or target ports, when no module is in use and the target reset sessions
 * before their requests were replayed. Empty when there is nothing to say.
 */
export function lossHints(
  e: Pick<EngineStats, 'outcomes' | 'requestsLost'>,
  transfers: readonly HintTransfer[],
  moduleName: string | null,
): string[] {
  if (moduleName !== null) return [];
  const sessions = e.outcomes.targetReset;
  const requests = e.requestsLost.targetReset;
  if (sessions === 0 || requests === 0) return [];
  const out: string[] = [];
  for (const p of PROTOCOL_PORTS) {
    if (!transfers.some((t) => t.onlinePort === p.port || t.targetPort === p.port)) continue;
    out.push(
      `${sessions} session${sessions === 1 ? '' : 's'} (${requests} request${requests === 1 ? '' : 's'}) reset by the target (targetReset) on a transfer of port ${p.port} (${p.protocol}) replayed without a module: ` +
        `likely logins refused: ${p.why}; replay with ${p.fix}`,
    );
  }
  return out;
}
