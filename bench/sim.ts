/** The simulated target and synthetic captures live in test/sim/target.ts (shared with the runner's tests). */
export * from '../test/sim/target';
