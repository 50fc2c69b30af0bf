/**
 * The learning wait of protocol modules, pure: a session picked up mid-stream uses a prepared
 * statement (MySQL's EXECUTE, PostgreSQL's Bind) whose preparation was before the capture began;
 * another connection often prepares the same statement moments later (a pool opening a
 * connection, the next sysbench / pgbench client) and teaches it to the module's catalog. The
 * session may hold the message for that, once: at most `waitMs` from its first such hold, on
 * the engine's hold limit (ClientActions.hold(maxWaitMs), re-offered with `expired` when it
 * passes, even on a quiet session). Used by src/modules/mysql and src/modules/postgres.
 */
import type { ClientActions } from './api';

/** The part of a module's session state the wait keeps. */
export interface Learner {
  /** When the session first held a message to learn its statement (ms of engine time), -1: never. */
  learnSince: number;
}

/**
 * May the message wait (more) for another session to teach its statement? False once the
 * session's wait is over or on the expired offer (the module then counts the loss); on the
 * first wait of the session `counter` is counted.
 */
export function waitToLearn(st: Learner, act: ClientActions, now: number, waitMs: number, counter: string): boolean {
  if (act.expired) return false; // the engine offers it once more when the wait is over
  if (st.learnSince < 0) {
    st.learnSince = now;
    act.count(counter);
  }
  return now - st.learnSince < waitMs;
}

/** Holds the message for what is left of the session's wait (the engine re-offers it then, even on a quiet session). */
export function holdLearning(st: Learner, act: ClientActions, now: number, waitMs: number): void {
  act.hold(Math.max(0, st.learnSince + waitMs - now));
}
