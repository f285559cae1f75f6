/** Paths for tests: the project root, temporary folders, and the optional ../shared/data sets. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Tests run from dist/test/helpers; the project root is three levels up. */
export const PROJECT_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');
export const CLI = join(PROJECT_ROOT, 'dist/cli/fedmed.js');

/** ../shared/data beside the checkout (development and CI only; the project never needs it). */
export const SHARED_DATA = resolve(PROJECT_ROOT, '../shared/data');
export function sharedDataFile(rel: string): string | null {
  const p = join(SHARED_DATA, rel);
  return existsSync(p) ? p : null;
}

export function makeTempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'fedmed-test-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
