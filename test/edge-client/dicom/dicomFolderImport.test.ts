/**
 * Folder import: recursive walk, DICM-marker check, relative paths as the source, refusals
 * listed (and the import going on), non-DICOM files skipped and counted.
 */
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importDicomFolder } from '../../../edge-client/dicom/dicomFolderImport.js';
import { DicomError } from '../../../shared/errors.js';
import { makeTempDir } from '../../helpers/paths.js';

function fakeP10(tag: string): Buffer {
  const b = Buffer.alloc(200);
  b.write('DICM', 128, 'latin1');
  b.write(tag, 140, 'latin1');
  return b;
}

describe('importDicomFolder', () => {
  const t = makeTempDir();
  after(() => t.cleanup());

  it('imports every DICM file recursively, skips the rest, lists refusals and goes on', async () => {
    const root = join(t.dir, 'in');
    mkdirSync(join(root, 'a', 'b'), { recursive: true });
    writeFileSync(join(root, 'one.dcm'), fakeP10('one'));
    writeFileSync(join(root, 'a', 'b', 'two'), fakeP10('two'));
    writeFileSync(join(root, 'a', 'bad.dcm'), fakeP10('bad'));
    writeFileSync(join(root, 'README.txt'), 'not dicom');
    writeFileSync(join(root, 'a', 'short.dcm'), Buffer.alloc(10));
    symlinkSync(root, join(root, 'a', 'loop')); // a link cycle is not followed
    const seen: string[] = [];
    const warnings: string[] = [];
    const r = await importDicomFolder(
      root,
      async (p10, source) => {
        assert.equal(source.kind, 'import');
        if (Buffer.from(p10).toString('latin1', 140, 143) === 'bad') throw new DicomError('no pixel data');
        seen.push(source.file);
      },
      { info: () => {}, warn: (_o, m) => warnings.push(m) },
    );
    assert.deepEqual(seen.sort(), ['a/b/two', 'one.dcm']);
    assert.equal(r.imported, 2);
    assert.equal(r.skipped, 2);
    assert.deepEqual(r.refused, [{ file: 'a/bad.dcm', reason: 'no pixel data' }]);
    assert.equal(warnings.length, 1);
  });

  it('refuses a folder that does not exist with a DicomError', async () => {
    await assert.rejects(importDicomFolder(join(t.dir, 'nope'), async () => {}, { info: () => {}, warn: () => {} }), (e: unknown) => e instanceof DicomError && /cannot read the folder/.test(e.message));
  });
});
