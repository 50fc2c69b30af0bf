/**
 * The replayer's network input (`tcpcopy -i tcp://[HOST:]PORT`, `-i -`): a TCP server that
 * accepts any number of capture agents (tcpcopy agent) and plain pcap/pcapng streams
 * (`tcpdump -U -w - | nc HOST PORT`), or standard input. Each source gets a slot: the replay
 * runs its connections as its own port variant (as -f does for several tcpcopy instances), so
 * client ports of two production hosts never collide on the target. An agent keeps its slot
 * across reconnections (by its id). Packets are handed on as they arrive: the replay is paced
 * by the live clock, not by the capture timestamps.
 */
import * as net from 'node:net';
import { randomBytes } from 'node:crypto';
import { TcpcopyError } from '../core/errors';
import { encodeInfo, HELLO_QUERY } from '../agent/stream-format';
import { StreamDecoder, type StreamKind } from '../agent/stream-decoder';
import type { PacketReceiver, PacketSource, SourceStats } from './types';

/** Where the stream input listens or reads. */
export type StreamInputSpec =
  { readonly kind: 'listen'; readonly host: string; readonly port: number } | { readonly kind: 'stdin' };

/** A PacketReceiver that is told which source (slot) each packet comes from. */
export interface StreamReceiver extends PacketReceiver {
  /** As PacketReceiver.packet; `slot` = the source's slot (its replay variant). */
  packet(
    linkType: number,
    buf: Buffer,
    off: number,
    capLen: number,
    origLen: number,
    tsMs: number,
    slot?: number,
  ): void;
}

/** What the replayer knows of one source (agent or pcap stream), for the report and the doctor. */
export interface StreamSourceInfo {
  /** Its slot (the replay's port variant: 0 keeps the original client ports). */
  slot: number;
  /** 'agent', 'pcap' or 'pcapng'. */
  kind: StreamKind;
  /** The agent's name, or the peer address of a pcap stream. */
  name: string;
  /** The agent's id (hex), '' for pcap streams. */
  agentId: string;
  /** Peer address of the last connection ("ip:port"). */
  remote: string;
  /** Connections open now. */
  connected: number;
  /** Connections accepted so far. */
  connections: number;
  /** Packets received. */
  packets: number;
  /** Batches (ring blocks) the agent dropped because this replayer could not take them. */
  droppedFrames: number;
  /** Packets in them. */
  droppedPackets: number;
  /** Of those, TCP segments with payload: counted as requests lost (`agentDropped`). */
  agentDropped: number;
  /** Packets the agent's kernel ring dropped (ring full), as the agent reported. */
  kernelDropped: number;
  /** Packets announced in frames that could not be read (damaged). */
  damaged: number;
  /** Replayer's clock minus the agent's at its last STATUS, ms (network delay included); null before one. */
  clockSkewMs: number | null;
  /** When the last STATUS came (replayer's ms), 0 before one. */
  lastStatusAt: number;
}

/** Settings of a StreamInput. */
export interface StreamInputOptions {
  /** `--secret-file`: agents must authenticate (and plain pcap streams are refused); null = none. */
  secret: Buffer | null;
  /** How many slots there are (replay variants: 1024 / -n); later sources share slots (wrapping). */
  maxSlots: number;
  /** Log lines (connections, refusals). */
  log: { info(m: string): void; warn(m: string): void };
  /** `-i -` only: standard input ended. */
  onEnd?: () => void;
  /** Readable standard input (tests pass their own). Default process.stdin. */
  stdin?: NodeJS.ReadableStream;
}

/** The stream input; see the module comment. */
export class StreamInput implements PacketSource {
  private server: net.Server | null = null;
  private readonly socks = new Set<net.Socket>();
  private readonly sourcesBySlot = new Map<number, StreamSourceInfo>();
  private readonly slotByAgent = new Map<number, number>();
  private nextSlot = 0;
  private received = 0;
  private stopped = false;
  /** Address actually listened on (after start). */
  address: { host: string; port: number } | null = null;

  constructor(
    private readonly spec: StreamInputSpec,
    private readonly opts: StreamInputOptions,
  ) {}

  /** Listens (or starts reading stdin). Throws TcpcopyError ERR_STREAM_LISTEN when the address is taken. */
  async start(rx: StreamReceiver): Promise<void> {
    const spec = this.spec;
    if (spec.kind === 'stdin') {
      const input = this.opts.stdin ?? process.stdin;
      this.serve(input, null, rx, 'standard input');
      return;
    }
    const server = net.createServer((sock) => {
      this.socks.add(sock);
      sock.setNoDelay(true);
      sock.on('close', () => this.socks.delete(sock));
      this.serve(sock, sock, rx, `${sock.remoteAddress ?? '?'}:${sock.remotePort ?? 0}`);
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          new TcpcopyError(
            'ERR_STREAM_LISTEN',
            `-i tcp://${spec.host}:${spec.port}: cannot listen (${e.code ?? e.message}); pick a free port or address of this host`,
            { option: '-i', value: `tcp://${spec.host}:${spec.port}` },
          ),
        ),
      );
      server.listen({ host: spec.host, port: spec.port }, () => resolve());
    });
    const a = server.address() as net.AddressInfo;
    this.address = { host: a.address, port: a.port };
    this.opts.log.info(`listening for agents and pcap streams on ${a.address}:${a.port}`);
  }

  /** One connection (or stdin): decode, hand packets on, answer queries. */
  private serve(input: NodeJS.ReadableStream, sock: net.Socket | null, rx: StreamReceiver, remote: string): void {
    let info: StreamSourceInfo | null = null;
    let slot = 0;
    const dec = new StreamDecoder(
      { secret: this.opts.secret, nonce: () => randomBytes(32), name: remote },
      {
        write: (b) => sock?.write(b),
        identified: (kind, hello) => {
          if (hello !== null && (hello.flags & HELLO_QUERY) !== 0) return; // a doctor: no source, no slot
          info = this.source(kind, hello?.agentId ?? null, hello !== null ? hello.name : remote, remote);
          info.connected++;
          info.connections++;
          slot = info.slot;
          this.opts.log.info(
            `${kind === 'agent' ? `agent ${hello?.name ?? ''} (${remote}, shard ${(hello?.shard ?? 0) + 1}/${hello?.shards ?? 1})` : `${kind} stream from ${remote}`} connected: slot ${slot}`,
          );
        },
        packet: (link, b, off, cap, orig, ts) => {
          this.received++;
          if (info !== null) info.packets++;
          rx.packet(link, b, off, cap, orig, ts, slot);
        },
        batchEnd: () => rx.batchEnd(Date.now()),
        status: (s) => {
          if (info === null) return;
          info.droppedFrames += s.droppedFrames;
          info.droppedPackets += s.droppedPackets;
          info.agentDropped += s.droppedData;
          info.kernelDropped += s.kernelDropped;
          info.clockSkewMs = Date.now() - s.nowMs;
          info.lastStatusAt = Date.now();
        },
        query: () => {
          sock?.end(encodeInfo({ nowMs: Date.now(), sources: this.sources() }));
        },
        fail: (reason) => {
          this.opts.log.warn(`stream from ${remote} closed: ${reason}`);
          sock?.end();
        },
      },
    );
    input.on('data', (chunk: Buffer) => dec.feed(chunk));
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      if (info !== null) {
        info.connected--;
        info.damaged += dec.stats.damaged;
        this.opts.log.info(`${info.kind} ${info.name} (${remote}) disconnected after ${dec.stats.packets} packets`);
      }
      if (sock === null) this.opts.onEnd?.();
    };
    input.on('end', end);
    input.on('close', end);
    input.on('error', (e: Error) => {
      this.opts.log.warn(`stream from ${remote}: ${e.message}`);
      end();
    });
  }

  /** The source record of a new connection: an agent's own (by id), or a new slot for a pcap stream. */
  private source(kind: StreamKind, agentId: number | null, name: string, remote: string): StreamSourceInfo {
    let slot: number | undefined = agentId !== null ? this.slotByAgent.get(agentId) : undefined;
    if (slot === undefined) {
      slot = this.nextSlot++ % this.opts.maxSlots;
      if (agentId !== null) this.slotByAgent.set(agentId, slot);
    }
    let info = this.sourcesBySlot.get(slot);
    if (info === undefined || (agentId === null && info.kind === 'agent')) {
      info = {
        slot,
        kind,
        name,
        agentId: agentId !== null ? agentId.toString(16).padStart(8, '0') : '',
        remote,
        connected: 0,
        connections: 0,
        packets: 0,
        droppedFrames: 0,
        droppedPackets: 0,
        agentDropped: 0,
        kernelDropped: 0,
        damaged: 0,
        clockSkewMs: null,
        lastStatusAt: 0,
      };
      this.sourcesBySlot.set(slot, info);
    }
    info.remote = remote;
    return info;
  }

  /** Every source seen so far, by slot. */
  sources(): StreamSourceInfo[] {
    return [...this.sourcesBySlot.values()].sort((a, b) => a.slot - b.slot);
  }

  /** Requests the agents lost before they reached this replayer (their dropped data segments). */
  agentDropped(): number {
    let n = 0;
    for (const s of this.sourcesBySlot.values()) n += s.agentDropped;
    return n;
  }

  /** Stops listening and closes every connection. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const s of this.socks) s.destroy();
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** received = packets handed on; dropped = packets the agents' kernel rings dropped. */
  stats(): SourceStats {
    let kernel = 0;
    for (const s of this.sourcesBySlot.values()) kernel += s.kernelDropped;
    return { received: this.received, dropped: kernel };
  }
}
