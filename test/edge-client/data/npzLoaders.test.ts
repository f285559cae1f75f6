import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataFormatError } from '../../../shared/errors.js';
import { loadMedmnistNpz } from '../../../edge-client/data/medmnistLoader.js';
import { readNpy } from '../../../edge-client/data/npyReader.js';
import { encodeNpy, encodeNpz } from '../../../edge-client/data/npzWriter.js';
import { makeTempDir, sharedDataFile } from '../../helpers/paths.js';

describe('edge-client/data: npy/npz and MedMNIST loaders', () => {
  let t: ReturnType<typeof makeTempDir>;
  beforeEach(() => (t = makeTempDir()));
  afterEach(() => t.cleanup());

  function medmnist(name: string, overrides: Record<string, Parameters<typeof encodeNpz>[0][string]> = {}, compress = true): string {
    const n = 6;
    const images = Uint8Array.from({ length: n * 4 * 4 }, (_, i) => i % 256);
    const arrays: Parameters<typeof encodeNpz>[0] = {
      train_images: { dtype: 'u1', shape: [n, 4, 4], data: images },
      train_labels: { dtype: 'i8', shape: [n, 1], data: BigInt64Array.from([0n, 1n, 2n, 0n, 1n, 2n]) },
      test_images: { dtype: 'u1', shape: [2, 4, 4], data: images.subarray(0, 32) },
      test_labels: { dtype: 'i4', shape: [2], data: Int32Array.from([1, 0]) },
      ...overrides,
    };
    for (const k of Object.keys(arrays)) if (arrays[k] === undefined) delete arrays[k];
    const file = join(t.dir, name);
    writeFileSync(file, encodeNpz(arrays, compress));
    return file;
  }

  it('reads stored and deflated npz with (N) and (N,1) labels, scales pixels and infers classes', () => {
    for (const compress of [false, true]) {
      const d = loadMedmnistNpz(medmnist(`m${compress}.npz`, {}, compress));
      assert.deepEqual(d.train.exampleShape, [4, 4, 1]);
      assert.deepEqual([...d.train.y], [0, 1, 2, 0, 1, 2]);
      assert.deepEqual([...d.test.y], [1, 0]);
      assert.equal(d.train.numClasses, 3);
      assert.equal(d.val, undefined);
      assert.equal(d.train.x[1], Math.fround(1 / 255));
    }
  });

  it('reads the real BreastMNIST file from ../shared/data', function () {
    const file = sharedDataFile('medmnist_breast/breastmnist.npz');
    if (!file) this.skip(); // the project runs without ../shared/data
    const d = loadMedmnistNpz(file!);
    assert.deepEqual([d.train.y.length, d.val!.y.length, d.test.y.length], [546, 78, 156]);
    assert.deepEqual(d.train.exampleShape, [28, 28, 1]);
    assert.equal(d.train.numClasses, 2);
  });

  const bad: [string, () => string, RegExp][] = [
    ['a file that is not a zip', () => { const f = join(t.dir, 'x.npz'); writeFileSync(f, 'hello'); return f; }, /not a readable \.npz/],
    ['missing test arrays', () => medmnist('a.npz', { test_images: undefined as never, test_labels: undefined as never }), /missing arrays test_images, test_labels/],
    ['images and labels of different lengths', () => medmnist('b.npz', { train_labels: { dtype: 'i4', shape: [5], data: Int32Array.from([0, 1, 0, 1, 0]) } }), /6 images but train_labels has 5 labels/],
    ['labels of the wrong shape', () => medmnist('c.npz', { train_labels: { dtype: 'i4', shape: [3, 2], data: Int32Array.from([0, 1, 0, 1, 0, 1]) } }), /labels must have shape \(N\) or \(N, 1\)/],
    ['non-integer float labels', () => medmnist('d.npz', { test_labels: { dtype: 'f4', shape: [2], data: Float32Array.from([0.5, 1]) } }), /not an integer class/],
    ['images of the wrong rank', () => medmnist('e.npz', { train_images: { dtype: 'u1', shape: [6, 16], data: new Uint8Array(96) } }), /expected N x H x W/],
  ];
  for (const [what, make, message] of bad) {
    it(`refuses ${what}, naming the file`, () => {
      const file = make();
      assert.throws(() => loadMedmnistNpz(file), (e: unknown) => e instanceof DataFormatError && e.message.includes(file) && message.test(e.message));
    });
  }

  it('npy: refuses truncated data, big-endian and unsupported dtypes', () => {
    const good = encodeNpy({ dtype: 'f4', shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) });
    assert.deepEqual(Array.from(readNpy(good, 'g.npy').data), [1, 2, 3, 4]);
    assert.throws(() => readNpy(good.subarray(0, good.length - 1), 't.npy'), /needs 16 bytes but 15/);
    const text = Buffer.from(good).toString('latin1');
    assert.throws(() => readNpy(Buffer.from(text.replace('<f4', '>f4'), 'latin1'), 'b.npy'), /big-endian/);
    assert.throws(() => readNpy(Buffer.from(text.replace('<f4', '<c8'), 'latin1'), 'c.npy'), /unsupported dtype/);
    assert.throws(() => readNpy(Buffer.from('garbage!!!!!'), 'x.npy'), /bad magic/);
  });
});
