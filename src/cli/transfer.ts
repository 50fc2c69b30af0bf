import { TcpcopyError } from '../core/errors';
import { isIpv6, parseIpv6 } from '../core/wire/ipv6';
import { ipToString, parseIpv4 } from '../core/wire/segment';
import type { Transfer } from '../config/tcpcopy-config';

export type { Transfer };

const EXPECTED =
  'expected [onlineIP:]onlinePort[@mac]-targetIP:targetPort[@mac] (IPv6 in brackets), e.g. 80-198.18.0.2:8080 or 80-[2001:2::2]:8080';
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

/**
 * Splits `ip:port`, `[ipv6]:port` or (online side only) `port` into the address (-1 when the
 * text is not one; 0 when absent) and the port text.
 */
function splitEndpoint(part: string, whole: string, what: string): [number, string] {
  if (part.startsWith('[')) {
    const close = part.indexOf(']');
    if (close < 0 || part[close + 1] !== ':') throw bad(whole, `${what} "${part}" is not [IPv6]:port`);
    const ip = parseIpv6(part.slice(1, close));
    if (ip < 0) throw bad(whole, `"${part.slice(1, close)}" is not an IPv6 address`);
    return [ip, part.slice(close + 2)];
  }
  const colon = part.lastIndexOf(':');
  if (colon < 0) return [0, part];
  const host = part.slice(0, colon);
  if (host.includes(':')) {
    const hint = parseIpv6(host) >= 0 ? `; write it in brackets: [${host}]:${part.slice(colon + 1)}` : '';
    throw bad(whole, `"${host}" is not an IPv4 address${hint}`);
  }
  const ip = parseIpv4(host);
  if (ip < 0) throw bad(whole, `"${host}" is not an IPv4 address`);
  return [ip, part.slice(colon + 1)];
}

/**
 * Parses one transfer; throws TcpcopyError ERR_BAD_TRANSFER naming the text and the expected
 * form. IPv6 addresses go in brackets (`[2001:2::1]:80-[2001:2::2]:8080`). Both addresses must
 * be of one family: an online IPv4 address copied to an IPv6 target (or the reverse) is refused,
 * tcpcopy does not translate between families; without an online address the transfer takes the
 * online port's traffic of the target's family (list one transfer per family for dual stack).
 */
export function parseTransfer(text: string): Transfer {
  const dash = text.indexOf('-');
  if (dash < 0) throw bad(text, 'no "-" between the online and the target side');
  const [online, onlineMac] = splitMac(text.slice(0, dash), text);
  const [target, targetMac] = splitMac(text.slice(dash + 1), text);
  const [onlineIp, onlinePortText] = splitEndpoint(online, text, 'online side');
  const onlinePort = parsePort(onlinePortText, text, 'online');
  const [targetIp, targetPortText] = splitEndpoint(target, text, 'target');
  if (targetIp === 0) throw bad(text, `target "${target}" has no ":port"`);
  const targetPort = parsePort(targetPortText, text, 'target');
  if (onlineIp !== 0 && isIpv6(onlineIp) !== isIpv6(targetIp)) {
    const fam = (ip: number): string => (isIpv6(ip) ? 'IPv6' : 'IPv4');
    throw new TcpcopyError(
      'ERR_BAD_TRANSFER',
      `-x ${text}: the online address ${ipToString(onlineIp)} is ${fam(onlineIp)} but the target ${ipToString(targetIp)} is ${fam(targetIp)}; tcpcopy does not translate between IPv4 and IPv6: copy each family to a target of its own, e.g. -x 198.18.0.1:80-198.18.0.2:8080,[2001:2::1]:80-[2001:2::2]:8080`,
      { option: '-x', value: text },
    );
  }
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
