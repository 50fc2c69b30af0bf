/**
 * `--module mysql`: the built-in MySQL/MariaDB replay module as the registry knows it (its
 * options are added to tcpcopy's option table; see module.ts for what it does).
 */
import type { ModuleDefinition } from '../api';
import { createMysqlModule } from './module';
import { parseMysqlOptions } from './options';

export const definition: ModuleDefinition = {
  name: 'mysql',
  summary:
    'MySQL/MariaDB: logins redone for the target (mysql_native_password), prepared-statement ids mapped, mid-stream sessions logged in',
  options: [
    {
      name: 'mysql-user',
      arg: 'USER:PASSWORD',
      repeatable: true,
      doc: "a user the replay logs in as and its password on the target (mysql_native_password); the original's `user USER@PASSWORD;` in conf/plugin.conf",
    },
    {
      name: 'mysql-users',
      arg: 'FILE',
      repeatable: false,
      readsFile: true,
      doc: "users and passwords from a file: USER:PASSWORD lines, or the original's plugin.conf lines `user u1@p1,u2@p2;`; # comments (--mysql-user values win)",
    },
    {
      name: 'mysql-login',
      arg: 'USER[@DB][:PORT]',
      repeatable: true,
      doc: 'the login for sessions picked up mid-stream when no captured login of their client is stored (with :PORT only for that online port); the user needs a password; default: none (such sessions end as noLogin)',
    },
  ],
  createModule: (opts) => createMysqlModule(parseMysqlOptions(opts)),
};
