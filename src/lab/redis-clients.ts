/**
 * Redis load for the lab: redis-benchmark's argv (the server's password, bounded by a request
 * count) and the lab's own Node client (redis-client-main.ts: connections kept open across
 * phases, for sessions that tcpcopy picks up mid-stream).
 */
import * as path from 'node:path';
import type { HostName } from './names';
import type { LabProcess } from './process';
import type { LabServices } from './servers';

const REDIS_CLIENT = path.join(__dirname, 'redis-client-main.js');

/** Where a Redis server is, as a client sees it. */
export interface RedisEndpoint {
  ip: string;
  port: number;
}

/** Options of redisBenchmarkArgv. */
export interface RedisBenchmarkRun {
  /** Requests in all (-n). */
  requests: number;
  /** Connections (-c). Default 8. */
  clients?: number;
  /** Pipelined requests per connection (-P). Default 1. */
  pipeline?: number;
  /** Tests (-t). Default 'set,get,incr,lpush,hset'. */
  tests?: string;
  /** Key space (-r). Default 10000. */
  keyspace?: number;
}

/** redis-benchmark against `ep` with the default user's `password`, quiet output. */
export function redisBenchmarkArgv(ep: RedisEndpoint, password: string, o: RedisBenchmarkRun): string[] {
  return [
    'redis-benchmark',
    '-h',
    ep.ip,
    '-p',
    String(ep.port),
    '-a',
    password,
    '-n',
    String(o.requests),
    '-c',
    String(o.clients ?? 8),
    '-P',
    String(o.pipeline ?? 1),
    '-r',
    String(o.keyspace ?? 10_000),
    '-t',
    o.tests ?? 'set,get,incr,lpush,hset',
    '-q',
  ];
}

/** Options of the Node client (see redis-client-main.ts). */
export interface RedisClientRun {
  connections: number;
  /** Commands per connection and phase. */
  commands: number;
  pipeline?: number;
  phases?: number;
  goFile?: string;
}

/** Starts the lab's Node Redis client on `host`. */
export function spawnRedisClient(
  lab: LabServices,
  host: HostName,
  ep: RedisEndpoint,
  password: string | undefined,
  o: RedisClientRun,
): LabProcess {
  return lab.spawn(
    host,
    [
      process.execPath,
      REDIS_CLIENT,
      JSON.stringify({ host: ep.ip, port: ep.port, ...(password !== undefined ? { password } : {}), ...o }),
    ],
    { label: 'redis-client' },
  );
}

/** What the Node client printed at the end. */
export interface RedisClientTotals {
  connections: number;
  counts: Record<string, number>;
  errors: number;
}

/** Waits for the Node client and returns its totals; throws with its stderr when it failed. */
export async function redisClientTotals(p: LabProcess): Promise<RedisClientTotals> {
  const e = await p.exited;
  const line = p.stdout.trim().split('\n').pop() ?? '';
  if (e.code !== 0 || !line.startsWith('{'))
    throw new Error(`redis client failed (${JSON.stringify(e)}): ${p.stderr.slice(-2000)}`);
  return JSON.parse(line) as RedisClientTotals;
}
