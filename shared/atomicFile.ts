/**
 * Atomic file writes: write a temporary file beside the target, then rename it over the target.
 * Readers (and a crash half-way) never leave a half-written model or data file behind.
 * `bytes` may be given in parts (e.g. a header and a view of a big vector): written in order
 * with one writev, without first copying them into one buffer.
 */
import { closeSync, openSync, renameSync, rmSync, writevSync } from 'node:fs';

export function writeFileAtomic(path: string, bytes: Uint8Array | readonly Uint8Array[], mode = 0o644): void {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  const parts = bytes instanceof Uint8Array ? [bytes] : bytes;
  try {
    const fd = openSync(tmp, 'w', mode);
    try {
      const total = parts.reduce((n, p) => n + p.byteLength, 0);
      let written = 0;
      // writev may write less than asked (large files, signals): go on from where it stopped.
      while (written < total) written += writevSync(fd, remaining(parts, written));
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
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
