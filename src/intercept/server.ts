/**
 * The channel server: TCP listener for tcpcopy connections (one tcpcopy per connection),
 * a thin adapter between sockets and the InterceptCore.
 */
import * as net from 'node:net';
import { TcpcopyError } from '../core/errors';
import type { InterceptCore, Peer } from './core';
import type { Logger } from './types';

/** Options of the channel server. */
export interface ChannelServerOptions {
  /** Address to listen on, `-b`; default '0.0.0.0'. */
  host: string;
  /** TCP port, `-p`; default 36524 (0 = any free port, for tests). */
  port: number;
  /** Most bytes waiting in one tcpcopy socket before frames are dropped (and counted). Default 8 MiB. */
  maxSocketBytes?: number;
  /** Channel v2 shared secret (`--secret-file`): tcpcopy must authenticate; null/absent = 1.x channel. */
  secret?: Buffer;
}

/** Accepts tcpcopy connections and writes their frames. */
export class ChannelServer {
  private readonly server: net.Server;
  private readonly socks = new Map<Peer, net.Socket>();
  private readonly maxSocketBytes: number;
  private core: InterceptCore | null = null;

  constructor(private readonly opts: ChannelServerOptions, private readonly log: Logger) {
    this.maxSocketBytes = opts.maxSocketBytes ?? 8 << 20;
    this.server = net.createServer({ noDelay: true }, (s) => this.accept(s));
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
        reject(new TcpcopyError('ERR_CHANNEL_LISTEN',
          `-b ${this.opts.host} -p ${this.opts.port}: cannot listen (${err.code ?? err.message}); fix: ${err.code === 'EADDRINUSE'
            ? 'another intercept runs on that port: stop it or pick another -p'
            : 'use an address of this host with -b'}`,
          { option: '-p', value: this.opts.port, errno: err.code }));
      };
      this.server.once('error', onErr);
      this.server.listen(this.opts.port, this.opts.host, () => {
        this.server.off('error', onErr);
        this.server.on('error', (e) => this.log.error(`channel server: ${e.message}`));
        const a = this.server.address();
        resolve(typeof a === 'object' && a ? a.port : this.opts.port);
      });
    });
  }

  private accept(s: net.Socket): void {
    const core = this.core;
    if (!core) { s.destroy(); return; }
    s.setNoDelay(true);
    const label = `${s.remoteAddress ?? '?'}:${s.remotePort ?? 0}`;
    const peer = core.addPeer(label);
    this.socks.set(peer, s);
    s.on('data', (chunk: Buffer) => {
      if (core.clientBytes(peer, chunk, Date.now()) !== 'ok') s.destroy();
    });
    s.on('error', (e) => this.log.debug(`tcpcopy ${label}: ${e.message}`));
    s.on('close', () => {
      if (peer.alive) this.log.info(`tcpcopy ${label}: disconnected`);
      core.removePeer(peer);
      this.socks.delete(peer);
    });
  }

  /** Stops accepting and closes every tcpcopy connection. */
  close(): Promise<void> {
    for (const s of this.socks.values()) s.end();
    const t = setTimeout(() => { for (const s of this.socks.values()) s.destroy(); }, 500);
    t.unref();
    return new Promise((resolve) => this.server.close(() => { clearTimeout(t); resolve(); }));
  }
}
