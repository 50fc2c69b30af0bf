/**
 * Shared shapes of intercept: the logger it writes through and its counters.
 * The logger interface matches src/io/logger.ts's createLogger() result, so either fits.
 */

/** Where intercept writes its log lines. */
export interface Logger {
  debug(msg: string, fields?: object): void;
  info(msg: string, fields?: object): void;
  warn(msg: string, fields?: object): void;
  error(msg: string, fields?: object): void;
}

/** A minimal Logger: one text line per call on stderr (or a given write function), fields as JSON. */
export function consoleLogger(
  minLevel: 'debug' | 'info' | 'warn' | 'error' = 'info',
  write: (line: string) => void = (l) => {
    process.stderr.write(l);
  },
): Logger {
  const order = { debug: 0, info: 1, warn: 2, error: 3 };
  const min = order[minLevel];
  const line =
    (lvl: keyof typeof order) =>
    (msg: string, fields?: object): void => {
      if (order[lvl] < min) return;
      const f = fields && Object.keys(fields).length > 0 ? ` ${JSON.stringify(fields)}` : '';
      write(`${new Date().toISOString()} ${lvl} ${msg}${f}\n`);
    };
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
}

/** A silent Logger (tests). */
export const nullLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Counters of one connected tcpcopy. */
export interface PeerStats {
  /** "ip:port" of the tcpcopy connection. */
  peer: string;
  /** CLIENT_ADD messages received. */
  clientAdds: number;
  /** CLIENT_DEL messages received. */
  clientDels: number;
  /** CLIENT_ADDs refused (table full, per-peer quota, or client owned by another address). */
  routesRefused: number;
  /** Reply records put into frames for this peer. */
  records: number;
  /** Frames written to this peer. */
  frames: number;
  /** Bytes written to this peer. */
  bytes: number;
  /** Records dropped because this peer's socket was backed up beyond the cap. */
  dropped: number;
}

/** Counters of an intercept (a snapshot; the final report and status lines read it). */
export interface InterceptStats {
  /** Captured replies handed to the router (decoded IPv4/TCP). */
  captured: number;
  /** Captured frames that were not IPv4/TCP or did not decode. */
  undecodable: number;
  /** Replies put into a frame for a tcpcopy. */
  routed: number;
  /** Replies with no route (including held ones that expired or did not fit). */
  noRoute: number;
  /** SYN-ACK/RST replies held while waiting for their CLIENT_ADD. */
  held: number;
  /** Held replies delivered when their CLIENT_ADD arrived. */
  heldDelivered: number;
  /** Held replies whose CLIENT_ADD did not come within the hold time (counted in noRoute too). */
  heldExpired: number;
  /** SYN-ACK/RST replies without route that found the hold store full (counted in noRoute too). */
  holdFull: number;
  routesAdded: number;
  /** CLIENT_ADD for a client already routed (peer/target refreshed). */
  routesUpdated: number;
  /** CLIENT_DEL received (the route then expires after a short grace). */
  routesDeleted: number;
  routesExpired: number;
  /** CLIENT_ADD refused because the route table is full. */
  routesRefused: number;
  /** CLIENT_ADD refused because its address holds `--max-routes-per-peer` routes. */
  routesRefusedQuota: number;
  /** CLIENT_ADD refused because a live connection from another address owns that client (1.x route hijack). */
  routesRefusedOwned: number;
  /** Routes in the table now. */
  routes: number;
  framesSent: number;
  recordsSent: number;
  bytesSent: number;
  /** Records dropped because a tcpcopy could not keep up (output cap). */
  recordsDropped: number;
  /** tcpcopy connections now. */
  peers: number;
  /** tcpcopy connections accepted since start. */
  peersTotal: number;
  /** Connections closed because the first message was not a hello. */
  badHello: number;
  /** Messages with an unknown type. */
  badMessages: number;
  /** Connections closed for too many bad messages. */
  badPeers: number;
  /** Channel v2 handshakes that succeeded. */
  authOk: number;
  /** Connections refused by channel v2 (wrong secret, no secret, or a 1.x hello when a secret is required). */
  authRefused: number;
  /** Channel connections closed at once because their address is not in `--allow`. */
  notAllowed: number;
  /** Channel connections lost to file-descriptor exhaustion (EMFILE/ENFILE, or refused at the fd budget). */
  fdExhausted: number;
  /** Channel v2 CLIENT_ADDs that asked for the session's reply payloads. */
  payloadRoutes: number;
  /** Reply payload bytes sent to sessions that asked (v2). */
  payloadBytesSent: number;
  /** Replies to such sessions whose payload was cut (over --payload-max, snaplen, or held). */
  payloadTruncated: number;
  /** Channel v2 peers told that this intercept takes per-session payload caps (src/channel/caps.ts). */
  capsAnswered: number;
  /** Channel v2 CLIENT_ADDs that asked for capture time stamps with their records (MSG_FLAG_STAMP). */
  stampRoutes: number;
  /** Records sent with intercept's capture time stamp (V2_REC_STAMP). */
  stampsSent: number;
  /** Per connected tcpcopy. */
  perPeer: PeerStats[];
  /** Per tcpcopy connection that has gone (the last 64, oldest first). */
  pastPeers: PeerStats[];
}
