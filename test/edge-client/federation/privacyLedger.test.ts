import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LedgerError, PrivacyLedger } from '../../../edge-client/federation/privacyLedger.js';
import type { RoundPrivacy } from '../../../shared/privacy/privacyConfig.js';
import { computeEpsilon } from '../../../shared/privacy/rdpAccountant.js';
import { makeTempDir } from '../../helpers/paths.js';

const round: RoundPrivacy = { mode: 'distributed', clip: 1, noiseMultiplier: 2, noiseStddev: 1.2, samplingRate: 0.5, delta: 1e-5 };

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

  it('refuses a ledger file that was edited', () => {
    const ledger = new PrivacyLedger(t.dir, { epsilon: 10, delta: 1e-5 });
    ledger.charge('exp', 1, round);
    const file = join(t.dir, 'privacy-ledger.json');
    const edited = readFileSync(file, 'utf8').replace('"noiseMultiplier": 2', '"noiseMultiplier": 200');
    writeFileSync(file, edited);
    assert.throws(() => new PrivacyLedger(t.dir, { epsilon: 10, delta: 1e-5 }), (e: unknown) => e instanceof LedgerError && /checksum mismatch/.test(e.message));
  });
});
