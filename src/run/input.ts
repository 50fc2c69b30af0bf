import * as fs from 'node:fs';
import { TcpcopyError } from '../core/errors';
import type { TcpcopyConfig } from '../config/tcpcopy-config';

/** Where packets come from: a capture file (offline replay) or live capture devices. */
export type InputSpec =
  { readonly kind: 'offline'; readonly file: string } | { readonly kind: 'live'; readonly devices: readonly string[] };

/** Names that are taken for capture files even when they do not exist (so that the error is "cannot open"). */
const CAPTURE_FILE_NAME = /\.(pcap|pcapng|cap|dump)$/i;

/**
 * Decides what `-i` / `--offline` name: `--offline FILE`, or a `-i` that is an existing path or
 * ends in .pcap/.pcapng/.cap/.dump, is a capture file; any other `-i` is a comma-separated list
 * of capture devices; no `-i` is live capture on all devices (empty list). Throws ERR_BAD_OPTION
 * when offline-only options (-a, -T, -I) are given for live capture.
 */
export function resolveInput(cfg: Pick<TcpcopyConfig, 'input' | 'offlineFile' | 'offlineOptions'>): InputSpec {
  const i = cfg.input;
  if (cfg.offlineFile !== null) return { kind: 'offline', file: cfg.offlineFile };
  if (i !== null && (CAPTURE_FILE_NAME.test(i) || fs.existsSync(i))) return { kind: 'offline', file: i };
  if (cfg.offlineOptions.length > 0)
    throw new TcpcopyError(
      'ERR_BAD_OPTION',
      `${cfg.offlineOptions.join('/')} ${cfg.offlineOptions.length === 1 ? 'applies' : 'apply'} to offline replay; -i ${i ?? '(none)'} is not an existing capture file`,
      { option: '-i', value: i ?? '' },
    );
  const devices =
    i === null
      ? []
      : i
          .split(',')
          .map((d) => d.trim())
          .filter((d) => d !== '');
  return { kind: 'live', devices };
}
