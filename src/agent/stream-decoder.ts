/**
 * The replayer's side of one input stream, fed chunk by chunk: it tells an agent stream
 * ("TCAG" hello) from a plain pcap or pcapng stream (tcpdump -U -w - | nc) by the first four
 * bytes, runs the channel v2 handshake when the replayer has a shared secret, and hands out
 * the packets, the agent's STATUS frames and a doctor's query. Pure: bytes in, events out
 * (no sockets, no clock); never throws on hostile bytes: a stream it cannot follow ends with
 * `fail(reason)`.
 */
import { clientProof, macEqual, serverMsg, serverProof, V2_CHALLENGE, V2_NO, V2_OK } from '../channel/v2';
import { PCAP_FILE_HEADER_LEN, PcapParser, parsePcapHeader, pcapMagicInfo } from '../io/capture-file/pcap';
import { PCAPNG_SHB, PcapngParser } from '../io/capture-file/pcapng';
import type { CaptureInterface, FormatParser, ParseContext } from '../io/capture-file/types';
import {
  AGENT_HELLO_BYTES,
  AGENT_MAGIC,
  type AgentHello,
  type AgentStatus,
  decodeHello,
  decodeStatus,
  FRAME_HEADER_BYTES,
  FRAME_PACKETS,
  FRAME_STATUS,
  HELLO_AUTH,
  HELLO_QUERY,
  MAX_FRAME_BODY,
  STATUS_BODY_BYTES,
  walkChain,
} from './stream-format';

/** Bytes of the agent's v2 response: nonceC + proof. */
const AUTH_RESPONSE_BYTES = 64;
/** Largest buffer a stream may need: one frame (or one pcap record / pcapng block). */
const MAX_BUFFER = MAX_FRAME_BODY + FRAME_HEADER_BYTES;

/** What a stream turned out to be. */
export type StreamKind = 'unknown' | 'agent' | 'pcap' | 'pcapng';

/** What the decoder tells its owner. */
export interface StreamEvents {
  /** Bytes to send back to the peer (the v2 handshake). */
  write(b: Buffer): void;
  /** The stream is identified (and authenticated, with a secret): an agent's hello, or null for pcap/pcapng. */
  identified(kind: StreamKind, hello: AgentHello | null): void;
  /** One captured frame, valid during the call. */
  packet(linkType: number, buf: Buffer, off: number, capLen: number, origLen: number, tsMs: number): void;
  /** A batch of packets (a frame, or a chunk of a pcap stream) ended. */
  batchEnd(): void;
  /** The agent's STATUS. */
  status(s: AgentStatus): void;
  /** A doctor's query (hello flag QUERY, authenticated): answer with an INFO frame and close. */
  query(): void;
  /** The stream cannot go on: close it. */
  fail(reason: string): void;
}

/** Settings of a StreamDecoder. */
export interface StreamDecoderOptions {
  /** The shared secret (`--secret-file`), or null: agents must (or must not) authenticate; pcap streams need null. */
  secret: Buffer | null;
  /** 32 random bytes (the challenge nonce); injectable for tests. */
  nonce: () => Buffer;
  /** Names the stream in messages, e.g. "198.18.0.1:40000". */
  name: string;
}

/** Counters of one stream. */
export interface StreamDecoderStats {
  /** PACKETS frames (agent) or read chunks with records (pcap). */
  frames: number;
  /** Packets handed out. */
  packets: number;
  /** Packets that were announced but could not be read (damaged chain, pcap damage). */
  damaged: number;
  /** Frames of an unknown type (skipped). */
  unknownFrames: number;
}

type State = 'detect' | 'hello' | 'auth' | 'frames' | 'pcap-header' | 'records' | 'failed';

/** One input stream's decoder; see the module comment. */
export class StreamDecoder implements ParseContext {
  readonly stats: StreamDecoderStats = { frames: 0, packets: 0, damaged: 0, unknownFrames: 0 };
  kind: StreamKind = 'unknown';
  /** The agent's hello (agent streams). */
  hello: AgentHello | null = null;
  readonly ifaces: CaptureInterface[] = [];
  private state: State = 'detect';
  private buf = Buffer.allocUnsafe(64 * 1024);
  private pos = 0;
  private end = 0;
  private nonceS: Buffer | null = null;
  private parser: FormatParser | null = null;
  private consumed = 0;
  private readonly rx: { packet: StreamEvents['packet'] };

  constructor(
    private readonly opts: StreamDecoderOptions,
    private readonly ev: StreamEvents,
  ) {
    this.rx = {
      packet: (link, b, off, cap, orig, ts) => {
        this.stats.packets++;
        ev.packet(link, b, off, cap, orig, ts);
      },
    };
  }

  /** ParseContext: the stream's name. */
  get path(): string {
    return this.opts.name;
  }

  /** ParseContext: a damaged pcap record (skipped). */
  damaged(): void {
    this.stats.damaged++;
  }

  /** ParseContext: the pcap stream is corrupt: stop. */
  corrupt(offset: number, reason: string): void {
    this.fail(`pcap stream corrupt at byte ${offset}: ${reason}`);
  }

  /** True once the stream failed (ignore further bytes). */
  get failed(): boolean {
    return this.state === 'failed';
  }

  /** Feeds bytes from the peer. */
  feed(chunk: Buffer): void {
    if (this.state === 'failed') return;
    if (!this.append(chunk)) return;
    const before = this.stats.packets;
    this.parse();
    if (this.stats.packets > before && !this.failed && this.kind !== 'agent') this.ev.batchEnd();
  }

  private append(chunk: Buffer): boolean {
    if (this.end + chunk.length > this.buf.length) {
      if (this.pos > 0) {
        this.buf.copy(this.buf, 0, this.pos, this.end);
        this.consumed += this.pos;
        this.end -= this.pos;
        this.pos = 0;
      }
      const need = this.end + chunk.length;
      if (need > this.buf.length) {
        if (need > MAX_BUFFER + chunk.length) {
          this.fail(`more than ${MAX_BUFFER} bytes pending without a complete frame`);
          return false;
        }
        const bigger = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
        this.buf.copy(bigger, 0, 0, this.end);
        this.buf = bigger;
      }
    }
    chunk.copy(this.buf, this.end);
    this.end += chunk.length;
    return true;
  }

  private fail(reason: string): void {
    if (this.state === 'failed') return;
    this.state = 'failed';
    this.ev.fail(reason);
  }

  private parse(): void {
    for (;;) {
      const avail = this.end - this.pos;
      switch (this.state) {
        case 'failed':
          return;
        case 'detect': {
          if (avail < 4) return;
          this.detect();
          break;
        }
        case 'hello': {
          if (avail < AGENT_HELLO_BYTES) return;
          this.onHello();
          break;
        }
        case 'auth': {
          if (avail < AUTH_RESPONSE_BYTES) return;
          this.onAuth();
          break;
        }
        case 'frames': {
          if (avail < FRAME_HEADER_BYTES) return;
          const len = this.buf.readUInt32BE(this.pos + 4);
          if (len > MAX_FRAME_BODY) {
            this.fail(`frame of ${len} bytes (at most ${MAX_FRAME_BODY})`);
            return;
          }
          if (avail < FRAME_HEADER_BYTES + len) return;
          this.onFrame(len);
          this.pos += FRAME_HEADER_BYTES + len;
          break;
        }
        case 'pcap-header': {
          if (avail < PCAP_FILE_HEADER_LEN) return;
          const hdr = parsePcapHeader(this.buf.subarray(this.pos, this.pos + PCAP_FILE_HEADER_LEN));
          this.parser = new PcapParser(this, hdr);
          this.pos += PCAP_FILE_HEADER_LEN;
          this.state = 'records';
          break;
        }
        case 'records': {
          const parser = this.parser as FormatParser;
          if (avail === 0) return;
          const r = parser.step(this.buf, this.pos, avail, this.consumed + this.pos, this.rx);
          if (r === 0) return; // corrupt: failed already
          if (r < 0) {
            if (-r > MAX_BUFFER) this.fail(`pcap record of ${-r} bytes`);
            return;
          }
          this.pos += r;
          break;
        }
      }
    }
  }

  private detect(): void {
    const b = this.buf;
    const p = this.pos;
    const refuse = (what: string): void =>
      this.fail(
        `${what} refused: this replayer has --secret-file, so only authenticated agents may send (tcpcopy agent --secret-file)`,
      );
    if (b.compare(AGENT_MAGIC, 0, 4, p, p + 4) === 0) {
      this.state = 'hello';
      return;
    }
    const magic = b.readUInt32LE(p);
    if (pcapMagicInfo(magic) !== null) {
      if (this.opts.secret !== null) return refuse('a plain pcap stream');
      this.kind = 'pcap';
      this.state = 'pcap-header';
      this.ev.identified('pcap', null);
      return;
    }
    if (magic === PCAPNG_SHB) {
      if (this.opts.secret !== null) return refuse('a plain pcapng stream');
      this.kind = 'pcapng';
      this.parser = new PcapngParser(this);
      this.state = 'records';
      this.ev.identified('pcapng', null);
      return;
    }
    this.fail(
      `not an agent stream, pcap or pcapng (first bytes ${b.subarray(p, p + 4).toString('hex')}); send with tcpcopy agent or tcpdump -U -w -`,
    );
  }

  private onHello(): void {
    const h = decodeHello(this.buf, this.pos);
    this.pos += AGENT_HELLO_BYTES;
    if (typeof h === 'string') return this.fail(h);
    this.hello = h;
    this.kind = 'agent';
    const secret = this.opts.secret;
    const wantsAuth = (h.flags & HELLO_AUTH) !== 0;
    if (wantsAuth && secret === null) {
      this.ev.write(serverMsg(V2_NO, null));
      return this.fail('the agent uses --secret-file but this replayer has none (give both the same file)');
    }
    if (!wantsAuth && secret !== null) {
      this.ev.write(serverMsg(V2_NO, null));
      return this.fail('the agent has no --secret-file but this replayer requires one (give both the same file)');
    }
    if (wantsAuth) {
      this.nonceS = this.opts.nonce();
      this.ev.write(serverMsg(V2_CHALLENGE, this.nonceS));
      this.state = 'auth';
      return;
    }
    this.accepted();
  }

  private onAuth(): void {
    const secret = this.opts.secret as Buffer;
    const nonceS = this.nonceS as Buffer;
    const nonceC = Buffer.from(this.buf.subarray(this.pos, this.pos + 32));
    const proof = Buffer.from(this.buf.subarray(this.pos + 32, this.pos + AUTH_RESPONSE_BYTES));
    this.pos += AUTH_RESPONSE_BYTES;
    if (!macEqual(proof, clientProof(secret, nonceS, nonceC))) {
      this.ev.write(serverMsg(V2_NO, null));
      return this.fail('refused: wrong shared secret (the agent --secret-file differs)');
    }
    this.ev.write(serverMsg(V2_OK, serverProof(secret, nonceS, nonceC)));
    this.accepted();
  }

  private accepted(): void {
    const h = this.hello as AgentHello;
    this.state = 'frames';
    this.ev.identified('agent', h);
    if ((h.flags & HELLO_QUERY) !== 0) this.ev.query();
  }

  private onFrame(len: number): void {
    const b = this.buf;
    const p = this.pos;
    const type = b[p] as number;
    const body = p + FRAME_HEADER_BYTES;
    if (type === FRAME_PACKETS) {
      const count = b.readUInt32BE(p + 8);
      const link = b.readUInt16BE(p + 2);
      const le = this.hello?.littleEndian ?? true;
      const n = walkChain(b, body, len, count, link, le, this.rx);
      this.stats.frames++;
      if (n < count) this.stats.damaged += count - n;
      if (n > 0) this.ev.batchEnd();
    } else if (type === FRAME_STATUS && len >= STATUS_BODY_BYTES) {
      this.ev.status(decodeStatus(b, body));
    } else {
      this.stats.unknownFrames++;
    }
  }
}
