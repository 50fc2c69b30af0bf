/**
 * Integer key of an address and port, `ip * 65536 + port`: exact in a double (IPv4 < 2^48, IPv6
 * ids < 2^53: see wire/ipv6.ts), so Maps keyed by a client address need no string, for both
 * families. `ip` is an unsigned IPv4 value or an IPv6 id. Used by the engine's session tables
 * and by intercept's route table and hold queue.
 */
export function addressKey(ip: number, port: number): number {
  return ip * 65536 + (port & 0xffff);
}
