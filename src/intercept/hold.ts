/**
 * Replies held while their CLIENT_ADD has not arrived yet (a SYN-ACK or RST can overtake the
 * registration: the SYN reaches the target over the raw path while CLIENT_ADD is still on
 * the channel). Fixed slots of pre-allocated record bytes; bounded count and age.
 */
import { clientKey } from './routes';

/** Bounded store of held reply records keyed by client (ip, port). */
export class HoldQueue {
  private readonly mem: Buffer;
  private readonly keys: Float64Array;
  private readonly exp: Float64Array;
  private readonly free: number[] = [];
  private readonly byKey = new Map<number, number[]>();
  private used = 0;

  /**
   * @param recordBytes bytes per held record (64 or 192)
   * @param maxHeld most replies held at once (default 1024)
   * @param holdMs how long a reply waits for its CLIENT_ADD (default 2000 ms)
   */
  constructor(
    readonly recordBytes: number,
    readonly maxHeld = 1024,
    readonly holdMs = 2000,
  ) {
    this.mem = Buffer.alloc(recordBytes * maxHeld);
    this.keys = new Float64Array(maxHeld);
    this.exp = new Float64Array(maxHeld);
    for (let i = maxHeld - 1; i >= 0; i--) this.free.push(i);
  }

  /** Replies held now. */
  get size(): number {
    return this.used;
  }

  /**
   * Reserves a slot for client (dstIp, dstPort) and returns the offset in `buffer` to write
   * the record at, or -1 when full.
   */
  reserve(dstIp: number, dstPort: number, now: number): number {
    const slot = this.free.pop();
    if (slot === undefined) return -1;
    const key = clientKey(dstIp, dstPort);
    this.keys[slot] = key;
    this.exp[slot] = now + this.holdMs;
    const list = this.byKey.get(key);
    if (list) list.push(slot);
    else this.byKey.set(key, [slot]);
    this.used++;
    return slot * this.recordBytes;
  }

  /** The memory the held records live in. */
  get buffer(): Buffer {
    return this.mem;
  }

  /** Hands every record held for `key` to `deliver(buf, off)` in arrival order and frees them; returns how many. */
  release(key: number, deliver: (buf: Buffer, off: number) => void): number {
    if (this.used === 0) return 0;
    const list = this.byKey.get(key);
    if (!list) return 0;
    this.byKey.delete(key);
    for (const slot of list) {
      deliver(this.mem, slot * this.recordBytes);
      this.free.push(slot);
      this.used--;
    }
    return list.length;
  }

  /** Drops records older than holdMs; returns how many. */
  expire(now: number): number {
    if (this.used === 0) return 0;
    let n = 0;
    for (const [key, list] of this.byKey) {
      let w = 0;
      for (const slot of list) {
        if ((this.exp[slot] as number) <= now) {
          this.free.push(slot);
          this.used--;
          n++;
        } else list[w++] = slot;
      }
      list.length = w;
      if (w === 0) this.byKey.delete(key);
    }
    return n;
  }
}
