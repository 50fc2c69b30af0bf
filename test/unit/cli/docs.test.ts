/** The docs agree with the code: doc/usage.md with the option tables, doc/errors.md with the error registry. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { TCPCOPY_OPTIONS } from '../../../src/cli/tcpcopy-options';
import { INTERCEPT_OPTIONS } from '../../../src/cli/intercept-options';
import { AGENT_OPTIONS } from '../../../src/agent/agent-options';
import type { OptionSpec } from '../../../src/cli/option-table';
import { ERROR_CODES, EXIT } from '../../../src/core/errors';

const DOC = path.resolve(__dirname, '../../../../doc');
const read = (f: string): string => fs.readFileSync(path.join(DOC, f), 'utf8');

/** The table rows (cells without backticks) of the part of `md` between two headings. */
function rows(md: string, from: string, to?: string): string[][] {
  const start = md.indexOf(from);
  const end = to === undefined ? md.length : md.indexOf(to, start + 1);
  assert.ok(start >= 0 && end > start, `${from} .. ${to ?? 'the end'}`);
  return md
    .slice(start, end)
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .map((l) =>
      l
        .replace(/\\\|/g, '\u00a6')
        .split('|')
        .slice(1, -1)
        .map((c) =>
          c
            .trim()
            .replace(/`/g, '')
            .replace(/\u00a6/g, '|'),
        ),
    );
}

function checkTable(table: readonly OptionSpec[], docRows: string[][], where: string): void {
  for (const o of table) {
    const flags = `${o.short !== undefined ? `-${o.short}, ` : ''}--${o.long}`;
    const row = docRows.find((r) => (r[0] ?? '').split(' / ').some((f) => f === flags || f.startsWith(`${flags},`)));
    assert.ok(row !== undefined, `${where}: no row for ${flags}`);
    if (o.def === undefined) continue;
    const def = row[row.length - 1] ?? '';
    assert.ok(def.includes(o.def), `${where} ${flags}: default "${def}" does not say "${o.def}" (the option table's)`);
  }
}

test('doc/usage.md lists every tcpcopy option with the default of the option table', () => {
  checkTable(TCPCOPY_OPTIONS, rows(read('usage.md'), '## TCPCOPY OPTIONS', '## INTERCEPT OPTIONS'), 'tcpcopy');
});

test('doc/usage.md lists every intercept option with the default of the option table', () => {
  checkTable(INTERCEPT_OPTIONS, rows(read('usage.md'), '## INTERCEPT OPTIONS', '## EXAMPLES'), 'intercept');
});

test('doc/usage.md lists every tcpcopy agent option with the default of the option table', () => {
  checkTable(AGENT_OPTIONS, rows(read('usage.md'), '## AGENT OPTIONS', '## SEE ALSO'), 'agent');
});

test('doc/errors.md lists every error code with its meaning, and no other code', () => {
  const md = read('errors.md');
  const listed = new Map(rows(md, '## Error codes').map((r) => [r[0] ?? '', r[1] ?? '']));
  for (const [code, meaning] of Object.entries(ERROR_CODES)) assert.equal(listed.get(code), meaning, code);
  for (const code of md.match(/ERR_[A-Z_]+/g) ?? []) assert.ok(code in ERROR_CODES, `${code} is not registered`);
});

test('doc/errors.md and doc/usage.md give the exit statuses of EXIT', () => {
  const md = read('errors.md');
  for (const [name, status] of Object.entries(EXIT)) assert.ok(md.includes(`| ${status} | \`EXIT.${name}\` |`), name);
  const usage = read('usage.md');
  for (const [name, status] of Object.entries(EXIT)) assert.ok(usage.includes(`${status} = `), `usage.md: ${name}`);
});
