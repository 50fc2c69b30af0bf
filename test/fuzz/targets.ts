/** Every fuzz target, in one list (the unit suite and `npm run fuzz` both run it). */
import { CAPTURE_TARGETS } from './targets-capture';
import { CHANNEL_TARGETS } from './targets-channel';
import { NFQ_TARGETS } from './targets-nfq';
import { SERVER_TARGETS } from './targets-server';
import { WIRE_TARGETS } from './targets-wire';
import type { FuzzTarget } from './target';

export const ALL_TARGETS: readonly FuzzTarget[] = [
  ...CAPTURE_TARGETS,
  ...WIRE_TARGETS,
  ...CHANNEL_TARGETS,
  ...SERVER_TARGETS,
  ...NFQ_TARGETS,
];

/** The target called `name`, or undefined. */
export function findTarget(name: string): FuzzTarget | undefined {
  return ALL_TARGETS.find((t) => t.name === name);
}
