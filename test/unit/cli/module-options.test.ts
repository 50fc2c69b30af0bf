/** --module, --module-opt and module loading: usage errors, a missing built-in, a user's module file checked. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseTcpcopyArgs } from '../../../src/cli/tcpcopy-config';
import { TcpcopyError } from '../../../src/core/errors';
import { loadModule } from '../../../src/run/module-load';
import { builtinDefinition } from '../../../src/modules/registry';

const BASE = ['-x', '80-198.18.0.2:8080', '-s', '198.18.0.3'];
const EXAMPLE = path.resolve(__dirname, '../../../../examples/modules/http-host.js');

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof TcpcopyError, String(e));
    return `${e.code}: ${e.message}`;
  }
  return 'no error';
}

test('--module: a built-in name or a path; anything else is a usage error listing the built-ins', () => {
  assert.equal(parseTcpcopyArgs(BASE).module, null);
  const m = parseTcpcopyArgs([...BASE, '--module', './x.js', '--module-opt', 'a=1', '--module-opt', 'a=2=3']).module;
  assert.deepEqual(m, { spec: './x.js', builtin: false, options: { a: ['1', '2=3'] } });
  assert.equal(parseTcpcopyArgs([...BASE, '--module', 'redis']).module?.builtin, true);
  assert.match(
    code(() => parseTcpcopyArgs([...BASE, '--module', 'nosuch'])),
    /ERR_BAD_OPTION: --module nosuch: not a built-in module \(built-ins: mysql, postgres, redis\)/,
  );
  assert.match(
    code(() => parseTcpcopyArgs([...BASE, '--module-opt', 'a=1'])),
    /--module-opt a=1: needs --module PATH/,
  );
  assert.match(
    code(() => parseTcpcopyArgs([...BASE, '--module', './x.js', '--module-opt', 'novalue'])),
    /expected KEY=VALUE/,
  );
  assert.match(
    code(() => parseTcpcopyArgs([...BASE, '--module', 'redis', '--module-opt', 'a=1'])),
    /takes its own options/,
  );
});

test('a built-in that is not in this build is a clear ERR_MODULE, not a crash', () => {
  let present = true;
  try {
    builtinDefinition('postgres');
  } catch (e) {
    present = false;
    assert.ok(e instanceof TcpcopyError);
    assert.equal(e.code, 'ERR_MODULE');
    assert.match(e.message, /--module postgres: the built-in module 'postgres' is not in this build/);
  }
  if (!present)
    assert.match(
      code(() => loadModule({ spec: 'postgres', builtin: true, options: {} })),
      /ERR_MODULE: --module postgres/,
    );
});

test("a user's module file: loaded with its options, or refused with the field that is wrong", () => {
  const m = loadModule({ spec: EXAMPLE, builtin: false, options: { host: ['h.example'] } });
  assert.equal(m?.name, 'httphost');
  assert.match(
    code(() => loadModule({ spec: EXAMPLE, builtin: false, options: { host: ['bad host!'] } })),
    /ERR_MODULE: .*host=bad host!: not a host name/,
  );
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcpcopy-mod-'));
  try {
    const bad = path.join(dir, 'bad.js');
    fs.writeFileSync(bad, "module.exports = { createModule: () => ({ name: 'x', wantsTargetPayload: true }) };");
    assert.match(
      code(() => loadModule({ spec: bad, builtin: false, options: {} })),
      /not a protocol module: wantsOnlineReplies must be true or false/,
    );
    const none = path.join(dir, 'none.js');
    fs.writeFileSync(none, 'module.exports = {};');
    assert.match(
      code(() => loadModule({ spec: none, builtin: false, options: {} })),
      /does not export createModule/,
    );
    assert.match(
      code(() => loadModule({ spec: path.join(dir, 'missing.js'), builtin: false, options: {} })),
      /no such file/,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
