/**
 * Failing fuzz inputs saved as regression cases: one JSON file per case in
 * test/fixtures/fuzz/, named after the target and a hash of the input. The unit suite replays
 * every file there (test/unit/fuzz/regressions.test.ts); `npm run fuzz` writes them.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fromJson, toJson } from './serialize';

/** The folder of saved cases in the source tree (this file runs from dist/test/fuzz/). */
export const FIXTURE_DIR = join(resolve(__dirname, '../../..'), 'test/fixtures/fuzz');

/** One saved case as stored. */
export interface SavedCase {
  /** Name of the fuzz target that failed. */
  target: string;
  /** What went wrong (the assertion or exception message, first lines). */
  error: string;
  /** 'failure' (a property did not hold) or 'hang' (a case ran longer than the watchdog). */
  kind: 'failure' | 'hang';
  /** fast-check seed and shrink path of the run that found it (to reproduce the search). */
  seed: number | null;
  path: string | null;
  /** When it was found (ISO). */
  found: string;
  /** The input (serialize.ts JSON). */
  input: unknown;
}

/** Saves `input` as a case for `target` in `dir`; returns the file path (same input = same file). */
export function saveCase(
  dir: string,
  c: {
    target: string;
    error: string;
    kind: 'failure' | 'hang';
    seed: number | null;
    path: string | null;
    input: unknown;
  },
): string {
  const input = toJson(c.input);
  const hash = createHash('sha256').update(JSON.stringify(input)).digest('hex').slice(0, 12);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${c.target}-${hash}.json`);
  const saved: SavedCase = {
    target: c.target,
    error: c.error.split('\n').slice(0, 12).join('\n'),
    kind: c.kind,
    seed: c.seed,
    path: c.path,
    found: new Date().toISOString(),
    input,
  };
  writeFileSync(file, JSON.stringify(saved, null, 1) + '\n');
  return file;
}

/** Every case file in `dir` (all *.json files; a file that does not parse throws, naming it). */
export function loadCases(dir: string): { file: string; saved: SavedCase; input: unknown }[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.endsWith('.json'))
    .sort()
    .map((n) => {
      const file = join(dir, n);
      let saved: SavedCase;
      try {
        saved = JSON.parse(readFileSync(file, 'utf8')) as SavedCase;
      } catch (e) {
        throw new Error(`${file}: not a saved fuzz case (${(e as Error).message})`);
      }
      if (typeof saved.target !== 'string') throw new Error(`${file}: no "target" name`);
      return { file, saved, input: fromJson(saved.input) };
    });
}
