/**
 * NFQUEUE packet source for intercept on the target (`intercept --nfqueue [NUM]`): the target's
 * replies are queued by an iptables rule (`iptables -I OUTPUT -p tcp --sport 8080 -j NFQUEUE`),
 * read here over netfilter's netlink interface, handed to the intercept (headers to tcpcopy),
 * and dropped by verdict (NF_DROP) unless their destination is in the pass list (NF_ACCEPT).
 *
 * Why JS over a tiny native transport (native/nfq.c: socket, uv_poll, recv, send): the
 * nfnetlink layout (nfq-wire.ts) is then pure and unit-tested, and per wake-up the only native
 * crossings are one recv per queued packet plus one send of all verdicts; verdicts of
 * consecutive packets with the same decision are folded into one NFQNL_MSG_VERDICT_BATCH.
 */
import * as fs from 'node:fs';
import { TcpcopyError } from '../core/errors';
import { LINKTYPE_RAW } from '../core/wire/link';
import { internIpv6, isIpv6 } from '../core/wire/ipv6';
import { loadNative, nativeErrorCode, type NativeHandle } from '../io/native';
import type { PacketReceiver, PacketSource, SourceStats } from '../io/types';
import {
  NF_ACCEPT,
  NF_DROP,
  NfqParser,
  VERDICT_MSG_BYTES,
  configMessages,
  nfqIdGap,
  parseNfqProc,
  unbindMessage,
  writeVerdict,
} from './nfq-wire';

/** The addon's NFQUEUE functions (native/nfq.c). Return values < 0 are -errno. */
interface NfqNative {
  nfqOpen(rcvbufBytes: number): NativeHandle;
  nfqStart(h: NativeHandle, onReadable: () => void): void;
  nfqRecv(h: NativeHandle, buf: Buffer): number;
  nfqSend(h: NativeHandle, buf: Buffer, len: number): number;
  nfqClose(h: NativeHandle): void;
  errnoText(errno: number): string;
}

/** Options of an NfqueueSource. */
export interface NfqueueOptions {
  /** Queue number, `--nfqueue [NUM]`; default 0 (matches `-j NFQUEUE` without --queue-num). */
  queue: number;
  /** Kernel queue length in packets, `-q` (NFQA_CFG_QUEUE_MAXLEN); 0 = kernel default (1024). */
  maxLen: number;
  /** Bytes of each packet copied to us (NFQA_CFG_PARAMS copy range); default 128 (headers). */
  copyRange?: number;
  /**
   * Destination addresses whose replies are accepted, `-x ip,...`: IPv4 values (u32) or IPv6 ids
   * (core/wire/ipv6.ts); others are dropped.
   */
  pass: readonly number[];
  /** Socket receive buffer in bytes; default 8 MiB. */
  rcvbufBytes?: number;
}

/** Counters of the NFQUEUE source. */
export interface NfqueueStats extends SourceStats {
  /** Packets given NF_ACCEPT (pass list). */
  accepted: number;
  /** Packets given NF_DROP (replies kept from the network). */
  droppedByVerdict: number;
  /** Verdict datagrams sent. */
  verdictSends: number;
  /** Verdict sends that failed (the packets then wait for the queue's own handling). */
  verdictErrors: number;
  /** Netlink messages that did not parse. */
  malformed: number;
  /** recv() reported ENOBUFS (the kernel could not deliver messages to our socket). */
  enobufs: number;
  /** The kernel's count of packets dropped because the queue was full (`-q`), from /proc/net/netfilter/nfnetlink_queue. */
  kernelQueueDropped: number;
  /** The kernel's count of packets it could not hand to our socket (buffer full), from the same file. */
  kernelUserDropped: number;
  /** The kernel's last packet id on the queue (id_sequence, same file): packets it queued to us since the bind. */
  kernelIdSequence: number;
  /** Packets missing from the id sequence as we read it (numbered by the kernel, never received; nfqIdGap). */
  idGaps: number;
  /** recv() errors other than ENOBUFS (the read of that wake-up stopped there). */
  recvErrors: number;
  /** Queued packets without a payload attribute (given their verdict, nothing to route). */
  noPayload: number;
  /** Packets stamped with the kernel's NFQA_TIMESTAMP (plausible wall-clock time, see NFQ_STAMP_WINDOW_MS). */
  kernelStamps: number;
  /** Packets stamped at read time: no NFQA_TIMESTAMP (the usual case at OUTPUT) or an implausible one. */
  readStamps: number;
}

/**
 * A kernel NFQA_TIMESTAMP is used as the reply's capture time only within this many ms before
 * the read (and never after it): at OUTPUT the skb's tstamp is TCP's departure time on
 * CLOCK_MONOTONIC when set at all (doc/usage.md "NFQUEUE mode"), which is far from the epoch.
 */
export const NFQ_STAMP_WINDOW_MS = 1000;

/** The kernel's per-queue counters (network namespace of this process). */
const NFQ_PROC = '/proc/net/netfilter/nfnetlink_queue';

/** Reads an NFQUEUE, hands each packet to the receiver and gives it its verdict. */
export class NfqueueSource implements PacketSource {
  private nat: NfqNative | null = null;
  private h: NativeHandle | null = null;
  private rx: PacketReceiver | null = null;
  private readonly rbuf = Buffer.alloc(65536 + 4096);
  private readonly vbuf = Buffer.alloc(VERDICT_MSG_BYTES * 256);
  private vlen = 0;
  private readonly parser = new NfqParser();
  private readonly pass: Set<number>;
  private seq = 1;
  /** Pending run of equal verdicts: highest id and its verdict (-1 = none). */
  private runId = 0;
  private runVerdict = -1;
  private runCount = 0;
  private acks: { waiting: number; error: number } = { waiting: 0, error: 0 };
  private readonly st: NfqueueStats = {
    received: 0,
    dropped: 0,
    accepted: 0,
    droppedByVerdict: 0,
    verdictSends: 0,
    verdictErrors: 0,
    malformed: 0,
    enobufs: 0,
    kernelQueueDropped: 0,
    kernelUserDropped: 0,
    kernelIdSequence: 0,
    idGaps: 0,
    recvErrors: 0,
    noPayload: 0,
    kernelStamps: 0,
    readStamps: 0,
  };
  /** Id of the last packet read (0: none yet). */
  private lastId = 0;
  /** Capture time (ms since the epoch) of the packet being delivered (writeStamp). */
  private curAt = 0;

  constructor(private readonly opts: NfqueueOptions) {
    this.pass = new Set(opts.pass.map((a) => (isIpv6(a) ? a : a >>> 0)));
  }

  /** Binds the queue and starts reading. Rejects with ERR_NFQUEUE naming the cause and the fix. */
  async start(rx: PacketReceiver): Promise<void> {
    this.rx = rx;
    const nat = loadNative() as unknown as NfqNative;
    if (typeof nat.nfqOpen !== 'function') {
      throw new TcpcopyError(
        'ERR_NATIVE_MISSING',
        'the native addon has no NFQUEUE support; rebuild it with `npm run build:native`',
      );
    }
    this.nat = nat;
    try {
      this.h = nat.nfqOpen(this.opts.rcvbufBytes ?? 8 << 20);
    } catch (e) {
      const code = nativeErrorCode(e);
      throw new TcpcopyError(
        'ERR_NFQUEUE',
        `--nfqueue: cannot open a netfilter netlink socket (${code || (e as Error).message}); fix: run as root (CAP_NET_ADMIN) on a kernel with nfnetlink_queue (modprobe nfnetlink_queue)`,
        { errno: code },
      );
    }
    const h = this.h;
    nat.nfqStart(h, () => this.onReadable());
    const msgs = configMessages(this.opts.queue, this.opts.copyRange ?? 128, this.opts.maxLen, this.seq);
    this.seq += msgs.length;
    this.acks = { waiting: msgs.length, error: 0 };
    for (const m of msgs) nat.nfqSend(h, m, m.length);
    const deadline = Date.now() + 2000;
    while (this.acks.waiting > 0 && this.acks.error === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 5));
    if (this.acks.error !== 0 || this.acks.waiting > 0) {
      const why = this.acks.error !== 0 ? nat.errnoText(this.acks.error) : 'no answer from the kernel';
      await this.stop();
      const fix =
        this.acks.error === 16 /* EBUSY */
          ? 'another process (another intercept?) is bound to that queue: stop it or use another --nfqueue NUM'
          : 'check that nfnetlink_queue is available (modprobe nfnetlink_queue) and that you are root';
      throw new TcpcopyError(
        'ERR_NFQUEUE',
        `--nfqueue ${this.opts.queue}: cannot bind the queue (${why}); fix: ${fix}`,
        { queue: this.opts.queue },
      );
    }
  }

  private onReadable(): void {
    const nat = this.nat;
    const h = this.h;
    const rx = this.rx;
    if (nat === null || h === null || rx === null) return;
    const buf = this.rbuf;
    const p = this.parser;
    let any = false;
    for (let i = 0; i < 4096; i++) {
      const n = nat.nfqRecv(h, buf);
      if (n === 0) break;
      if (n < 0) {
        if (n === -105 /* ENOBUFS */) {
          this.st.enobufs++;
          continue;
        }
        this.st.recvErrors++;
        break;
      }
      p.reset(buf, n);
      for (let m = p.next(); m !== null; m = p.next()) {
        if (m.kind === 'error') {
          if (this.acks.waiting > 0) {
            if (m.errno !== 0) this.acks.error = m.errno;
            this.acks.waiting--;
          }
          continue;
        }
        if (m.kind !== 'packet') continue;
        any = true;
        this.st.received++;
        this.st.idGaps += nfqIdGap(this.lastId, m.id);
        this.lastId = m.id;
        let verdict = NF_DROP;
        if (this.pass.size > 0 && this.passes(buf, m.payloadOff, m.payloadLen)) verdict = NF_ACCEPT;
        if (m.payloadLen > 0) {
          const now = Date.now();
          let at = now;
          if (m.tsMs <= now && m.tsMs > now - NFQ_STAMP_WINDOW_MS) {
            at = m.tsMs;
            this.st.kernelStamps++;
          } else this.st.readStamps++;
          this.curAt = at;
          rx.packet(LINKTYPE_RAW, buf, m.payloadOff, m.payloadLen, m.payloadLen, at);
        } else this.st.noPayload++;
        this.verdict(m.id, verdict);
      }
    }
    this.st.malformed = p.malformed;
    this.endRun();
    this.sendVerdicts();
    if (any) rx.batchEnd(Date.now());
  }

  /**
   * The capture time of the packet being delivered (call it inside rx.packet) as a channel v2
   * stamp (u32 seconds, u32 nanoseconds at `out[off .. off+8)`): the kernel's NFQA_TIMESTAMP
   * when it gave a plausible one, else the time the packet was read.
   */
  writeStamp(out: Buffer, off: number): void {
    const ms = this.curAt;
    const sec = Math.floor(ms / 1000);
    out.writeUInt32BE(sec >>> 0, off);
    out.writeUInt32BE(Math.min(999_999_999, Math.round((ms - sec * 1000) * 1e6)) >>> 0, off + 4);
  }

  /** Whether the IPv4 or IPv6 packet at `buf[off .. off+len)` goes to an address of the pass list. */
  private passes(buf: Buffer, off: number, len: number): boolean {
    if (len >= 40 && (buf[off] as number) >>> 4 === 6) {
      const dst = internIpv6(buf, off + 24);
      return dst >= 0 && this.pass.has(dst);
    }
    return len >= 20 && this.pass.has(buf.readUInt32BE(off + 16));
  }

  /** Adds packet `id`'s verdict to the current run (same verdicts fold into one batch verdict). */
  private verdict(id: number, verdict: number): void {
    if (verdict === NF_ACCEPT) this.st.accepted++;
    else this.st.droppedByVerdict++;
    if (this.runVerdict !== verdict) this.endRun();
    this.runVerdict = verdict;
    this.runId = id;
    this.runCount++;
  }

  private endRun(): void {
    if (this.runVerdict < 0) return;
    if (this.vlen + VERDICT_MSG_BYTES > this.vbuf.length) this.sendVerdicts();
    this.vlen = writeVerdict(
      this.vbuf,
      this.vlen,
      this.opts.queue,
      this.runId,
      this.runVerdict,
      this.runCount > 1,
      this.seq++,
    );
    this.runVerdict = -1;
    this.runCount = 0;
  }

  private sendVerdicts(): void {
    if (this.vlen === 0 || this.nat === null || this.h === null) return;
    const n = this.nat.nfqSend(this.h, this.vbuf, this.vlen);
    this.vlen = 0;
    if (n < 0) this.st.verdictErrors++;
    else this.st.verdictSends++;
  }

  /** Reads the kernel's drop counters of our queue (they vanish once the queue is unbound). */
  private readKernelCounters(): void {
    if (this.h === null) return;
    let text: string;
    try {
      text = fs.readFileSync(NFQ_PROC, 'utf8');
    } catch {
      return;
    }
    const k = parseNfqProc(text, this.opts.queue);
    if (k === null) return;
    this.st.kernelQueueDropped = k.queueDropped;
    this.st.kernelUserDropped = k.userDropped;
    this.st.kernelIdSequence = k.idSequence;
  }

  /** Unbinds the queue and closes the socket. Idempotent. */
  stop(): Promise<void> {
    const nat = this.nat;
    const h = this.h;
    if (nat !== null && h !== null) {
      this.readKernelCounters();
      this.endRun();
      this.sendVerdicts();
      const u = unbindMessage(this.opts.queue, this.seq++);
      nat.nfqSend(h, u, u.length);
      nat.nfqClose(h);
    }
    this.h = null;
    return Promise.resolve();
  }

  /**
   * A snapshot of the counters. `dropped` is what the kernel lost before we could read it: its
   * queue-full drops plus the packets it numbered but could not deliver (its socket-full count,
   * or the gaps we saw in the id sequence when that is more), or, when the proc file cannot be
   * read, the larger of the ENOBUFS count and the id gaps.
   */
  stats(): NfqueueStats {
    this.readKernelCounters();
    const k = this.st.kernelQueueDropped + Math.max(this.st.kernelUserDropped, this.st.idGaps);
    return { ...this.st, dropped: k > 0 ? k : Math.max(this.st.enobufs, this.st.idGaps) };
  }
}
