/**
 * Atomic file writes: write a temporary file beside the target, then rename it over the target.
 * Readers (and a crash half-way) never leave a half-written model or data file behind.
 */
import { renameSync, rmSync, writeFileSync } from 'node:fs';

export function writeFileAtomic(path: string, bytes: Uint8Array, mode = 0o644): void {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  try {
    writeFileSync(tmp, bytes, { mode });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
