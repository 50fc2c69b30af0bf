/**
 * `--module redis`: the built-in Redis replay module as the registry knows it (its options are
 * added to tcpcopy's option table; see module.ts for what it does).
 */
import type { ModuleDefinition } from '../api';
import { createRedisModule } from './module';
import { parseRedisOptions } from './options';

export const definition: ModuleDefinition = {
  name: 'redis',
  summary:
    "Redis: AUTH / HELLO AUTH rewritten to the target's passwords, an AUTH (and SELECT) inserted for sessions that sent none",
  options: [
    {
      name: 'redis-auth',
      arg: '[USER:]PASSWORD',
      repeatable: true,
      doc: "the target's password of the default user (PASSWORD: requirepass) or of an ACL user (USER:PASSWORD; a default password with ':' is default:PASSWORD); '' = that user needs no password; captured AUTH / HELLO AUTH of the user are rewritten to it, sessions that sent none get an AUTH inserted; no original equivalent",
    },
    {
      name: 'redis-login',
      arg: 'USER',
      repeatable: false,
      doc: 'the user of the AUTH inserted for a session that sent none (picked up mid-stream) when no captured AUTH of its client is stored; needs a --redis-auth; default: the default user if it has a --redis-auth, else the only --redis-auth user',
    },
  ],
  createModule: (opts) => createRedisModule(parseRedisOptions(opts)),
};
