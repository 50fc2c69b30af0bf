/**
 * `--module postgres`: the built-in PostgreSQL replay module as the registry knows it (its
 * options are added to tcpcopy's option table; see module.ts for what it does).
 */
import type { ModuleDefinition } from '../api';
import { createPostgresModule } from './module';
import { parsePostgresOptions } from './options';

export const definition: ModuleDefinition = {
  name: 'postgres',
  summary:
    'PostgreSQL: logins redone for the target (cleartext, md5, SCRAM-SHA-256), cancel keys mapped, mid-stream sessions logged in',
  options: [
    {
      name: 'pg-user',
      arg: 'USER:PASSWORD',
      repeatable: true,
      doc: 'a role the replay logs in as and its password on the target (cleartext, md5 or SCRAM-SHA-256 as the target asks); no original equivalent',
    },
    {
      name: 'pg-users',
      arg: 'FILE',
      repeatable: false,
      readsFile: true,
      doc: 'roles and passwords from a file: USER:PASSWORD lines, # comments (--pg-user values win)',
    },
    {
      name: 'pg-login',
      arg: 'USER@DB[:PORT]',
      repeatable: true,
      doc: 'the login of sessions picked up mid-stream when no captured login of their client is stored (with :PORT only for that online port); the user needs a password; default: none (such sessions end as noLogin)',
    },
  ],
  createModule: (opts) => createPostgresModule(parsePostgresOptions(opts)),
};
