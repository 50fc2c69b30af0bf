/**
 * Cached DataViews over the ArrayBuffers behind Buffers, for the hot paths that read or write
 * 32-bit big-endian words (checksums, IPv6 addresses): DataView.getUint32/setUint32 measured
 * about 10x faster than Buffer#readUInt32BE and 3-4x faster than assembling words from bytes
 * (Node 20, see bench/wire-checksum.ts).
 *
 * A view covers the whole ArrayBuffer, so an index is `buf.byteOffset + off` and nothing stops
 * a read or write past the end of `buf`: callers check `off + n <= buf.length` first.
 *
 * No allocation once a buffer has been seen: the last few Buffers used are recognised by
 * identity (the replay path alternates between a capture buffer, the send scratch buffer and
 * the channel's read buffer), then by ArrayBuffer through a WeakMap. (So up to SLOTS Buffers
 * stay referenced after their last use, until other Buffers replace them.)
 */

/** Buffers recognised by identity, and their views; a miss replaces them in turn. */
const SLOTS = 4;
const none = new DataView(new ArrayBuffer(0));
const bufs: (Buffer | null)[] = [null, null, null, null];
const slotViews: DataView[] = [none, none, none, none];
let nextSlot = 0;
const byArrayBuffer = new WeakMap<ArrayBufferLike, DataView>();

/** The Buffer of the last call and its view: a run of calls on one Buffer costs one comparison. */
let lastBuf: Buffer | null = null;
let lastView: DataView = none;

/** A DataView over the whole ArrayBuffer of `buf` (index it with `buf.byteOffset + off`). */
export function viewOf(buf: Buffer): DataView {
  if (buf === lastBuf) return lastView;
  return switchTo(buf);
}

function switchTo(buf: Buffer): DataView {
  let v: DataView | undefined;
  for (let i = 0; i < SLOTS && v === undefined; i++) if (bufs[i] === buf) v = slotViews[i];
  if (v === undefined) {
    // reading `buf.buffer` calls into C++: done only for a Buffer not among the last few
    const ab = buf.buffer;
    v = byArrayBuffer.get(ab);
    if (v === undefined) {
      v = new DataView(ab);
      byArrayBuffer.set(ab, v);
    }
    bufs[nextSlot] = buf;
    slotViews[nextSlot] = v;
    nextSlot = (nextSlot + 1) % SLOTS;
  }
  lastBuf = buf;
  lastView = v;
  return v;
}
