import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LedgerError, PrivacyLedger } from '../../../edge-client/federation/privacyLedger.js';
import { clipBitMechanism, distributedDiscreteGaussian, epsilonOfRounds, type PrivacyMechanism } from '../../../shared/privacy/privacyMechanism.js';
import { computeEpsilon } from '../../../shared/privacy/rdpAccountant.js';
import { makeTempDir } from '../../helpers/paths.js';

const round: PrivacyMechanism[] = [{ kind: 'gaussian', noiseMultiplier: 2 }];

describe('edge-client/federation/privacyLedger (the site enforces its own budget)', () => {
  let t: ReturnType<typeof makeTempDir>;
  beforeEach(() => (t = makeTempDir()));
  afterEach(() => t.cleanup());

  it('charges rounds conservatively (q = 1) and refuses the one that would exceed the budget', () => {
    const ledger = new PrivacyLedger(t.dir, { epsilon: 3.5, delta: 1e-5 }); // 2 rounds at z = 2 cost 3.19
    assert.equal(ledger.refusal('exp', 1, round), null);
    ledger.charge('exp', 1, round);
    assert.ok(Math.abs(ledger.spent() - computeEpsilon({ noiseMultiplier: 2, samplingRate: 1, steps: 1, delta: 1e-5 }).epsilon) < 1e-12);
    ledger.charge('exp', 2, round);
    ledger.charge('exp', 2, round); // a retried round is not charged twice
    const why = ledger.refusal('exp', 3, round);
    assert.match(why!, /privacy budget exhausted: this round would bring the site's total to ε = 4\.011 \(limit 3\.5/);
    // The ledger persists across restarts.
    assert.ok(Math.abs(new PrivacyLedger(t.dir, { epsilon: 3.5, delta: 1e-5 }).spent() - ledger.spent()) < 1e-12);
  });

  it('applies a per-experiment limit on top of the total', () => {
    const ledger = new PrivacyLedger(t.dir, { epsilon: 100, delta: 1e-5, perExperiment: 2.5 });
    ledger.charge('a', 1, round);
    assert.match(ledger.refusal('a', 2, round)!, /exhausted for experiment a/);
    assert.equal(ledger.refusal('b', 1, round), null);
  });

  it('composes every mechanism of a round by RDP and stores them (the update as DDGauss, plus the clip bit)', () => {
    const ddg = distributedDiscreteGaussian({ clip: 1, dimension: 1000, step: 1 / 32767, sigmaSteps: 32767 / Math.sqrt(3), minSummands: 3, beta: Math.exp(-0.5) });
    const bit = clipBitMechanism(2);
    const ledger = new PrivacyLedger(t.dir, { epsilon: 100, delta: 1e-5 });
    ledger.charge('exp', 1, [ddg, bit]);
    ledger.charge('exp', 2, [{ kind: 'gaussian', noiseMultiplier: 1.5 }]);
    const expected = epsilonOfRounds([[ddg, bit], [{ kind: 'gaussian', noiseMultiplier: 1.5 }]], 1e-5).epsilon;
    assert.ok(Math.abs(ledger.spent() - expected) < 1e-12);
    // More than the update alone, and more than the plain Gaussian z = 1 it approximates.
    assert.ok(ledger.spent() > epsilonOfRounds([[{ kind: 'gaussian', noiseMultiplier: 1 }], [{ kind: 'gaussian', noiseMultiplier: 1.5 }]], 1e-5).epsilon);
    const file = JSON.parse(readFileSync(join(t.dir, 'privacy-ledger.json'), 'utf8')) as { format: string; entries: { mechanisms: PrivacyMechanism[] }[] };
    assert.equal(file.format, 'fedmed.privacy-ledger/2');
    assert.deepEqual(file.entries[0].mechanisms, [ddg, bit]);
    const reread = new PrivacyLedger(t.dir, { epsilon: 100, delta: 1e-5 });
    assert.ok(Math.abs(reread.spent() - expected) < 1e-12);
    assert.deepEqual(reread.history()[0].mechanisms, [ddg, bit]);
  });

  it('refuses (never throws at) a mechanism it cannot account, and will not charge one', () => {
    const ledger = new PrivacyLedger(t.dir, { epsilon: 100, delta: 1e-5 });
    const bad = { kind: 'distributed-discrete-gaussian', clip: 1, step: 1, dimension: 10, sigmaSteps: 0.1, minSummands: 3, beta: 0, maxWeight: 1 } as PrivacyMechanism;
    assert.match(ledger.refusal('exp', 1, [bad])!, /cannot account.*below 1\/2/);
    assert.match(ledger.refusal('exp', 1, [])!, /no mechanism/);
    assert.throws(() => ledger.charge('exp', 1, [bad]), LedgerError);
    assert.equal(ledger.spent(), 0);
  });

  it('reads a format /1 ledger (one noise multiplier per entry) as Gaussians and writes /2 at the next charge', () => {
    const key = Buffer.alloc(32, 7);
    writeFileSync(join(t.dir, 'privacy-ledger.key'), key);
    const entries = [
      { experiment: 'exp', round: 1, noiseMultiplier: 2, mode: 'local', chargedAt: '2026-01-01T00:00:00.000Z' },
      { experiment: 'exp', round: 2, noiseMultiplier: 3, mode: 'distributed', chargedAt: '2026-01-02T00:00:00.000Z' },
    ];
    const mac = createHmac('sha256', key).update(JSON.stringify(entries)).digest('hex');
    writeFileSync(join(t.dir, 'privacy-ledger.json'), JSON.stringify({ format: 'fedmed.privacy-ledger/1', entries, mac }));
    const ledger = new PrivacyLedger(t.dir, { epsilon: 100, delta: 1e-5 });
    const expected = epsilonOfRounds([[{ kind: 'gaussian', noiseMultiplier: 2 }], [{ kind: 'gaussian', noiseMultiplier: 3 }]], 1e-5).epsilon;
    assert.ok(Math.abs(ledger.spent() - expected) < 1e-12);
    assert.deepEqual(ledger.history().map((e) => [e.round, e.mode, e.mechanisms]), [
      [1, 'local', [{ kind: 'gaussian', noiseMultiplier: 2 }]],
      [2, 'distributed', [{ kind: 'gaussian', noiseMultiplier: 3 }]],
    ]);
    assert.equal(ledger.refusal('exp', 2, round), null); // already charged
    ledger.charge('exp', 3, round);
    assert.equal((JSON.parse(readFileSync(join(t.dir, 'privacy-ledger.json'), 'utf8')) as { format: string }).format, 'fedmed.privacy-ledger/2');
    const after = new PrivacyLedger(t.dir, { epsilon: 100, delta: 1e-5 });
    assert.equal(after.history().length, 3);
    assert.ok(Math.abs(after.spent() - ledger.spent()) < 1e-12);
  });

  it('refuses a ledger file that was edited, relabelled or given an invalid mechanism', () => {
    const ledger = new PrivacyLedger(t.dir, { epsilon: 10, delta: 1e-5 });
    ledger.charge('exp', 1, round);
    const file = join(t.dir, 'privacy-ledger.json');
    const original = readFileSync(file, 'utf8');
    const isModified = (e: unknown) => e instanceof LedgerError && /checksum mismatch/.test(e.message);
    writeFileSync(file, original.replace('"noiseMultiplier": 2', '"noiseMultiplier": 200'));
    assert.throws(() => new PrivacyLedger(t.dir, { epsilon: 10, delta: 1e-5 }), isModified);
    writeFileSync(file, original.replace('privacy-ledger/2', 'privacy-ledger/1'));
    assert.throws(() => new PrivacyLedger(t.dir, { epsilon: 10, delta: 1e-5 }), isModified);
    writeFileSync(file, '{"format": 3}');
    assert.throws(() => new PrivacyLedger(t.dir, { epsilon: 10, delta: 1e-5 }), isModified);
    writeFileSync(file, original);
    assert.equal(new PrivacyLedger(t.dir, { epsilon: 10, delta: 1e-5 }).history().length, 1);
  });
});
