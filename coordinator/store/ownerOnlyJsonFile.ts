/**
 * lowdb's JSON file adapter with the file owner-only: the document names every site and holds
 * token hashes, and lowdb's own writer (steno) creates its temporary file with the default mode
 * (0644 under the usual umask), which the rename then gives the document. Same on-disk format
 * and the same atomicity (temporary file + rename); the temporary file is made 0600 before a
 * byte is written. Writes are serialised by the caller (CoordinatorStore).
 */
import { chmod, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Adapter } from 'lowdb';

export class OwnerOnlyJsonFile<T> implements Adapter<T> {
  private readonly tmp: string;

  constructor(private readonly file: string) {
    this.tmp = join(dirname(file), `.${basename(file)}.tmp`);
  }

  async read(): Promise<T | null> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    return JSON.parse(text) as T;
  }

  async write(data: T): Promise<void> {
    // 'w' keeps the mode of a temporary file left by a crash: remove it, then create it 0600.
    await rm(this.tmp, { force: true });
    const fh = await open(this.tmp, 'wx', 0o600);
    try {
      await fh.chmod(0o600); // whatever the umask
      await fh.writeFile(JSON.stringify(data, null, 2), 'utf8');
    } finally {
      await fh.close();
    }
    await rename(this.tmp, this.file);
  }
}

/** Makes an existing file owner-only (a document written by an older version, 0644). */
export async function ownerOnly(file: string): Promise<void> {
  try {
    await chmod(file, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
