/**
 * Names and addresses of the lab topology, derived from a prefix. Pure: no I/O.
 *
 * All addresses live in 198.18.0.0/15 (RFC 2544 benchmarking range), so nothing the lab
 * does can reach a real network. See doc/lab.md for the picture.
 */
import { TcpcopyError } from '../core/errors';
import { CHANNEL_DEFAULT_PORT } from '../channel/constants';

/**
 * The hosts of the lab. `online2`/`client2` exist only with `LabOptions.online2`, `replay` (a
 * replay host for `tcpcopy agent`, 198.18.0.5) only with `LabOptions.replayHost`.
 */
export type HostName = 'client' | 'online' | 'target' | 'assistant' | 'online2' | 'client2' | 'replay';

/** Every host name, in creation order. */
export const HOST_NAMES: readonly HostName[] = [
  'client',
  'online',
  'target',
  'assistant',
  'online2',
  'client2',
  'replay',
];

/** Namespace suffix per host (the namespace is `<prefix><suffix>`); `sw` holds the bridge. */
export const NS_SUFFIX: Readonly<Record<HostName | 'switch', string>> = {
  client: 'client',
  online: 'online',
  target: 'target',
  assistant: 'assist',
  online2: 'online2',
  client2: 'client2',
  replay: 'replay',
  switch: 'sw',
};

/** Longest interface-name suffix we append to the prefix (`sw-on2`), kernel limit is 15. */
const LONGEST_DEV_SUFFIX = 6;

/** Maximum prefix length so that every interface name stays within 15 characters. */
export const MAX_PREFIX_LENGTH = 15 - LONGEST_DEV_SUFFIX;

/** The LAN shared by online, target, assistant (and online2): 198.18.0.0/24 on the bridge. */
export const LAN = Object.freeze({
  online: '198.18.0.1',
  target: '198.18.0.2',
  assistant: '198.18.0.3',
  online2: '198.18.0.4',
  replay: '198.18.0.5',
  prefixLen: 24,
});

/** Client side networks: client<->online is 198.18.1.0/24, client2<->online2 is 198.18.2.0/24. */
export const CLIENT_NETS = Object.freeze({ client: '198.18.1', client2: '198.18.2' });

/**
 * The IPv6 LAN of a dual-stack lab (`LabOptions.ipv6`), 2001:2::/64 of the benchmarking prefix
 * 2001:2::/48 (RFC 5180): the same hosts, the same last number as in IPv4.
 */
export const LAN6 = Object.freeze({
  online: '2001:2::1',
  target: '2001:2::2',
  assistant: '2001:2::3',
  online2: '2001:2::4',
  replay: '2001:2::5',
  prefixLen: 64,
});

/** IPv6 client networks (/64): client<->online 2001:2:0:1::/64, client2<->online2 2001:2:0:2::/64. */
export const CLIENT_NETS6 = Object.freeze({ client: '2001:2:0:1', client2: '2001:2:0:2' });

/** IPv6 client addresses: `<net>::2 .. <net>::(2+extra)` (hex, as nginx logs them: RFC 5952). */
export function clientAddressList6(net: string, extra: number): string[] {
  const out: string[] = [];
  for (let i = 2; i <= 2 + extra; i++) out.push(`${net}::${i.toString(16)}`);
  return out;
}

/** The intercept channel port (original default, `intercept -p`). */
export const CHANNEL_PORT = CHANNEL_DEFAULT_PORT;

/**
 * Throws ERR_LAB_PREFIX unless `prefix` is 1..MAX_PREFIX_LENGTH characters of [a-z0-9].
 */
export function validatePrefix(prefix: string): void {
  if (!/^[a-z][a-z0-9]*$/.test(prefix) || prefix.length > MAX_PREFIX_LENGTH) {
    throw new TcpcopyError(
      'ERR_LAB_PREFIX',
      `lab prefix ${JSON.stringify(prefix)}: expected 1..${MAX_PREFIX_LENGTH} characters [a-z0-9], starting with a letter (interface names must stay within 15 characters)`,
      { prefix },
    );
  }
}

/** Namespace name of a host (or of the switch) for a prefix. */
export function nsName(prefix: string, host: HostName | 'switch'): string {
  return prefix + NS_SUFFIX[host];
}

/** Every namespace name a lab with this prefix may create (used for stale cleanup). */
export function allNamespaces(prefix: string): string[] {
  return [...HOST_NAMES, 'switch' as const].map((h) => nsName(prefix, h));
}

/** Client addresses for a client host: `<net>.2 .. <net>.(2+extra)`. */
export function clientAddressList(net: string, extra: number): string[] {
  const out: string[] = [];
  for (let i = 2; i <= 2 + extra; i++) out.push(`${net}.${i}`);
  return out;
}

/** One veth pair: end `a` in namespace `nsA`, end `b` in namespace `nsB`. */
export interface VethPair {
  /** Namespace of end a. */
  nsA: string;
  /** Interface name of end a. */
  a: string;
  /** Namespace of end b. */
  nsB: string;
  /** Interface name of end b. */
  b: string;
}
