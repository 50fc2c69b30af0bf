/**
 * An indexed binary min-heap of items keyed by their `deadline` (ms). Each item remembers its
 * position, so re-arming a session's timer is O(log n) with no allocation and no stale entries.
 */
export interface HeapItem {
  /** When the item is due (ms); Infinity = not armed. */
  deadline: number;
  /** Position in the heap, -1 when not in it. Owned by the heap. */
  heapIndex: number;
}

export class TimerHeap<T extends HeapItem> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  /** Earliest deadline, Infinity when empty. */
  peekDeadline(): number {
    const top = this.items[0];
    return top === undefined ? Infinity : top.deadline;
  }

  /** The earliest item, or undefined. */
  peek(): T | undefined {
    return this.items[0];
  }

  /** Sets `item.deadline` and places it; Infinity removes it. */
  set(item: T, deadline: number): void {
    if (deadline === Infinity) {
      item.deadline = Infinity;
      this.remove(item);
      return;
    }
    const old = item.deadline;
    item.deadline = deadline;
    if (item.heapIndex < 0) {
      item.heapIndex = this.items.length;
      this.items.push(item);
      this.up(item.heapIndex);
    } else if (deadline < old) {
      this.up(item.heapIndex);
    } else if (deadline > old) {
      this.down(item.heapIndex);
    }
  }

  /** Removes the item if present. */
  remove(item: T): void {
    const i = item.heapIndex;
    if (i < 0) return;
    const last = this.items.pop() as T;
    item.heapIndex = -1;
    if (i < this.items.length) {
      this.items[i] = last;
      last.heapIndex = i;
      this.up(i);
      this.down(last.heapIndex);
    }
  }

  private up(i: number): void {
    const items = this.items;
    const x = items[i] as T;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = items[p] as T;
      if (parent.deadline <= x.deadline) break;
      items[i] = parent;
      parent.heapIndex = i;
      i = p;
    }
    items[i] = x;
    x.heapIndex = i;
  }

  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    const x = items[i] as T;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      const r = c + 1;
      if (r < n && (items[r] as T).deadline < (items[c] as T).deadline) c = r;
      const child = items[c] as T;
      if (child.deadline >= x.deadline) break;
      items[i] = child;
      child.heapIndex = i;
      i = c;
    }
    items[i] = x;
    x.heapIndex = i;
  }
}
