/**
 * Imports a folder of DICOM files: walks it recursively (symbolic links are not followed, so a
 * link cycle cannot loop), takes every regular file with the Part 10 marker "DICM" at offset 128,
 * skips the rest (counted), and hands each file's bytes to `onInstance` one at a time, in sorted
 * path order. A file `onInstance` refuses (or that cannot be read) is listed with its reason and
 * the import goes on.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { DicomError, errorMessage } from '../../shared/errors.js';

export interface FolderImportLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface FolderImportResult {
  imported: number;
  /** Files without the DICM marker (not DICOM Part 10), not handed over. */
  skipped: number;
  refused: { file: string; reason: string }[];
}

/** True when the file has the Part 10 preamble and "DICM" marker. */
export function hasDicmMagic(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(132);
    const n = readSync(fd, head, 0, 132, 0);
    return n === 132 && head.toString('latin1', 128, 132) === 'DICM';
  } finally {
    closeSync(fd);
  }
}

export async function importDicomFolder(
  folder: string,
  onInstance: (p10: Uint8Array, source: { kind: 'import'; file: string }) => Promise<void>,
  log: FolderImportLog,
): Promise<FolderImportResult> {
  let entries;
  try {
    entries = await readdir(folder, { recursive: true, withFileTypes: true });
  } catch (err) {
    throw new DicomError(`cannot read the folder ${folder}: ${errorMessage(err)}`, { cause: err });
  }
  const files = entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
  const result: FolderImportResult = { imported: 0, skipped: 0, refused: [] };
  for (const path of files) {
    const file = relative(folder, path).split(sep).join('/');
    try {
      if (!hasDicmMagic(path)) {
        result.skipped++;
        continue;
      }
      await onInstance(new Uint8Array(await readFile(path)), { kind: 'import', file });
      result.imported++;
    } catch (err) {
      const reason = errorMessage(err).slice(0, 300);
      result.refused.push({ file, reason });
      log.warn({ file, reason }, 'DICOM import: file refused');
    }
  }
  log.info({ folder, imported: result.imported, skipped: result.skipped, refused: result.refused.length }, 'DICOM folder imported');
  return result;
}
