/**
 * The protocol-module API: what a module sees of a replayed session and what it may do.
 *
 * A module is pure like the engine (src/core/): no clock (every call gets `now`, in ms of
 * engine time), no I/O, no timers, no unseeded randomness, no logging. Its per-session state is
 * the value `startSession` returns: the engine owns it, keeps it with the session and drops it
 * when the session ends. Anything a module keeps across sessions (stored logins, say) lives in
 * the module object its factory made, bounded in size and expired by the `now` it is given.
 *
 * The engine drives a module through a session like this (see doc/modules.md):
 *
 * 1. `startSession` when the session is created: from its captured SYN, or picked up mid-stream
 *    (no SYN captured: the connection was open before tcpcopy started, or its earlier replay
 *    ended while the client went on).
 * 2. The captured client bytes, in order, are cut into messages by `frameClient`; each complete
 *    message goes to `onClientMessage`, which must decide its fate through the `ClientActions`
 *    it is given (exactly one of pass / replace / drop / hold / end, after any number of
 *    insert and count calls). A held message is offered again after the next target bytes, and
 *    once more when its hold limit passes (hold(maxWaitMs) or holdLimitMs; `expired` is then
 *    true): held again after that, it is dropped as `holdExpired`, counted.
 * 3. The target's reply bytes (the payload intercept sent over channel v2, capped per reply by
 *    intercept's --payload-max) go to `onTargetBytes` in sequence order, with the number of
 *    bytes of that reply that were not delivered (the cap). The module frames them itself.
 * 4. With `wantsOnlineReplies`, the online server's own replies (captured server->client) go to
 *    `onOnlineBytes` the same way: what production answered, e.g. its prepared-statement ids.
 * 5. `endSession` when the session ends, whatever the outcome.
 *
 * Messages the module sends instead of, or before, captured ones change the length of the
 * client's byte stream: the engine builds the stream sent to the target in its own sequence
 * space (the target's ACKs, retransmissions and the release wait all work on it) and
 * retransmits the bytes it actually sent.
 */

/** How the engine came to know of a session. */
export type SessionOrigin =
  /** Its SYN was captured: the module sees the whole conversation from the start. */
  | 'syn'
  /**
   * Picked up mid-stream: its first captured segment carried data (the SYN was synthesized):
   * the connection was open before tcpcopy started, or its earlier replay ended (the module
   * then finds what it stored for that connection, e.g. its login).
   */
  | 'midstream';

/** What a module is told when a session starts. Addresses are dotted quads (IPv4) or IPv6 text. */
export interface SessionStart {
  readonly origin: SessionOrigin;
  /** The captured client (before -c rewriting). */
  readonly clientIp: string;
  readonly clientPort: number;
  /** The online server the client talked to. */
  readonly serverIp: string;
  readonly serverPort: number;
  /** Where the replay goes. */
  readonly targetIp: string;
  readonly targetPort: number;
  /** Engine time (ms). */
  readonly now: number;
}

/** The fate of one client message, decided in `onClientMessage` (one terminal call per offer). */
export interface ClientActions {
  /** Send the message as captured. Terminal. */
  pass(): void;
  /** Send `bytes` instead of the message (any length; the engine maps the sequence space). Terminal. */
  replace(bytes: Buffer): void;
  /**
   * Do not send the message. With a `reason` (one of the module's `reasons`), a request that
   * the message began is counted as lost with it; without, the message simply was not needed
   * (e.g. the client's answer to an AuthSwitchRequest the target did not send). Terminal.
   */
  drop(reason?: string): void;
  /**
   * Keep the message and offer it again after the next target bytes arrive (or, with
   * wantsOnlineReplies, the next online bytes: a module may wait for both replies). Terminal.
   * `maxWaitMs` (default the module's holdLimitMs; neither: no limit but the session's idle
   * timeout) bounds the wait (a later hold of the same message may shorten, never extend, it): when it passes the engine offers the message
   * once more with `expired` true, even if the session stayed quiet; a message held again then
   * is dropped with the engine's reason `holdExpired` (its requests counted lost with it).
   */
  hold(maxWaitMs?: number): void;
  /**
   * This offer comes because the message's hold limit passed (see hold): the module's last
   * chance to pass, replace, drop or end with its own reason; holding it again drops it as
   * `holdExpired`. False on every other offer.
   */
  readonly expired: boolean;
  /** End the session now with a named reason (one of the module's `reasons`): every request not yet replayed is lost with it. Terminal. */
  end(reason: string): void;
  /** Send `bytes` before the message (not a captured request; not counted). May be called several times before the terminal call. */
  insert(bytes: Buffer): void;
  /** Add `n` (default 1) to one of the module's `counters`. */
  count(counter: string, n?: number): void;
}

/** What a module may do when the target (or the online server) said something. */
export interface TargetActions {
  /**
   * How many bytes of the stream sent to the target (everything passed, replaced, inserted and
   * sent, counted from the session's first byte) the target had acknowledged in the reply
   * segment being delivered (at least: bytes drained from beyond a hole carry a later
   * segment's). A reply cannot answer a message the target had not received: a module that
   * lost its framing uses this to tell the reply to its latest message from the tail of an
   * earlier one. Undefined when not known (then assume everything sent was received).
   */
  readonly acked?: number;
  /** Send `bytes` to the target now, after what was already sent and before any held message (e.g. an AuthSwitchResponse). */
  send(bytes: Buffer): void;
  /** End the session now with a named reason (one of the module's `reasons`). */
  end(reason: string): void;
  /** Add `n` (default 1) to one of the module's `counters`. */
  count(counter: string, n?: number): void;
}

/** A protocol module; S is its per-session state. */
export interface ProtocolModule<S = unknown> {
  /** Short name, used in the report and metrics (`mysql`, `postgres`, `redis`, a user's own). */
  readonly name: string;
  /** Sessions ask intercept for the target's reply payloads (channel v2, CLIENT_ADD payload flag). */
  readonly wantsTargetPayload: boolean;
  /**
   * With wantsTargetPayload: the payload bytes per reply segment its sessions ask intercept for
   * (1..65535; channel v2 per-session caps, src/channel/caps.ts: rounded up to 512-byte steps,
   * honoured up to intercept's --payload-max ceiling by an intercept that takes per-session
   * caps). Absent or 0: intercept's --payload-max (default 1 KiB, enough for logins). Replies
   * longer than the cap arrive with `missing` bytes. Added for the comparison (issue 15),
   * which asks for 65535: whole replies.
   */
  readonly targetPayloadMax?: number;
  /** tcpcopy also captures the online server's replies (server->client) of the copied ports for this module. */
  readonly wantsOnlineReplies: boolean;
  /**
   * The protocol is pipelined: the server reads the next request while (or before) it answers
   * the previous one and answers in order on the connection (PostgreSQL, Redis). The engine then
   * sends each captured request as soon as the window allows instead of waiting for the
   * target's answer to the previous one (the release wait, as with -W), so a session keeps the
   * pace of a client that is faster than the round trip through intercept (each reply travels
   * target -> intercept -> channel -> tcpcopy before the next request may go: ~1-3 ms in the lab,
   * against ~0.2 ms between pgbench and its server). Held messages still wait for the target
   * (logins). Default false (optional field: added for issue 14; modules without it are unchanged).
   */
  readonly pipelined?: boolean;
  /**
   * Optional: the longest a held message waits (ms from its first hold) when hold() is called
   * without maxWaitMs. Absent: no limit (the session's idle timeout still ends a quiet session).
   */
  readonly holdLimitMs?: number;
  /** The loss reasons this module may name (drop / end), each with a one-line meaning for the report. */
  readonly reasons: Readonly<Record<string, string>>;
  /** The counters this module increments, each with a one-line meaning (status line, report, metrics). */
  readonly counters: Readonly<Record<string, string>>;

  /** A new session: returns its state (owned by the engine from now on). */
  startSession(start: SessionStart): S;
  /**
   * Length of the first complete client message in data[off, off + len), or 0 when more bytes
   * are needed. A module that cannot frame the stream any more returns -1: the rest of the
   * session's bytes are then passed through unframed (onClientMessage is not called again).
   */
  frameClient(st: S, data: Buffer, off: number, len: number): number;
  /** One complete client message, in captured order (a view: copy what you keep). */
  onClientMessage(st: S, msg: Buffer, act: ClientActions, now: number): void;
  /**
   * The target's reply bytes, in sequence order (a view: copy what you keep). `missing` bytes
   * of the same reply followed these but were not delivered (payload cap): the module's framing
   * skips them. Called with an empty `data` and `missing` > 0 for a reply sent without payload.
   */
  onTargetBytes(st: S, data: Buffer, missing: number, act: TargetActions, now: number): void;
  /**
   * The online server's reply bytes (only with wantsOnlineReplies), like onTargetBytes.
   * `acked`: how many captured client bytes (from the session's first) the online server had
   * acknowledged in its reply segment being delivered (the highest seen so far: bytes drained
   * from beyond a hole carry a later segment's); undefined when no segment carried an ACK. It
   * tells which captured message production was answering, whatever the module held (the
   * comparison's bytes mode cuts production's replies with it). Added for issue 15.
   */
  onOnlineBytes?(st: S, data: Buffer, missing: number, now: number, acked?: number): void;
  /**
   * Optional: has the target completely answered every client message that ended within the
   * first `sent` bytes of the stream sent to it (a module that follows the reply framing
   * knows)? The engine asks before it releases the next exchange: true lets it go at once,
   * instead of waiting until the target sent as many reply bytes as the online server did or
   * fell silent (replyQuietMs, 2 * SRTT), so replies of other sizes than production's do not
   * cost a silence each. False or absent: the usual wait.
   */
  answered?(st: S, sent: number): boolean;
  /**
   * Optional (issue 15, `--compare bytes`): the target's reply bytes of one exchange as the
   * comparison should see them, given production's reply to the same client bytes. A module
   * rewrites what differs by nature and what it knows to be equivalent, nothing else: the MySQL
   * module puts production's statement id into the target's PREPARE_OK when it mapped the one
   * to the other. Absent: compared as received.
   */
  comparableReply?(st: S, online: Buffer, target: Buffer): Buffer;
  /** The session ended (any outcome). */
  endSession?(st: S, now: number): void;
}

/** Options given to a module on the command line, by name (repeatable options keep every value). */
export type ModuleOptions = Readonly<Record<string, readonly string[]>>;

/**
 * What `--module mysql` or `--module ./file.js` loads: a factory from the module's options to a
 * module. A user's file exports it as `module.exports = { createModule }` (or `export function
 * createModule`). Throwing an Error with a clear message is how a factory refuses bad options.
 */
export type ModuleFactory = (opts: ModuleOptions) => ProtocolModule;

/** One command-line option of a built-in module (`--mysql-user`, say), added to tcpcopy's option table. */
export interface ModuleOptionSpec {
  /** The long option without its dashes, e.g. 'mysql-user'; also its key in ModuleOptions. */
  readonly name: string;
  /** The value's shape for the help text, e.g. 'USER:PASSWORD'. */
  readonly arg: string;
  /** The option may be given several times (every value is kept, in order). */
  readonly repeatable: boolean;
  /**
   * The value is a file path: the runner (not the module, which does no I/O) reads the file and
   * the module receives its text under the same key; an unreadable file is an error naming the option.
   */
  readonly readsFile?: boolean;
  /** One line for the help and doc/usage.md: meaning, unit, default, the original's equivalent. */
  readonly doc: string;
}

/**
 * A built-in module as the registry knows it: `src/modules/<name>/index.ts` exports
 * `definition: ModuleDefinition`. Its options are accepted only together with `--module <name>`.
 * A user's module file (`--module ./file.js`) exports `createModule` and gets its options from
 * `--module-opt KEY=VALUE` (repeatable).
 */
export interface ModuleDefinition {
  readonly name: string;
  /** One line for the help. */
  readonly summary: string;
  readonly options: readonly ModuleOptionSpec[];
  readonly createModule: ModuleFactory;
}
