/**
 * Integer key of an IPv4 address and port, `ip * 65536 + port`: exact in a double (< 2^48), so
 * Maps keyed by a client address need no string. Used by the engine's session tables and by
 * intercept's route table and hold queue.
 */
export function addressKey(ip: number, port: number): number {
  return (ip >>> 0) * 65536 + (port & 0xffff);
}
