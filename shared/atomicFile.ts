/**
 * Atomic, durable file writes: write a temporary file beside the target, fsync it, rename it
 * over the target, then fsync the directory. Readers (and a crash half-way) never see a
 * half-written model or data file, and once the call returns the new content survives a power
 * loss or kernel crash too — without the file fsync a journaling file system may persist the
 * rename before the data (an empty file after reboot), without the directory fsync the rename
 * itself may be lost (e.g. a privacy-ledger charge made before an update left the site).
 * `bytes` may be given in parts (e.g. a header and a view of a big vector): written in order
 * with one writev, without first copying them into one buffer.
 *
 * Files are created owner-only (0600) unless `mode` says otherwise: nearly everything fedmed
 * writes is state (keys, tokens, ledgers, models, the coordinator's store); a file the user asked
 * for by name (`--out`) passes 0o644. The mode is set on the temporary file, so a rewrite also
 * replaces a file left group- or world-readable by an older version.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writevSync } from 'node:fs';
import { dirname } from 'node:path';

export function writeFileAtomic(path: string, bytes: Uint8Array | readonly Uint8Array[], mode = 0o600): void {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  const parts = bytes instanceof Uint8Array ? [bytes] : bytes;
  try {
    const fd = openSync(tmp, 'w', mode);
    try {
      const total = parts.reduce((n, p) => n + p.byteLength, 0);
      let written = 0;
      // writev may write less than asked (large files, signals): go on from where it stopped.
      while (written < total) written += writevSync(fd, remaining(parts, written));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDirectory(dirname(path));
}

/** Makes a rename in `dir` durable. Platforms that cannot open a directory (Windows) skip it. */
function fsyncDirectory(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch (err) {
    if (process.platform === 'win32') return;
    throw err;
  }
  try {
    fsyncSync(fd);
  } catch (err) {
    // Some file systems refuse fsync on a directory (EINVAL/EPERM, e.g. some network mounts).
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EPERM' && code !== 'EISDIR') throw err;
  } finally {
    closeSync(fd);
  }
}

/** The parts' bytes from offset `from` on. */
function remaining(parts: readonly Uint8Array[], from: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let skip = from;
  for (const p of parts) {
    if (skip >= p.byteLength) {
      skip -= p.byteLength;
      continue;
    }
    out.push(skip > 0 ? p.subarray(skip) : p);
    skip = 0;
  }
  return out;
}
