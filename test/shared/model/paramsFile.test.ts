import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { zooModel } from '../../../models/zoo.js';
import { ParamsError } from '../../../shared/errors.js';
import { initParams } from '../../../shared/model/initParams.js';
import { modelVersionId, paramsSha256, specHash, versionHashes } from '../../../shared/model/modelHash.js';
import { decodeParamsFile, encodeParamsFile, loadParamsFile, saveParamsFile } from '../../../shared/model/paramsFile.js';
import { layoutOf } from '../../../shared/model/parameterLayout.js';
import { makeTempDir } from '../../helpers/paths.js';

describe('shared/model/paramsFile and hashing', () => {
  const spec = zooModel('mlp-tabular', { numFeatures: 5, numClasses: 3, hidden: [4] });
  const params = initParams(spec, 7);

  it('init is deterministic per seed, Glorot-bounded, with zero biases', () => {
    assert.deepEqual(initParams(spec, 7), params);
    assert.notDeepEqual(initParams(spec, 8), params);
    const layout = layoutOf(spec);
    const k = layout.entries[0];
    const limit = Math.sqrt(6 / (5 + 4));
    for (let i = 0; i < 20; i++) assert.ok(Math.abs(params[k.offset + i]) <= limit);
    const bias = layout.entries[1];
    assert.ok(params.subarray(bias.offset, bias.offset + 4).every((v) => v === 0));
  });

  it('round-trips exactly and carries its spec', () => {
    const { spec: back, params: p, header } = decodeParamsFile(encodeParamsFile(spec, params), 'mem');
    assert.deepEqual(p, params);
    assert.deepEqual(back, spec);
    assert.equal(header.sha256, paramsSha256(params));
    assert.equal(header.specHash, specHash(spec));
  });

  it('saves atomically and loads from disk', () => {
    const t = makeTempDir();
    try {
      const file = join(t.dir, 'p.fmp');
      saveParamsFile(file, spec, params);
      assert.deepEqual(loadParamsFile(file, spec).params, params);
    } finally {
      t.cleanup();
    }
  });

  it('a big model saved in parts is byte-identical to the encoded file; both hashes of a version come from one pass', () => {
    const big = zooModel('mlp-tabular', { numFeatures: 300, numClasses: 2, hidden: [300] }); // ~361 KB: many hash blocks
    const p = initParams(big, 3);
    const t = makeTempDir();
    try {
      const file = join(t.dir, 'big.fmp');
      saveParamsFile(file, big, p);
      assert.ok(readFileSync(file).equals(encodeParamsFile(big, p)));
    } finally {
      t.cleanup();
    }
    assert.deepEqual(versionHashes(big, p), { id: modelVersionId(big, p), paramsSha256: paramsSha256(p) });
  });

  it('the version id changes with any parameter bit', () => {
    const changed = params.slice();
    changed[3] = Math.fround(changed[3] + 1e-6);
    assert.notEqual(modelVersionId(spec, params), modelVersionId(spec, changed));
    assert.equal(modelVersionId(spec, params), modelVersionId(spec, params.slice()));
  });

  const bytes = encodeParamsFile(spec, params);
  const cases: [string, () => Uint8Array, RegExp][] = [
    ['bad magic', () => Buffer.concat([Buffer.from('NOTFEDMD'), bytes.subarray(8)]), /bad magic/],
    ['truncated payload', () => bytes.subarray(0, bytes.length - 4), /truncated or padded/],
    ['flipped payload bit', () => { const b = Buffer.from(bytes); b[b.length - 1] ^= 1; return b; }, /SHA-256 .* does not match/],
    ['header not JSON', () => { const b = Buffer.from(bytes); b[12] = 0x7b; b[13] = 0x7b; return b; }, /not valid JSON/],
    ['edited spec in header', () => Buffer.from(bytes.toString('latin1').replace('"units":4', '"units":5'), 'latin1'), /spec hash|layout/],
  ];
  for (const [what, make, message] of cases) {
    it(`refuses a file with ${what}`, () => {
      assert.throws(() => decodeParamsFile(make(), 'p.fmp'), (e: unknown) => e instanceof ParamsError && /p\.fmp/.test(e.message) && message.test(e.message));
    });
  }

  it('refuses parameters of another model', () => {
    const other = zooModel('mlp-tabular', { numFeatures: 5, numClasses: 2, hidden: [4] });
    assert.throws(() => decodeParamsFile(bytes, 'p.fmp', other), /belong to a different model/);
  });

  it('names a missing file', () => {
    const t = makeTempDir();
    try {
      const file = join(t.dir, 'nope.fmp');
      assert.throws(() => loadParamsFile(file), (e: unknown) => e instanceof ParamsError && e.message.includes('nope.fmp') && e.message.includes('ENOENT'));
      writeFileSync(file, 'x');
      assert.throws(() => loadParamsFile(file), /bad magic/);
    } finally {
      t.cleanup();
    }
  });
});
