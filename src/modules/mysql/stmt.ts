/**
 * Prepared statements, pure codecs: COM_STMT_PREPARE_OK (the server's statement id) and the
 * statement id of COM_STMT_EXECUTE / SEND_LONG_DATA / CLOSE / RESET / FETCH, rewritten from
 * the id the online server gave to the id the target gave (StmtIdMap, bounded).
 */

/** Command bytes. */
export const COM_QUIT = 0x01;
export const COM_QUERY = 0x03;
export const COM_STMT_PREPARE = 0x16;
export const COM_STMT_EXECUTE = 0x17;
export const COM_STMT_SEND_LONG_DATA = 0x18;
export const COM_STMT_CLOSE = 0x19;
export const COM_STMT_RESET = 0x1a;
export const COM_STMT_FETCH = 0x1c;

/**
 * MariaDB: statement id -1 in COM_STMT_EXECUTE means "the statement prepared last" (sent
 * pipelined right after COM_STMT_PREPARE); never rewritten.
 */
export const STMT_ID_LAST_PREPARED = 0xffffffff;

/** The first packet of a successful COM_STMT_PREPARE response. */
export interface PrepareOk {
  statementId: number;
  columns: number;
  params: number;
  /** 0 when the packet is the short (pre-4.1 style) 9-byte form. */
  warnings: number;
}

/** Parses COM_STMT_PREPARE_OK (0x00, id u32, columns u16, params u16, filler, warnings u16); null for anything else (an error 0xff). */
export function parsePrepareOk(p: Buffer): PrepareOk | null {
  if (p.length < 9 || p[0] !== 0x00) return null;
  return {
    statementId: p.readUInt32LE(1),
    columns: p.readUInt16LE(5),
    params: p.readUInt16LE(7),
    warnings: p.length >= 12 ? p.readUInt16LE(10) : 0,
  };
}

/** True for a command carrying a statement id at payload offset 1. */
export function hasStatementId(p: Buffer): boolean {
  if (p.length < 5) return false;
  const c = p[0];
  return (
    c === COM_STMT_EXECUTE ||
    c === COM_STMT_SEND_LONG_DATA ||
    c === COM_STMT_CLOSE ||
    c === COM_STMT_RESET ||
    c === COM_STMT_FETCH
  );
}

/** The statement id of such a command (check hasStatementId first). */
export function statementId(p: Buffer): number {
  return p.readUInt32LE(1);
}

/** Writes `id` over the statement id of such a command, in place (same length: the packet header stays valid). */
export function rewriteStatementId(p: Buffer, id: number): void {
  p.writeUInt32LE(id >>> 0, 1);
}

/** What mapping a command's statement id came to. */
export type StmtRewrite = 'rewritten' | 'unchanged' | 'unknown';

/**
 * One session's statement ids: captured (online server's) -> target's. Bounded: beyond
 * `maxStatements` the oldest mapping is forgotten (and counted), as a server forgets too
 * (max_prepared_stmt_count).
 */
export class StmtIdMap {
  private readonly map = new Map<number, number>();
  /** Mappings forgotten because the map was full. */
  evicted = 0;

  /** @param maxStatements most mappings held (default 1024) */
  constructor(readonly maxStatements = 1024) {}

  /** Mappings held. */
  get size(): number {
    return this.map.size;
  }

  /** Records that the online server's `online` id is the target's `target` id. */
  set(online: number, target: number): void {
    this.map.delete(online);
    this.map.set(online, target);
    if (this.map.size > this.maxStatements) {
      const first = this.map.keys().next().value as number;
      this.map.delete(first);
      this.evicted++;
    }
  }

  /** The target's id for an online id, undefined when unknown. */
  get(online: number): number | undefined {
    return this.map.get(online);
  }

  /**
   * Rewrites the statement id of a client command in place: 'rewritten' (id mapped),
   * 'unchanged' (not a statement command, the same id, or MariaDB's "last prepared"), or
   * 'unknown' (its PREPARE was not seen: the command cannot be replayed). COM_STMT_CLOSE
   * also forgets the mapping.
   */
  rewrite(p: Buffer): StmtRewrite {
    if (!hasStatementId(p)) return 'unchanged';
    const online = statementId(p);
    if (online === STMT_ID_LAST_PREPARED) return 'unchanged';
    const target = this.map.get(online);
    if (target === undefined) return 'unknown';
    if (p[0] === COM_STMT_CLOSE) this.map.delete(online);
    if (target === online) return 'unchanged';
    rewriteStatementId(p, target);
    return 'rewritten';
  }
}
