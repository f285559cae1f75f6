import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { DataFormatError } from '../../../shared/errors.js';
import { loadCsv, parseCsv, standardize } from '../../../edge-client/data/csvLoader.js';
import { stratifiedSplit } from '../../../edge-client/data/dataset.js';
import { loadDataset } from '../../../edge-client/data/loadDataset.js';
import { loadPngFolder } from '../../../edge-client/data/pngFolderLoader.js';
import { syntheticImages } from '../../../edge-client/data/syntheticImages.js';
import { makeTempDir, sharedDataFile } from '../../helpers/paths.js';

describe('edge-client/data: CSV, PNG folders, splits, synthetic images', () => {
  it('CSV: header detection, mean imputation of missing values, integer labels', () => {
    const d = parseCsv('age,chol,label\n50,200,0\n60,?,1\n,300,1\n', 'h.csv');
    assert.deepEqual(d.featureNames, ['age', 'chol']);
    assert.deepEqual([...d.y], [0, 1, 1]);
    assert.deepEqual([...d.x], [50, 200, 60, 250, 55, 300]);
  });

  it('CSV: string labels map to sorted classes; --binarize-label maps > 0 to 1; rows without a label are dropped', () => {
    const d = parseCsv('1,2,benign\n3,4,malignant\n5,6,benign\n', 's.csv');
    assert.deepEqual(d.classValues, ['benign', 'malignant']);
    assert.deepEqual([...d.y], [0, 1, 0]);
    const h = parseCsv('1,0\n2,3\n3,?\n4,1\n', 'b.csv', { binarizeLabel: true });
    assert.deepEqual([...h.y], [0, 1, 1]);
    assert.equal(h.rowsDropped, 1);
  });

  it('CSV: an unparsable value is an error naming file, line and column', () => {
    assert.throws(() => parseCsv('a,b,y\n1,2,0\n3,abc,1\n', 'bad.csv'), (e: unknown) => e instanceof DataFormatError && /bad\.csv: line 3, column "b": cannot parse "abc"/.test(e.message));
    assert.throws(() => parseCsv('a,b\n1,2,3\n', 'ragged.csv'), /ragged\.csv: malformed CSV/);
    assert.throws(() => parseCsv('a,b\n1,2\n', 'l.csv', { labelColumn: 'target' }), /label column "target" not found/);
  });

  it('reads the real UCI Cleveland file (missing values as "?")', function () {
    const file = sharedDataFile('uci_heart_disease/processed.cleveland.data');
    if (!file) this.skip();
    const d = loadCsv(file!, { binarizeLabel: true });
    assert.equal(d.y.length, 303);
    assert.equal(d.exampleShape[0], 13);
    assert.equal([...d.y].filter((v) => v === 1).length, 139);
    assert.ok(d.x.every(Number.isFinite));
  });

  it('standardize uses train statistics for every split', () => {
    const d = parseCsv('1,0\n3,1\n5,0\n7,1\n', 'z.csv');
    const [a, b] = [{ ...d, x: d.x.slice(0, 2), y: d.y.slice(0, 2) }, { ...d, x: d.x.slice(2), y: d.y.slice(2) }];
    const { mean, std } = standardize(a, b);
    assert.equal(mean[0], 2);
    assert.equal(std[0], 1);
    assert.deepEqual([...b.x], [3, 5]);
  });

  it('stratified split keeps class balance and is seeded', () => {
    const d = syntheticImages({ n: 200, numClasses: 4, seed: 1 });
    const [tr, te] = stratifiedSplit(d, [0.75, 0.25], 3);
    assert.equal(tr.y.length + te.y.length, 200);
    const counts = [0, 1, 2, 3].map((c) => [...te.y].filter((v) => v === c).length);
    assert.ok(counts.every((k) => k >= 12 && k <= 13), String(counts));
    assert.deepEqual(stratifiedSplit(d, [0.75, 0.25], 3)[1].y, te.y);
    assert.throws(() => stratifiedSplit(d, [0.5, 0.6], 1), /sum to 1/);
  });

  it('synthetic images are seeded and differ by scanner profile', () => {
    const a = syntheticImages({ n: 10, seed: 5 });
    assert.deepEqual(syntheticImages({ n: 10, seed: 5 }).x, a.x);
    const shifted = syntheticImages({ n: 10, seed: 5, scanner: { intensityShift: 0.2 } });
    const mean = (x: Float32Array): number => x.reduce((s, v) => s + v, 0) / x.length;
    assert.ok(mean(shifted.x) > mean(a.x) + 0.1);
  });

  it('PNG folder: one class per sub-folder, grayscale in [0,1]; mixed sizes and broken files are refused', () => {
    const t = makeTempDir();
    try {
      const write = (rel: string, w: number, h: number, value: number): void => {
        const png = new PNG({ width: w, height: h });
        png.data.fill(value);
        for (let i = 3; i < png.data.length; i += 4) png.data[i] = 255;
        writeFileSync(join(t.dir, rel), PNG.sync.write(png));
      };
      mkdirSync(join(t.dir, 'benign'));
      mkdirSync(join(t.dir, 'malignant'));
      for (let i = 0; i < 4; i++) write(`benign/${i}.png`, 6, 5, 0);
      for (let i = 0; i < 4; i++) write(`malignant/${i}.png`, 6, 5, 255);
      const d = loadPngFolder(t.dir);
      assert.deepEqual(d.classNames, ['benign', 'malignant']);
      assert.deepEqual(d.exampleShape, [5, 6, 1]);
      assert.equal(d.y.length, 8);
      assert.ok(Math.abs(d.x[d.x.length - 1] - 1) < 1e-6 && d.x[0] === 0);
      const splits = loadDataset(t.dir, { seed: 1, split: [0.5, 0.25, 0.25] });
      assert.equal(splits.train.y.length, 4);
      write('malignant/odd.png', 7, 5, 10);
      assert.throws(() => loadPngFolder(t.dir), (e: unknown) => e instanceof DataFormatError && /odd\.png: image is 7x5/.test(e.message));
      writeFileSync(join(t.dir, 'malignant/odd.png'), 'not a png');
      assert.throws(() => loadPngFolder(t.dir), /odd\.png: not a valid PNG/);
    } finally {
      t.cleanup();
    }
  });
});
