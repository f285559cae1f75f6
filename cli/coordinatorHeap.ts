/**
 * The coordinator process's V8 young generation. The coordinator's working set is a few big
 * buffers outside the JS heap (models, updates, frames); left at V8's default, the young
 * generation grows to 2 × 16 MB while modules load and stays there, adding only to peak RSS
 * (round benchmark, same session: 198–214 MB with the default, 161–179 MB with 4 MB
 * semi-spaces, round time unchanged). V8 reads the size only at start-up, so
 * `fedmed coordinator start` re-executes itself with it (process.execve: the same process id,
 * stdio and environment) unless a size was given explicitly.
 */
export const COORDINATOR_SEMI_SPACE_MB = 4;

/** Re-executes this process with the coordinator's heap settings if it lacks them; returns if nothing to do. */
export function reexecWithCoordinatorHeap(): void {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS?.split(/\s+/) ?? [])].some((a) => a.startsWith('--max-semi-space-size'));
  // process.execve exists from Node 22.15 on POSIX systems; elsewhere V8's default stays.
  if (given || typeof process.execve !== 'function' || process.platform === 'win32') return;
  process.execve(process.execPath, [process.execPath, `--max-semi-space-size=${COORDINATOR_SEMI_SPACE_MB}`, ...process.execArgv, ...process.argv.slice(1)], process.env);
}
