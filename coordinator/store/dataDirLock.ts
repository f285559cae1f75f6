/**
 * One writer per data dir: a running coordinator holds DATA_DIR/coordinator.lock (its pid and
 * host). Offline admin commands (`fedmed site add --data-dir`) refuse to edit a store that a live
 * coordinator is writing; a lock left by a crashed coordinator on this host is taken over. A lock
 * written on another host (a data dir on shared storage) cannot be checked from here and counts
 * as live, except for a coordinator holding the PostgreSQL standby lease (standbyLease.ts), which
 * proves the other holder lost it: takeOverDataDirLockWithLease.
 */
import { readFileSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../shared/atomicFile.js';
import { UsageError } from '../../shared/errors.js';

function lockPath(dataDir: string): string {
  return join(dataDir, 'coordinator.lock');
}

/** The lock's pid and host (a lock from before hosts were recorded: this host), or null. */
function readLock(dataDir: string): { pid: number; host: string } | null {
  let text: string;
  try {
    text = readFileSync(lockPath(dataDir), 'utf8');
  } catch {
    return null;
  }
  const [pidText, host] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  return { pid, host: host || hostname() };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false; // stale lock
  }
}

/** The pid of a live coordinator using this data dir, or null. */
export function runningCoordinatorPid(dataDir: string): number | null {
  const lock = readLock(dataDir);
  if (!lock) return null;
  if (lock.host !== hostname()) return lock.pid; // (on another host: cannot be checked from here)
  if (lock.pid === process.pid) return null;
  return alive(lock.pid) ? lock.pid : null;
}

export function acquireDataDirLock(dataDir: string): void {
  const pid = runningCoordinatorPid(dataDir);
  if (pid) {
    const host = readLock(dataDir)?.host;
    const where = host && host !== hostname() ? ` on host ${host}; if it is gone, remove ${lockPath(dataDir)}` : '';
    throw new UsageError(`${dataDir} is in use by a running coordinator (pid ${pid}${where})`);
  }
  writeFileAtomic(lockPath(dataDir), Buffer.from(`${process.pid} ${hostname()}`));
}

/**
 * For a coordinator that has just taken the PostgreSQL lease: the previous holder lost it and
 * stops (standbyLease.ts), so a lock it left on another host is removed, and one on this host is
 * given up to `waitMs` to be released by its process exiting. acquireDataDirLock then decides.
 */
export async function takeOverDataDirLockWithLease(dataDir: string, waitMs = 3000): Promise<void> {
  const lock = readLock(dataDir);
  if (!lock) return;
  if (lock.host !== hostname()) return void rmSync(lockPath(dataDir), { force: true });
  const until = Date.now() + waitMs;
  while (lock.pid !== process.pid && alive(lock.pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
}

export function releaseDataDirLock(dataDir: string): void {
  rmSync(lockPath(dataDir), { force: true });
}
