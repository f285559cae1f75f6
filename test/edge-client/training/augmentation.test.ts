import assert from 'node:assert/strict';
import { UsageError } from '../../../shared/errors.js';
import { ImageAugmenter, parseAugment } from '../../../edge-client/training/augmentation.js';

describe('edge-client/training/augmentation', () => {
  const img = Float32Array.from({ length: 3 * 4 }, (_, i) => i + 1); // 3x4, 1 channel

  it('flip mirrors rows; shifts move pixels and fill with zeros; seeded', () => {
    const flips = new ImageAugmenter([3, 4, 1], { flip: true, maxShift: 0 }, 1);
    const seen = new Set<string>();
    for (let k = 0; k < 20; k++) {
      const b = img.slice();
      flips.apply(b, 1);
      seen.add(Array.from(b).join(','));
    }
    assert.deepEqual([...seen].sort(), ['1,2,3,4,5,6,7,8,9,10,11,12', '4,3,2,1,8,7,6,5,12,11,10,9']);

    const shifts = new ImageAugmenter([3, 4, 1], { flip: false, maxShift: 1 }, 2);
    for (let k = 0; k < 20; k++) {
      const b = img.slice();
      shifts.apply(b, 1);
      const zeros = b.filter((v) => v === 0).length;
      assert.ok([0, 3, 4, 6].includes(zeros), `zeros ${zeros}`); // none, a row, a column, or both
      for (const v of b) assert.ok(v === 0 || img.includes(v));
    }
    const a1 = img.slice();
    const a2 = img.slice();
    new ImageAugmenter([3, 4, 1], { flip: true, maxShift: 1 }, 9).apply(a1, 1);
    new ImageAugmenter([3, 4, 1], { flip: true, maxShift: 1 }, 9).apply(a2, 1);
    assert.deepEqual(a1, a2);
  });

  it('parses the CLI form and rejects unknown augmentations', () => {
    assert.equal(parseAugment('none'), undefined);
    assert.deepEqual(parseAugment('flip,shift=2'), { flip: true, maxShift: 2 });
    assert.throws(() => parseAugment('rotate'), UsageError);
    assert.throws(() => new ImageAugmenter([13], { flip: true, maxShift: 0 }, 1), /needs image inputs/);
  });
});
