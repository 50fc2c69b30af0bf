import { TcpcopyError } from '../core/errors';
import { parseIpv4 } from '../core/wire/segment';
import type { Transfer } from '../config/tcpcopy-config';

export type { Transfer };

const EXPECTED = 'expected [onlineIP:]onlinePort[@mac]-targetIP:targetPort[@mac], e.g. 80-198.18.0.2:8080';
const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

function bad(text: string, why: string): TcpcopyError {
  return new TcpcopyError('ERR_BAD_TRANSFER', `-x ${text}: ${why}; ${EXPECTED}`, { option: '-x', value: text });
}

function parsePort(text: string, whole: string, what: string): number {
  if (!/^\d{1,5}$/.test(text)) throw bad(whole, `${what} port "${text}" is not a number`);
  const p = Number(text);
  if (p < 1 || p > 65535) throw bad(whole, `${what} port ${p} is out of range 1..65535`);
  return p;
}

function splitMac(part: string, whole: string): [string, string | null] {
  const at = part.indexOf('@');
  if (at < 0) return [part, null];
  const mac = part.slice(at + 1);
  if (!MAC.test(mac)) throw bad(whole, `"${mac}" is not a MAC address (aa:bb:cc:dd:ee:ff)`);
  return [part.slice(0, at), mac.toLowerCase()];
}

/** Parses one transfer; throws TcpcopyError ERR_BAD_TRANSFER naming the text and the expected form. */
export function parseTransfer(text: string): Transfer {
  const dash = text.indexOf('-');
  if (dash < 0) throw bad(text, 'no "-" between the online and the target side');
  const [online, onlineMac] = splitMac(text.slice(0, dash), text);
  const [target, targetMac] = splitMac(text.slice(dash + 1), text);
  let onlineIp = 0;
  let onlinePortText = online;
  const colon = online.lastIndexOf(':');
  if (colon >= 0) {
    onlineIp = parseIpv4(online.slice(0, colon));
    if (onlineIp < 0) throw bad(text, `"${online.slice(0, colon)}" is not an IPv4 address`);
    onlinePortText = online.slice(colon + 1);
  }
  const onlinePort = parsePort(onlinePortText, text, 'online');
  const tcolon = target.lastIndexOf(':');
  if (tcolon < 0) throw bad(text, `target "${target}" has no ":port"`);
  const targetIp = parseIpv4(target.slice(0, tcolon));
  if (targetIp < 0) throw bad(text, `"${target.slice(0, tcolon)}" is not an IPv4 address`);
  const targetPort = parsePort(target.slice(tcolon + 1), text, 'target');
  return Object.freeze({ onlineIp, onlinePort, targetIp, targetPort, onlineMac, targetMac });
}

/** Parses a comma-separated `-x` list (at least one transfer). */
export function parseTransferList(text: string): Transfer[] {
  const parts = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (parts.length === 0) throw bad(text, 'empty');
  return parts.map(parseTransfer);
}
