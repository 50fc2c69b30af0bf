/** --max-gap (issue 18 item 8): seconds on the command line, ms in the config, one hour by default. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseTcpcopyArgs } from '../../../src/cli/tcpcopy-config';
import { helpText } from '../../../src/cli/tcpcopy-options';
import { TcpcopyError } from '../../../src/core/errors';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tc-maxgap-'));
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = path.join(dir, 'x.pcap');
fs.writeFileSync(file, Buffer.alloc(24));
const base = ['-x', '80-198.18.0.2:80', '-s', '198.18.0.3', '-i', file];

test('--max-gap: default one hour, seconds given, 0 = off, bad values named', () => {
  assert.equal(parseTcpcopyArgs(base).maxGapMs, 3_600_000);
  assert.equal(parseTcpcopyArgs([...base, '--max-gap', '90']).maxGapMs, 90_000);
  assert.equal(parseTcpcopyArgs([...base, '--max-gap=0.5']).maxGapMs, 500);
  assert.equal(parseTcpcopyArgs([...base, '--max-gap', '0']).maxGapMs, 0);
  assert.throws(
    () => parseTcpcopyArgs([...base, '--max-gap', 'x']),
    (e: unknown) => e instanceof TcpcopyError && /--max-gap/.test(e.message),
  );
  assert.match(helpText('0'), /--max-gap SECONDS/);
});
