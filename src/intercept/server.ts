/**
 * The channel server: TCP listener for tcpcopy connections (one tcpcopy per connection),
 * a thin adapter between sockets and the InterceptCore.
 */
import * as net from 'node:net';
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { cidrContains, type Cidr } from '../doctor/parse';
import { parseIpv4 } from '../core/wire/segment';
import { TcpcopyError } from '../core/errors';
import { CLIENT_MSG_BYTES, CHANNEL_VERSION } from '../channel/constants';
import {
  CHANNEL_VERSION_V2,
  V2_CHALLENGE,
  V2_NO,
  V2_NONCE_BYTES,
  V2_OK,
  V2_RESPONSE_BYTES,
  clientProof,
  macEqual,
  serverMsg,
  serverProof,
} from '../channel/v2';
import type { InterceptCore, Peer } from './core';
import type { Logger } from './types';
import { RateLimit, alsoText } from './rate-log';

/** How often the server checks that the process can still open a file (EMFILE/ENFILE watch), ms. */
const FD_PROBE_MS = 1000;

/** Options of the channel server. */
export interface ChannelServerOptions {
  /** Address to listen on, `-b`; default '0.0.0.0'. */
  host: string;
  /** TCP port, `-p`; default 36524 (0 = any free port, for tests). */
  port: number;
  /** Most bytes waiting in one tcpcopy socket before frames are dropped (and counted). Default 8 MiB. */
  maxSocketBytes?: number;
  /** Time a new connection has to send its hello (and finish the v2 handshake), ms. Default 10000. */
  helloTimeoutMs?: number;
  /** Channel v2 shared secret (`--secret-file`): tcpcopy must authenticate; null/absent = 1.x channel. */
  secret?: Buffer;
  /**
   * Addresses allowed to connect, `--allow CIDR[,...]` (no original flag); others are closed at
   * once, counted (`notAllowed`) and logged (rate-limited). Absent or empty = everyone.
   */
  allow?: readonly Cidr[];
  /** How long a connection refused by channel v2 (TCNO sent) may stay before it is destroyed, ms. Default 1000. */
  refuseGraceMs?: number;
  /**
   * Most channel connections open at once (the file-descriptor budget: the RLIMIT_NOFILE soft
   * limit less a reserve); beyond, new connections are closed and counted (`fdExhausted`).
   * Default: no limit of its own (the kernel's EMFILE is still watched, counted and logged).
   */
  maxConnections?: number;
}

/** The IPv4 address (u32) of a socket's remote end ("::ffff:a.b.c.d" included), or -1. */
function remoteIpv4(addr: string | undefined): number {
  if (addr === undefined) return -1;
  return parseIpv4(addr.startsWith('::ffff:') ? addr.slice(7) : addr);
}

/** Accepts tcpcopy connections and writes their frames. */
export class ChannelServer {
  private readonly server: net.Server;
  private readonly socks = new Map<Peer, net.Socket>();
  /** Every open connection, including those still before their hello/handshake. */
  private readonly all = new Set<net.Socket>();
  private readonly maxSocketBytes: number;
  private readonly helloTimeoutMs: number;
  private readonly refuseGraceMs: number;
  private core: InterceptCore | null = null;
  private readonly allowLog = new RateLimit();
  private readonly fdLog = new RateLimit();
  private probe: NodeJS.Timeout | null = null;

  constructor(
    private readonly opts: ChannelServerOptions,
    private readonly log: Logger,
  ) {
    this.maxSocketBytes = opts.maxSocketBytes ?? 8 << 20;
    this.helloTimeoutMs = opts.helloTimeoutMs ?? 10_000;
    this.refuseGraceMs = opts.refuseGraceMs ?? 1000;
    this.server = net.createServer({ noDelay: true }, (s) => this.accept(s));
    if (opts.maxConnections !== undefined) this.server.maxConnections = opts.maxConnections;
    this.server.on('drop', (d) =>
      this.fdTrouble(
        `channel connection from ${d?.remoteAddress ?? '?'} closed: ${this.all.size} connections open, the limit of ${opts.maxConnections} that the file-descriptor limit leaves room for`,
      ),
    );
  }

  /** Counts and logs (rate-limited) a connection lost to file-descriptor exhaustion. */
  private fdTrouble(what: string): void {
    this.core?.fdExhausted();
    const n = this.fdLog.hit(Date.now());
    if (n > 0)
      this.log.warn(
        `${what}; new tcpcopy connections fail; fix: raise the open-files limit (ulimit -n, LimitNOFILE=) or use fewer connections${alsoText(n)}`,
      );
  }

  /**
   * Once a second: can the process still open a file? libuv silently accepts and closes
   * connections it cannot take when the process is out of descriptors (EMFILE), so this is
   * where that shows.
   */
  private probeFds(): void {
    try {
      fs.closeSync(fs.openSync('/dev/null', 'r'));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EMFILE' || code === 'ENFILE')
        this.fdTrouble(
          `out of file descriptors (${code}${code === 'EMFILE' ? ': this process is at its RLIMIT_NOFILE' : ': the system file table is full'}, ${this.all.size} channel connections open)`,
        );
    }
  }

  /** The write function to give the InterceptCore: false when the socket is backed up or gone. */
  readonly out = (peer: Peer, bytes: Buffer): boolean => {
    const s = this.socks.get(peer);
    if (!s || s.destroyed || s.writableLength > this.maxSocketBytes) return false;
    s.write(bytes);
    return true;
  };

  /** Starts listening; resolves with the bound port. Errors become ERR_CHANNEL_LISTEN naming -b/-p. */
  listen(core: InterceptCore): Promise<number> {
    this.core = core;
    return new Promise((resolve, reject) => {
      const onErr = (err: NodeJS.ErrnoException): void => {
        reject(
          new TcpcopyError(
            'ERR_CHANNEL_LISTEN',
            `-b ${this.opts.host} -p ${this.opts.port}: cannot listen (${err.code ?? err.message}); fix: ${
              err.code === 'EADDRINUSE'
                ? 'another intercept runs on that port: stop it or pick another -p'
                : 'use an address of this host with -b'
            }`,
            { option: '-p', value: this.opts.port, errno: err.code },
          ),
        );
      };
      this.server.once('error', onErr);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', onErr);
        this.server.on('error', (e: NodeJS.ErrnoException) => {
          if (e.code === 'EMFILE' || e.code === 'ENFILE') this.fdTrouble(`accept failed (${e.code})`);
          else this.log.error(`channel server: ${e.message}`);
        });
        this.probe = setInterval(() => this.probeFds(), FD_PROBE_MS);
        this.probe.unref();
        const a = this.server.address();
        resolve(typeof a === 'object' && a ? a.port : this.opts.port);
      });
    });
  }

  private accept(s: net.Socket): void {
    const core = this.core;
    if (!core) {
      s.destroy();
      return;
    }
    const allow = this.opts.allow;
    if (allow !== undefined && allow.length > 0) {
      const ip = remoteIpv4(s.remoteAddress);
      if (ip < 0 || !allow.some((c) => cidrContains(c, ip))) {
        s.destroy();
        core.notAllowed();
        const n = this.allowLog.hit(Date.now());
        if (n > 0)
          this.log.warn(`channel connection from ${s.remoteAddress ?? '?'} closed: not in --allow${alsoText(n)}`);
        return;
      }
    }
    s.setNoDelay(true);
    const addr = s.remoteAddress ?? '?';
    const label = `${addr}:${s.remotePort ?? 0}`;
    const secret = this.opts.secret ?? null;
    this.all.add(s);
    s.once('close', () => this.all.delete(s));
    // Before the peer exists: read the hello (and, for v2, the response) here.
    let pre: Buffer | null = Buffer.alloc(0);
    let nonceS: Buffer | null = null;
    let peer: Peer | null = null;
    const refuse = (why: string, reply: boolean): void => {
      core.authResult(false);
      this.log.warn(`tcpcopy ${label}: refused: ${why}`);
      pre = null;
      if (!reply) {
        s.destroy();
        return;
      }
      // TCNO, then a short grace for the peer to read it: a peer that keeps its side open
      // must not hold the socket for as long as it likes
      s.end(serverMsg(V2_NO, null));
      const g = setTimeout(() => s.destroy(), this.refuseGraceMs);
      g.unref();
      s.once('close', () => clearTimeout(g));
    };
    const start = (v2: boolean, hello: Buffer, rest: Buffer): void => {
      pre = null;
      const p = core.addPeer(label, v2, addr);
      peer = p;
      this.socks.set(p, s);
      if (
        core.clientBytes(p, hello, Date.now()) !== 'ok' ||
        (rest.length > 0 && core.clientBytes(p, rest, Date.now()) !== 'ok')
      )
        s.destroy();
    };
    s.on('data', (chunk: Buffer) => {
      if (peer !== null) {
        if (core.clientBytes(peer, chunk, Date.now()) !== 'ok') s.destroy();
        return;
      }
      if (pre === null) return;
      pre = pre.length === 0 ? chunk : Buffer.concat([pre, chunk]);
      if (nonceS === null) {
        if (pre.length < CLIENT_MSG_BYTES) return;
        const hello = pre.subarray(0, CLIENT_MSG_BYTES);
        const zeroAddr =
          hello.readUInt32BE(0) === 0 &&
          hello.readUInt16BE(4) === 0 &&
          hello.readUInt32BE(8) === 0 &&
          hello.readUInt16BE(12) === 0;
        const version = hello.readUInt16BE(6);
        if (!zeroAddr) {
          // garbage (or not a tcpcopy): let the core count and log it as a bad hello
          start(false, hello, Buffer.alloc(0));
          return;
        }
        if (version === CHANNEL_VERSION_V2 && secret === null) {
          refuse('it asks for channel v2 (--secret-file) but this intercept has no --secret-file', true);
          return;
        }
        if (version !== CHANNEL_VERSION_V2 && secret !== null) {
          refuse(
            `protocol version ${version}${version === CHANNEL_VERSION ? ' (1.x)' : ''} without authentication, but this intercept requires channel v2: give tcpcopy the same --secret-file`,
            false,
          );
          return;
        }
        if (secret === null) {
          start(false, Buffer.from(hello), pre.subarray(CLIENT_MSG_BYTES));
          return;
        }
        nonceS = randomBytes(V2_NONCE_BYTES);
        s.write(serverMsg(V2_CHALLENGE, nonceS));
        pre = pre.subarray(CLIENT_MSG_BYTES);
      }
      if (secret === null || pre.length < V2_RESPONSE_BYTES) return;
      const nonceC = pre.subarray(0, V2_NONCE_BYTES);
      const proof = pre.subarray(V2_NONCE_BYTES, V2_RESPONSE_BYTES);
      if (!macEqual(proof, clientProof(secret, nonceS, nonceC))) {
        refuse("wrong shared secret (its --secret-file differs from this intercept's)", true);
        return;
      }
      s.write(serverMsg(V2_OK, serverProof(secret, nonceS, nonceC)));
      core.authResult(true);
      const hello = Buffer.alloc(CLIENT_MSG_BYTES);
      hello.writeUInt16BE(CHANNEL_VERSION_V2, 6);
      start(true, hello, pre.subarray(V2_RESPONSE_BYTES));
    });
    s.on('error', (e) => this.log.debug(`tcpcopy ${label}: ${e.message}`));
    s.on('close', () => {
      const p = peer;
      if (p === null) return;
      if (p.alive) this.log.info(`tcpcopy ${label}: disconnected`);
      core.removePeer(p);
      this.socks.delete(p);
    });
    // a connection that never completes its hello/handshake is closed after helloTimeoutMs
    const t = setTimeout(() => {
      if (peer === null && pre !== null && !s.destroyed) {
        core.garbage();
        this.log.warn(`tcpcopy ${label}: no hello within ${this.helloTimeoutMs} ms; connection closed`);
        s.destroy();
      }
    }, this.helloTimeoutMs);
    t.unref();
    s.once('close', () => clearTimeout(t));
  }

  /** Stops accepting and closes every tcpcopy connection. */
  close(): Promise<void> {
    if (this.probe) clearInterval(this.probe);
    this.probe = null;
    for (const s of this.all) s.end();
    const t = setTimeout(() => {
      for (const s of this.all) s.destroy();
    }, 500);
    t.unref();
    return new Promise((resolve) =>
      this.server.close(() => {
        clearTimeout(t);
        resolve();
      }),
    );
  }
}
