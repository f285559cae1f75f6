import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { CiphertextSum } from '../../../shared/secure/ckks/ciphertextSum.js';
import { decodeBundle, encodeBundle } from '../../../shared/secure/ckks/ciphertextBundle.js';
import { CkksError } from '../../../shared/secure/ckks/ckksErrors.js';
import { ckksMaxWeight } from '../../../shared/secure/ckks/ckksParams.js';
import { CkksSecretKey } from '../../../shared/secure/ckks/ckksSecretKey.js';
import { applyCkksAggregate, encodeCkksUpdate } from '../../../shared/secure/ckks/ckksUpdate.js';
import { unwrapSecretKey, wrapSecretKey } from '../../../shared/secure/ckks/keyWrap.js';
import { ckksContext } from '../../../shared/secure/ckks/sealContext.js';
import { x25519PublicB64 } from '../../../shared/secure/ckks/siteEncryptionKey.js';
import { SeededRng } from '../../../shared/random/seededRng.js';

function randomDelta(d: number, seed: number, scale = 0.05): Float32Array {
  const rng = new SeededRng(seed);
  return Float32Array.from({ length: d }, () => (rng.next() * 2 - 1) * scale);
}

describe('shared/secure/ckks (node-seal CKKS)', function () {
  this.timeout(60_000);
  let key: CkksSecretKey;
  let keyBytes: Uint8Array;
  before(async () => ({ key, bytes: keyBytes } = await CkksSecretKey.generate()));
  after(() => key?.dispose());

  it('the sum of encrypted weighted updates decrypts to the plain weighted sum within 1e-6, and FedAvg within 1e-6', async () => {
    const ctx = await ckksContext();
    const d = 3 * 4096 - 1; // + the weight: three full ciphertexts
    const n = 10;
    const params = { range: 1, maxWeight: ckksMaxWeight(n, 1) };
    const sum = new CiphertextSum(ctx, d + 1);
    const plain = new Float64Array(d + 1);
    const base = randomDelta(d, 99, 1);
    let bytesPerSite = 0;
    for (let s = 0; s < n; s++) {
      const delta = randomDelta(d, s + 1);
      const { values } = encodeCkksUpdate(delta, 100 + 37 * s, params);
      for (let i = 0; i <= d; i++) plain[i] += values[i];
      const bundle = key.encrypt(values);
      bytesPerSite = bundle.byteLength;
      sum.add(bundle, `site-${s}`);
    }
    const aggregate = sum.serialize();
    sum.dispose();
    const decrypted = key.decrypt(aggregate, d + 1);
    let maxErr = 0;
    for (let i = 0; i <= d; i++) maxErr = Math.max(maxErr, Math.abs(decrypted[i] - plain[i]));
    assert.ok(maxErr < 1e-6, `max abs error ${maxErr}`);
    const next = applyCkksAggregate(base, decrypted);
    const W = plain[d];
    for (let i = 0; i < d; i++) assert.ok(Math.abs(next[i] - Math.fround(base[i] + plain[i] / W)) < 1e-6, `parameter ${i}`);
    // Seed-compressed last-level ciphertexts: about 4x the raw float32 bytes.
    assert.ok(bytesPerSite / ((d + 1) * 4) < 4.5, `ratio ${bytesPerSite / ((d + 1) * 4)}`);
  });

  it('clips coordinates to the range and caps the weight', () => {
    const { values, clipped, weight } = encodeCkksUpdate(Float32Array.from([0.5, 3, -7]), 1000, { range: 2, maxWeight: 10 });
    assert.deepEqual([...values], [5, 20, -20, 10]);
    assert.equal(clipped, 2);
    assert.equal(weight, 10);
  });

  it('refuses malformed bundles, other lengths, other levels and other parameters, leaving the sum untouched', async () => {
    const ctx = await ckksContext();
    const d = 5000;
    const good = key.encrypt(encodeCkksUpdate(randomDelta(d, 7), 10, { range: 1, maxWeight: 100 }).values);
    const sum = new CiphertextSum(ctx, d + 1);
    sum.add(good, 'a');
    const refuse = (bytes: Uint8Array, pattern: RegExp) => assert.throws(() => sum.add(bytes, 'mallory'), (e: Error) => e instanceof CkksError && pattern.test(e.message));
    refuse(good.subarray(0, good.length - 10), /truncated/);
    refuse(Uint8Array.from([...good, 1, 2]), /after its last ciphertext/);
    refuse(key.encrypt(new Float64Array(d)), /holds 5000 values; this experiment needs 5001/);
    const badMagic = Uint8Array.from(good);
    badMagic[0] ^= 1;
    refuse(badMagic, /bad magic/);
    const corrupt = Uint8Array.from(good);
    corrupt[40] ^= 0xff; // inside the first ciphertext's SEAL header
    refuse(corrupt, /does not load/);
    // Encrypted at the full level (not what sites send): refused.
    const { seal, encoder } = ctx;
    const sk = await loadSealKey(keyBytes);
    const enc = new seal.Encryptor(ctx.context, new seal.KeyGenerator(ctx.context, sk).createPublicKey(), sk);
    const plain = new seal.Plaintext();
    encoder.encode(new Float64Array(4096), 2 ** 40, plain);
    const full = Uint8Array.from(enc.encryptSymmetricSerializable(plain).saveToArray(seal.ComprModeType.none) as Uint8Array);
    const bundleOf = (c: Uint8Array) => encodeBundle({ length: d + 1, ciphertexts: [c, ...decodeBundle(good, d + 1).ciphertexts.slice(1)] });
    refuse(bundleOf(full), /not at the last level/);
    // Another parameter set (N = 4096): SEAL refuses to load it in fedmed's context.
    const parms = new seal.EncryptionParameters(seal.SchemeType.ckks);
    parms.setPolyModulusDegree(4096);
    parms.setCoeffModulus(seal.CoeffModulus.Create(4096, Int32Array.from([40, 20, 40])));
    const other = new seal.SEALContext(parms, true, seal.SecLevelType.tc128);
    const otherKg = new seal.KeyGenerator(other);
    const otherEnc = new seal.Encryptor(other, otherKg.createPublicKey(), otherKg.secretKey());
    const otherPlain = new seal.Plaintext();
    new seal.CKKSEncoder(other).encode(new Float64Array(2048), 2 ** 20, otherPlain);
    refuse(bundleOf(Uint8Array.from(otherEnc.encryptSymmetricSerializable(otherPlain).saveToArray(seal.ComprModeType.none) as Uint8Array)), /does not load with the federation's CKKS parameters/);
    // Only the good update was added.
    assert.equal(sum.count, 1);
    const decrypted = key.decrypt(sum.serialize(), d + 1);
    assert.ok(Math.abs(decrypted[d] - 10) < 1e-6);
    sum.dispose();
  });

  it('wraps the secret key for one site only', async () => {
    const site = generateKeyPairSync('x25519');
    const other = generateKeyPairSync('x25519');
    const wrapped = wrapSecretKey(keyBytes, x25519PublicB64(site.publicKey), 'ab'.repeat(16), 'site-a');
    const unwrapped = unwrapSecretKey(wrapped, site.privateKey, 'ab'.repeat(16), 'site-a');
    assert.deepEqual(new Uint8Array(unwrapped), keyBytes);
    (await CkksSecretKey.load(unwrapped)).dispose();
    assert.throws(() => unwrapSecretKey(wrapped, other.privateKey, 'ab'.repeat(16), 'site-a'), /does not open/);
    assert.throws(() => unwrapSecretKey(wrapped, site.privateKey, 'ab'.repeat(16), 'site-b'), /does not open/);
    assert.throws(() => unwrapSecretKey(wrapped, site.privateKey, 'cd'.repeat(16), 'site-a'), /does not open/);
    const tampered = Uint8Array.from(wrapped);
    tampered[tampered.length - 1] ^= 1;
    assert.throws(() => unwrapSecretKey(tampered, site.privateKey, 'ab'.repeat(16), 'site-a'), /does not open/);
    await assert.rejects(CkksSecretKey.load(new Uint8Array(100)), (e: Error) => e instanceof CkksError && /does not load/.test(e.message));
  });
});

async function loadSealKey(bytes: Uint8Array) {
  const ctx = await ckksContext();
  const sk = new ctx.seal.SecretKey();
  sk.loadFromArray(ctx.context, bytes);
  return sk;
}
