/**
 * A minimal HTTP/1.1 client connection over a raw TCP socket, for the load generator:
 * one request in flight at a time, responses delimited by Content-Length, chunked encoding
 * or connection close. Raw sockets (rather than node:http) keep the generator fast and
 * make the wire behaviour exact: one request per connection really means one.
 */
import net from 'node:net';

/** Outcome of one request. */
export interface HttpResult {
  /** HTTP status, or 0 when no complete response arrived. */
  status: number;
  /** Error kind when the request failed (errno code, 'timeout', 'closed', 'parse'), else null. */
  error: string | null;
  /** Response bytes received (head + body). */
  bytes: number;
  /** True when the connection cannot be reused (server said close, or it failed). */
  close: boolean;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');

type Mode = 'idle' | 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'trailer' | 'until-close';

/** One client connection. */
export class HttpConn {
  /** The socket. */
  readonly sock: net.Socket;
  /** True once connected and until closed. */
  open = false;
  private buf: Buffer | null = null;
  private mode: Mode = 'idle';
  private remaining = 0;
  private status = 0;
  private bytes = 0;
  private serverClose = false;
  private done: ((r: HttpResult) => void) | null = null;
  private timer: NodeJS.Timeout | null = null;

  /** Starts connecting; await {@link connected}. */
  constructor(
    host: string,
    port: number,
    localAddress: string | undefined,
    private readonly timeoutMs: number,
  ) {
    this.sock = net.connect(localAddress === undefined ? { host, port } : { host, port, localAddress });
    this.sock.setNoDelay(true);
    this.sock.on('data', (b: Buffer) => this.onData(b));
    this.sock.on('error', (e: NodeJS.ErrnoException) => this.finish(0, e.code ?? 'socket_error', true));
    this.sock.on('close', () => {
      this.open = false;
      if (this.mode === 'until-close') this.finish(this.status, null, true);
      else this.finish(0, 'closed', true);
    });
  }

  /** Resolves null once connected, or the error kind when the connection failed or timed out. */
  connected(): Promise<string | null> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        cleanup();
        this.sock.destroy();
        resolve('connect_timeout');
      }, this.timeoutMs);
      const ok = (): void => {
        cleanup();
        this.open = true;
        resolve(null);
      };
      const bad = (e: NodeJS.ErrnoException): void => {
        cleanup();
        resolve(e.code ?? 'connect_error');
      };
      const cleanup = (): void => {
        clearTimeout(t);
        this.sock.off('connect', ok);
        this.sock.off('error', bad);
      };
      this.sock.once('connect', ok);
      this.sock.once('error', bad);
    });
  }

  /** Sends one complete request (head + body) and resolves its outcome. */
  request(req: Buffer): Promise<HttpResult> {
    return new Promise((resolve) => {
      this.done = resolve;
      this.mode = 'head';
      this.buf = null;
      this.status = 0;
      this.bytes = 0;
      this.serverClose = false;
      this.timer = setTimeout(() => {
        this.finish(0, 'timeout', true);
        this.sock.destroy();
      }, this.timeoutMs);
      this.sock.write(req);
    });
  }

  /** Closes gracefully (FIN). */
  end(): void {
    this.open = false;
    this.sock.end();
  }
  /** Closes at once. */
  destroy(): void {
    this.open = false;
    this.sock.destroy();
  }

  private finish(status: number, error: string | null, close: boolean): void {
    const done = this.done;
    if (!done) return;
    this.done = null;
    this.mode = 'idle';
    this.buf = null;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    done({ status, error, bytes: this.bytes, close: close || this.serverClose });
  }

  private onData(chunk: Buffer): void {
    if (!this.done) return; // unsolicited bytes: ignore
    this.bytes += chunk.length;
    let b = this.buf ? Buffer.concat([this.buf, chunk]) : chunk;
    this.buf = null;
    for (;;) {
      switch (this.mode) {
        case 'head': {
          const end = b.indexOf(CRLFCRLF);
          if (end < 0) {
            this.buf = b;
            return;
          }
          if (!this.parseHead(b.toString('latin1', 0, end))) {
            this.finish(0, 'parse', true);
            this.sock.destroy();
            return;
          }
          b = b.subarray(end + 4);
          if ((this.mode as Mode) === 'length' && this.remaining === 0) {
            this.finish(this.status, null, false);
            return;
          }
          break;
        }
        case 'length': {
          if (b.length < this.remaining) {
            this.remaining -= b.length;
            return;
          }
          this.remaining = 0;
          this.finish(this.status, null, false);
          return;
        }
        case 'chunk-size': {
          const e = b.indexOf(CRLF);
          if (e < 0) {
            this.buf = b;
            return;
          }
          const size = parseInt(b.toString('latin1', 0, e).split(';')[0] ?? '', 16);
          if (!Number.isFinite(size) || size < 0) {
            this.finish(0, 'parse', true);
            this.sock.destroy();
            return;
          }
          b = b.subarray(e + 2);
          if (size === 0) {
            this.mode = 'trailer';
          } else {
            this.mode = 'chunk-data';
            this.remaining = size + 2;
          }
          break;
        }
        case 'chunk-data': {
          if (b.length < this.remaining) {
            this.remaining -= b.length;
            return;
          }
          b = b.subarray(this.remaining);
          this.remaining = 0;
          this.mode = 'chunk-size';
          break;
        }
        case 'trailer': {
          const e = b.indexOf(CRLF);
          if (e < 0) {
            this.buf = b;
            return;
          }
          b = b.subarray(e + 2);
          if (e === 0) {
            this.finish(this.status, null, false);
            return;
          }
          break;
        }
        case 'until-close':
        case 'idle':
          return;
      }
    }
  }

  /** Parses the status line and headers; sets the body mode. False on garbage. */
  private parseHead(head: string): boolean {
    const lines = head.split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (!m) return false;
    this.status = Number(m[1]);
    let length = -1;
    let chunked = false;
    for (let i = 1; i < lines.length; i++) {
      const l = lines[i] ?? '';
      const c = l.indexOf(':');
      if (c < 0) continue;
      const name = l.slice(0, c).trim().toLowerCase();
      const value = l
        .slice(c + 1)
        .trim()
        .toLowerCase();
      if (name === 'content-length') length = Number(value);
      else if (name === 'transfer-encoding') chunked = value.includes('chunked');
      else if (name === 'connection') this.serverClose = value.includes('close');
    }
    if (this.status === 204 || this.status === 304 || (this.status >= 100 && this.status < 200)) {
      this.mode = 'length';
      this.remaining = 0;
    } else if (chunked) this.mode = 'chunk-size';
    else if (length >= 0 && Number.isFinite(length)) {
      this.mode = 'length';
      this.remaining = length;
    } else {
      this.mode = 'until-close';
      this.serverClose = true;
    }
    return true;
  }
}
