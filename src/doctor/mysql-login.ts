/**
 * `tcpcopy doctor --module mysql`: does the target accept a login for each configured user?
 * The doctor connects to each target (a real TCP connection from this host), reads the
 * greeting, answers its scramble with mysql_native_password as the replay would (following
 * an AuthSwitchRequest), and turns the outcome into a CheckResult. The exchange itself is the
 * pure `LoginProbe` (packets in, bytes to send and the outcome out); `probeMysqlLogin` is the I/O.
 */
import * as net from 'node:net';
import { PacketFramer, encodePacket, type MysqlPacket } from '../modules/mysql/packet';
import {
  NATIVE_PASSWORD,
  authSwitchResponse,
  isParseError,
  parseAuthSwitch,
  parseGreeting,
} from '../modules/mysql/handshake';
import { buildHandshakeResponse, configuredLogin } from '../modules/mysql/logins';
import { check, type CheckResult } from './result';

/** How a login attempt ended. */
export type LoginOutcome =
  | { kind: 'ok'; server: string; switched: boolean }
  | { kind: 'refused'; server: string; code: number; message: string }
  | { kind: 'unsupportedAuth'; server: string; plugin: string }
  | { kind: 'badGreeting'; error: string }
  | { kind: 'unreachable'; error: string };

/** The client side of one login, pure: feed it the server's packets; it says what to send and when it is over. */
export class LoginProbe {
  private server = '';
  private switched = false;
  private greeted = false;

  constructor(
    private readonly user: string,
    private readonly password: string,
    private readonly database: string | null = null,
  ) {}

  /** One server packet: bytes to send (or null), and the outcome once known. */
  onPacket(p: MysqlPacket): { send: Buffer | null; done: LoginOutcome | null } {
    if (!this.greeted) {
      this.greeted = true;
      const g = parseGreeting(p.payload);
      if (isParseError(g))
        return {
          send: null,
          done: { kind: 'badGreeting', error: p.payload[0] === 0xff ? errText(p.payload) : g.error },
        };
      this.server = g.serverVersion;
      const login = configuredLogin({ user: this.user, database: this.database, port: null });
      const resp = buildHandshakeResponse(login, this.password, g.scramble, g.charset);
      return { send: encodePacket(1, resp), done: null };
    }
    const b = p.payload[0];
    if (b === 0x00)
      return {
        send: encodePacket(0, Buffer.from([0x01])),
        done: { kind: 'ok', server: this.server, switched: this.switched },
      };
    if (b === 0xff)
      return {
        send: null,
        done: { kind: 'refused', server: this.server, code: p.payload.readUInt16LE(1), message: errText(p.payload) },
      };
    if (b === 0xfe) {
      const sw = parseAuthSwitch(p.payload);
      if (sw === null || sw.plugin !== NATIVE_PASSWORD)
        return { send: null, done: { kind: 'unsupportedAuth', server: this.server, plugin: sw?.plugin ?? '?' } };
      this.switched = true;
      return { send: authSwitchResponse(p.seq, this.password, sw.data), done: null };
    }
    return { send: null, done: null }; // AuthMoreData: the OK or ERR follows
  }
}

/** The text of an ERR packet (`#SQLSTATE` marker dropped). */
function errText(p: Buffer): string {
  const o = p[3] === 0x23 ? 9 : 3;
  return p.toString('utf8', o);
}

/** The doctor's verdict on one user's login at one target. */
export function checkMysqlLogin(user: string, target: string, o: LoginOutcome): CheckResult {
  const name = 'mysql-login';
  switch (o.kind) {
    case 'ok':
      return check(
        name,
        'ok',
        `${target} (${o.server}) accepts ${user} with mysql_native_password${o.switched ? ' (after an AuthSwitchRequest)' : ''}`,
      );
    case 'refused':
      return check(
        name,
        'fail',
        `${target} refused ${user}: error ${o.code}: ${o.message}`,
        o.code === 1045
          ? `check the password given for ${user} (--mysql-user/--mysql-users), and that ${user} may connect from this host's replayed client addresses on the target (CREATE USER '${user}'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('...'))`
          : `fix the account ${user} on the target (error ${o.code})`,
      );
    case 'unsupportedAuth':
      return check(
        name,
        'fail',
        `${target} wants the auth plugin ${o.plugin} for ${user}; the replay answers only mysql_native_password`,
        `on the target: ALTER USER '${user}'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('...') (MySQL: IDENTIFIED WITH mysql_native_password BY '...')`,
      );
    case 'badGreeting':
      return check(
        name,
        'fail',
        `${target} did not greet like MySQL/MariaDB: ${o.error}`,
        'check -x points at the database port of the target',
      );
    default:
      return check(name, 'fail', `${target}: ${o.error}`, 'start the database on the target, or fix -x');
  }
}

/** Logs in as `user` at host:port (real TCP), within `timeoutMs`. */
export function probeMysqlLogin(
  host: string,
  port: number,
  user: string,
  password: string,
  timeoutMs: number,
): Promise<LoginOutcome> {
  return new Promise((resolve) => {
    const probe = new LoginProbe(user, password);
    const framer = new PacketFramer(1 << 20);
    const s = net.connect({ host, port });
    let finished = false;
    /** `quit`: the login succeeded; COM_QUIT is the last thing written, the socket half-closed after it. */
    const finish = (o: LoginOutcome, quit: Buffer | null = null): void => {
      if (finished) return;
      finished = true;
      clearTimeout(t);
      if (quit !== null) s.end(quit);
      else s.destroy();
      resolve(o);
    };
    const t = setTimeout(() => finish({ kind: 'unreachable', error: `no answer within ${timeoutMs} ms` }), timeoutMs);
    s.on('data', (d: Buffer) => {
      const r = framer.feed(d, (p) => {
        if (finished) return;
        const { send, done } = probe.onPacket(p);
        if (done !== null) finish(done, send);
        else if (send !== null) s.write(send);
      });
      if (r !== 'ok') finish({ kind: 'badGreeting', error: 'a packet over 1 MiB' });
    });
    s.once('error', (e) => finish({ kind: 'unreachable', error: e.message }));
    s.once('close', () => finish({ kind: 'unreachable', error: 'the connection was closed before the login ended' }));
  });
}
