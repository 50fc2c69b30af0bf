/**
 * A scripted driver for pure protocol modules: what the engine does with a module, without the
 * TCP parts. Client bytes are framed and offered in order; held messages are offered again after
 * target bytes, and by `tick(now)` once their hold limit passed (expired; held again: dropped as
 * 'holdExpired', like the engine); what would be sent to the target is collected as one byte string per send, so a
 * test asserts the exact bytes a module produced. Not the engine's own driver (that one maps
 * sequence numbers); a module that works here must also work there, which the engine's tests check.
 */
import type { ClientActions, ProtocolModule, SessionStart, TargetActions } from '../../../src/modules/api';

export interface DriverLog {
  /** Every byte string that would go to the target, in order (inserted, replaced, passed, sent). */
  sent: Buffer[];
  /** Messages dropped, with their reason ('' when none). */
  dropped: { msg: Buffer; reason: string }[];
  /** The reason the module ended the session, or null. */
  ended: string | null;
  counters: Record<string, number>;
}

export class ModuleDriver<S> {
  readonly st: S;
  readonly log: DriverLog = { sent: [], dropped: [], ended: null, counters: {} };
  private pending: Buffer = Buffer.alloc(0);
  private held: { msg: Buffer; until: number }[] = [];
  private unframed = false;

  constructor(
    readonly mod: ProtocolModule<S>,
    start: Partial<SessionStart> = {},
  ) {
    this.st = mod.startSession({
      origin: 'syn',
      clientIp: '198.18.0.10',
      clientPort: 40000,
      serverIp: '198.18.1.1',
      serverPort: 3306,
      targetIp: '198.18.2.1',
      targetPort: 3306,
      now: 0,
      ...start,
    });
  }

  /** Captured client bytes (any cut). */
  client(bytes: Buffer, now = 0): void {
    if (this.log.ended !== null) return;
    if (this.unframed) {
      this.log.sent.push(Buffer.from(bytes));
      return;
    }
    this.pending = Buffer.concat([this.pending, bytes]);
    for (;;) {
      if (this.held.length > 0) return; // order is kept: nothing passes a held message
      const n = this.mod.frameClient(this.st, this.pending, 0, this.pending.length);
      if (n < 0) {
        this.unframed = true;
        if (this.pending.length > 0) this.log.sent.push(this.pending);
        this.pending = Buffer.alloc(0);
        return;
      }
      if (n === 0 || n > this.pending.length) return;
      const msg = Buffer.from(this.pending.subarray(0, n));
      this.pending = this.pending.subarray(n);
      if (!this.offer(msg, now)) return;
    }
  }

  /**
   * The target's reply bytes; then held messages are offered again, and framing resumes.
   * `acked`: how many of the bytes sent so far the target had received (TargetActions.acked);
   * default all of them.
   */
  target(bytes: Buffer, missing = 0, now = 0, acked = this.sentBytes().length): void {
    if (this.log.ended !== null) return;
    this.mod.onTargetBytes(this.st, bytes, missing, this.targetActions(acked), now);
    this.retryHeld(now);
  }

  /** The online server's reply bytes; then held messages are offered again (as the engine does: a module may wait for production's reply). */
  online(bytes: Buffer, missing = 0, now = 0): void {
    if (this.log.ended !== null) return;
    this.mod.onOnlineBytes?.(this.st, bytes, missing, now);
    this.retryHeld(now);
  }

  /** All bytes sent so far, concatenated. */
  sentBytes(): Buffer {
    return Buffer.concat(this.log.sent);
  }

  /** The time is `now` (no bytes): held messages whose hold limit passed are offered again, expired. */
  tick(now: number): void {
    const h = this.held[0];
    if (h !== undefined && now >= h.until) this.retryHeld(now);
  }

  /** When the oldest held message's hold limit passes (Infinity: none). */
  holdDeadline(): number {
    return this.held[0]?.until ?? Infinity;
  }

  private retryHeld(now: number): void {
    while (this.held.length > 0 && this.log.ended === null) {
      const h = this.held.shift() as { msg: Buffer; until: number };
      if (!this.offer(h.msg, now, h.until)) return;
    }
    this.client(Buffer.alloc(0), now);
  }

  /** Offers one message; false when it was held (or the session ended). */
  private offer(msg: Buffer, now: number, until = -1): boolean {
    const front = until >= 0;
    const expired = front && now >= until;
    let holdMs = Infinity;
    let verdict: string | null = null;
    const inserted: Buffer[] = [];
    const terminal = (v: string): void => {
      if (verdict !== null) throw new Error(`module made two terminal calls: ${verdict} then ${v}`);
      verdict = v;
    };
    let replacement: Buffer | null = null;
    let reason = '';
    const act: ClientActions = {
      pass: () => terminal('pass'),
      replace: (b) => {
        terminal('replace');
        replacement = Buffer.from(b);
      },
      drop: (r) => {
        terminal('drop');
        reason = r ?? '';
      },
      hold: (ms) => {
        terminal('hold');
        holdMs = ms ?? this.mod.holdLimitMs ?? Infinity;
      },
      expired,
      end: (r) => {
        terminal('end');
        reason = r;
      },
      insert: (b) => {
        if (verdict !== null) throw new Error('insert after the terminal call');
        inserted.push(Buffer.from(b));
      },
      count: (c, n = 1) => this.bump(c, n),
    };
    this.mod.onClientMessage(this.st, msg, act, now);
    if (verdict === null) throw new Error('module made no terminal call for a client message');
    this.log.sent.push(...inserted);
    switch (verdict as string) {
      case 'pass':
        this.log.sent.push(msg);
        return true;
      case 'replace':
        this.log.sent.push(replacement as unknown as Buffer);
        return true;
      case 'drop':
        this.log.dropped.push({ msg, reason });
        return true;
      case 'hold':
        if (expired) {
          this.log.dropped.push({ msg, reason: 'holdExpired' });
          return true;
        }
        if (front) this.held.unshift({ msg, until: Math.min(until, now + holdMs) });
        else this.held.push({ msg, until: now + holdMs });
        return false;
      default:
        this.log.ended = reason;
        return false;
    }
  }

  private targetActions(acked: number): TargetActions {
    return {
      acked,
      send: (b) => {
        this.log.sent.push(Buffer.from(b));
      },
      end: (r) => {
        this.log.ended = r;
      },
      count: (c, n = 1) => this.bump(c, n),
    };
  }

  private bump(c: string, n: number): void {
    if (!(c in this.mod.counters)) throw new Error(`counter ${c} is not declared by module ${this.mod.name}`);
    this.log.counters[c] = (this.log.counters[c] ?? 0) + n;
  }
}
