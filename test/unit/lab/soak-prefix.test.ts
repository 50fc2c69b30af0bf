/**
 * The soak runs without the e2e lock (scripts/soak.sh) because its lab's names are its own: no
 * e2e test, bench part or the demo builds a lab whose namespaces could be the soak's. This test
 * reads every lab prefix written in those sources and fails when one would share a namespace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { allNamespaces } from '../../../src/lab/names';

// dist/test/unit/lab -> the repository
const ROOT = path.resolve(__dirname, '..', '..', '..', '..');

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Every `prefix: '...'` and `prefix ?? '...'` literal, with the file it is in. */
function labPrefixes(): Array<{ prefix: string; file: string }> {
  const out: Array<{ prefix: string; file: string }> = [];
  for (const dir of ['test/e2e', 'bench', 'src/lab']) {
    for (const f of tsFiles(path.join(ROOT, dir))) {
      const text = fs.readFileSync(f, 'utf8');
      for (const m of text.matchAll(/prefix(?::|\s*\?\?)\s*'([a-z][a-z0-9]*)'/g))
        out.push({ prefix: m[1] as string, file: path.relative(ROOT, f) });
    }
  }
  return out;
}

/** The labs in `found` (other than the soak's own file) with a namespace name the soak's lab also has. */
function clashes(
  soakPrefix: string,
  found: Array<{ prefix: string; file: string }>,
): Array<{ prefix: string; file: string }> {
  const soakNs = new Set(allNamespaces(soakPrefix));
  return found.filter((p) => p.file !== 'src/lab/soak.ts' && allNamespaces(p.prefix).some((n) => soakNs.has(n)));
}

test('soak prefix: no other lab in the sources shares a namespace name with the soak', async () => {
  const { SOAK_PREFIX } = await import('../../../src/lab/soak');
  const found = labPrefixes();
  // the scan must see the labs it guards against (a broken pattern would pass vacuously)
  assert.ok(found.filter((p) => p.file.startsWith('test/e2e')).length >= 10, 'scan found the e2e prefixes');
  assert.ok(
    found.some((p) => p.prefix === 'demo'),
    'scan found the demo prefix',
  );
  assert.deepEqual(clashes(SOAK_PREFIX, found), []);
});

test('soak prefix: the check reports a lab that uses the soak prefix', async () => {
  const { SOAK_PREFIX } = await import('../../../src/lab/soak');
  const found = [
    { prefix: 'tcb1', file: 'test/e2e/a.test.ts' },
    { prefix: SOAK_PREFIX, file: 'test/e2e/b.test.ts' },
    { prefix: SOAK_PREFIX, file: 'src/lab/soak.ts' },
  ];
  assert.deepEqual(clashes(SOAK_PREFIX, found), [{ prefix: SOAK_PREFIX, file: 'test/e2e/b.test.ts' }]);
});
