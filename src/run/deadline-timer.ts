import type { Clock, TimerHandle } from '../io/types';

/**
 * One Node timer kept at the engine's next deadline. It moves earlier at once, later only when
 * the deadline moved by more than `slackMs` (a delayed ACK that a request carried, an RTO that
 * the target's ACK cancelled), and goes when there is no deadline: a timer firing with nothing
 * due is a wake-up for nothing (30-50 µs of CPU on a VM; 33 a second at 2000 keep-alive
 * requests/s before it followed the deadline).
 *
 * A due timer calls `onFire` in the check phase of its event-loop turn (setImmediate), after the
 * poll phase has read what the sockets hold: Node runs timers *before* polling, so after a stall
 * (a long sendmmsg, a GC pause) the deadline would otherwise be judged on stale input. The
 * engine's reply-silence release is such a deadline: an 84 ms stall during a 10 MB download
 * fired it with the target's segments unread in the channel socket, the client's FIN went out
 * early and nginx ended the response at 300 KB (the robust-large e2e test, 2 runs in 8).
 */
export class DeadlineTimer {
  private timer: TimerHandle | null = null;
  private at = Infinity;
  private readonly fire = (): void => {
    this.timer = null;
    this.at = Infinity;
    this.clock.setImmediate(this.onFire);
  };

  /**
   * @param onFire called when the deadline is reached (it usually polls the engine and re-arms)
   * @param clock the runner's clock (now and timers)
   * @param slackMs how much later the deadline may be than the armed timer before it is moved
   */
  constructor(
    private readonly onFire: () => void,
    private readonly clock: Clock,
    private readonly slackMs = 2,
  ) {}

  /** Keeps the timer at `at` (engine time, ms; Infinity: no deadline). */
  arm(at: number): void {
    if (at === Infinity) {
      this.cancel();
      return;
    }
    if (this.timer !== null && at >= this.at && at - this.at < this.slackMs) return;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.at = at;
    this.timer = this.clock.setTimeout(this.fire, Math.max(0, at - this.clock.now()));
  }

  /** Stops the timer. */
  cancel(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.at = Infinity;
  }
}
