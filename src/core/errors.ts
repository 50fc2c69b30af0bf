/**
 * One error class for everything a user can get wrong (options, files, permissions, setup).
 * `code` is stable and matchable (like Node's ERR_* codes); the message names the option or
 * file, the offending value and the fix. Bad packets from the wire never throw: parsers
 * return a reason that becomes a counter.
 */
export class TcpcopyError extends Error {
  override readonly name = 'TcpcopyError';
  constructor(
    /** Stable code, e.g. 'ERR_BAD_TRANSFER', 'ERR_CAPTURE_TRUNCATED', 'ERR_NO_RAW_PERMISSION'. */
    readonly code: string,
    message: string,
    /** Extra facts (file, offset, option...) for JSON logs and tests. */
    readonly details: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
  }
}
