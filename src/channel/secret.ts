/**
 * Reading the channel v2 shared secret (`--secret-file FILE`, the same file on tcpcopy and
 * intercept). Errors name the option, the file and the fix.
 */
import * as fs from 'node:fs';
import { TcpcopyError } from '../core/errors';

/** Fewest secret bytes accepted. */
export const MIN_SECRET_BYTES = 16;

/**
 * The secret: the file's bytes with trailing CR/LF removed. Throws ERR_SECRET_FILE when the
 * file cannot be read or holds fewer than MIN_SECRET_BYTES bytes.
 */
export function readSecret(file: string): Buffer {
  let b: Buffer;
  try {
    b = fs.readFileSync(file);
  } catch (e) {
    throw new TcpcopyError(
      'ERR_SECRET_FILE',
      `--secret-file ${file}: cannot read (${(e as Error).message}); fix: give a readable file holding the shared secret`,
      { option: '--secret-file', value: file },
    );
  }
  let n = b.length;
  while (n > 0 && (b[n - 1] === 10 || b[n - 1] === 13)) n--;
  if (n < MIN_SECRET_BYTES) {
    throw new TcpcopyError(
      'ERR_SECRET_FILE',
      `--secret-file ${file}: the secret is ${n} bytes; fix: use at least ${MIN_SECRET_BYTES} bytes, e.g. head -c 32 /dev/urandom | base64 > ${file}`,
      { option: '--secret-file', value: file },
    );
  }
  return b.subarray(0, n);
}
