import * as fs from 'node:fs';
import { TcpcopyError } from '../core/errors';
import type { TcpcopyConfig } from '../config/tcpcopy-config';
import type { StreamInputSpec } from '../io/stream-input';

/** Where packets come from: a capture file (offline replay), live capture devices, or agents and pcap streams. */
export type InputSpec =
  | { readonly kind: 'offline'; readonly file: string }
  | { readonly kind: 'live'; readonly devices: readonly string[] }
  | { readonly kind: 'stream'; readonly stream: StreamInputSpec };

/** `-i tcp://[HOST:]PORT` (HOST default 0.0.0.0: every address of this host). */
const STREAM_URL = /^tcp:\/\/(?:\[?([0-9A-Za-z.:-]*?)\]?:)?(\d{1,5})\/?$/;

/** Parses `-i tcp://[HOST:]PORT` or `-i -`; null when `-i` is neither. Throws ERR_BAD_OPTION for a bad tcp:// form. */
export function parseStreamInput(i: string): StreamInputSpec | null {
  if (i === '-') return { kind: 'stdin' };
  if (!i.startsWith('tcp://')) return null;
  const m = STREAM_URL.exec(i);
  const port = Number(m?.[2]);
  if (m === null || port < 1 || port > 65535)
    throw new TcpcopyError(
      'ERR_BAD_OPTION',
      `-i ${i}: expected tcp://[HOST:]PORT, e.g. -i tcp://36525 or -i tcp://198.18.0.5:36525`,
      {
        option: '-i',
        value: i,
      },
    );
  return { kind: 'listen', host: m[1] !== undefined && m[1] !== '' ? m[1] : '0.0.0.0', port };
}

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
  const stream = i !== null ? parseStreamInput(i) : null;
  if (stream !== null) {
    if (cfg.offlineOptions.length > 0)
      throw new TcpcopyError(
        'ERR_BAD_OPTION',
        `${cfg.offlineOptions.join('/')} ${cfg.offlineOptions.length === 1 ? 'applies' : 'apply'} to offline replay; -i ${i} is a live stream (replayed as it arrives)`,
        { option: '-i', value: i },
      );
    return { kind: 'stream', stream };
  }
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
