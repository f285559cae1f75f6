/**
 * One writer per data dir: a running coordinator holds DATA_DIR/coordinator.lock (its pid).
 * Offline admin commands (`fedmed site add --data-dir`) refuse to edit a store that a live
 * coordinator is writing; a lock left by a crashed coordinator is taken over.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../shared/atomicFile.js';
import { UsageError } from '../../shared/errors.js';

function lockPath(dataDir: string): string {
  return join(dataDir, 'coordinator.lock');
}

/** The pid of a live coordinator using this data dir, or null. */
export function runningCoordinatorPid(dataDir: string): number | null {
  let pid: number;
  try {
    pid = Number(readFileSync(lockPath(dataDir), 'utf8').trim());
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return null;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return null; // stale lock
  }
}

export function acquireDataDirLock(dataDir: string): void {
  const pid = runningCoordinatorPid(dataDir);
  if (pid) throw new UsageError(`${dataDir} is in use by a running coordinator (pid ${pid})`);
  writeFileAtomic(lockPath(dataDir), Buffer.from(String(process.pid)));
}

export function releaseDataDirLock(dataDir: string): void {
  rmSync(lockPath(dataDir), { force: true });
}
