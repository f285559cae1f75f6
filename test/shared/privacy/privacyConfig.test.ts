import assert from 'node:assert/strict';
import { resolvePrivacy, type ExperimentConfig } from '../../../coordinator/experimentConfig.js';
import { checkPrivacyConfig, siteNoiseStddev } from '../../../shared/privacy/privacyConfig.js';
import { PrivacyParameterError } from '../../../shared/privacy/privacyErrors.js';
import { computeEpsilon } from '../../../shared/privacy/rdpAccountant.js';

describe('shared/privacy/privacyConfig', () => {
  it('splits the noise so the sum keeps the full variance despite maxDropouts', () => {
    const p = { mode: 'distributed' as const, clip: 2, maxDropouts: 2 };
    const share = siteNoiseStddev(p, 1.5, 10);
    // 8 surviving shares must add up to at least (zC)²
    assert.ok(Math.abs(8 * share * share - (1.5 * 2) ** 2) < 1e-12);
    assert.equal(siteNoiseStddev({ mode: 'central', clip: 2 }, 1.5, 10), 0);
    assert.equal(siteNoiseStddev({ mode: 'local', clip: 2 }, 1.5, 10), 3);
    assert.throws(() => siteNoiseStddev(p, 1.5, 2), /cannot tolerate 2 dropouts/);
  });

  it('turns a target ε over planned rounds into a noise multiplier at creation, at q = 1 whatever fractionFit (no amplification from public fixed-size sampling)', () => {
    const config = { fractionFit: 0.5, privacy: { mode: 'central', clip: 1, delta: 1e-5, targetEpsilon: 2, plannedRounds: 50 } } as unknown as ExperimentConfig;
    resolvePrivacy(config);
    const z = config.privacy!.noiseMultiplier!;
    const eps = computeEpsilon({ noiseMultiplier: z, samplingRate: 1, steps: 50, delta: 1e-5 }).epsilon;
    assert.ok(eps <= 2 && eps > 1.95, `ε at q = 1: ${eps}`);
  });

  it('refuses incomplete or invalid privacy settings', () => {
    assert.throws(() => checkPrivacyConfig({ mode: 'central', clip: 0, delta: 1e-5, noiseMultiplier: 1 }), PrivacyParameterError);
    assert.throws(() => checkPrivacyConfig({ mode: 'central', clip: 1, delta: 1e-5 }), /noiseMultiplier" or "targetEpsilon/);
    assert.throws(() => checkPrivacyConfig({ mode: 'central', clip: 1, delta: 1e-5, targetEpsilon: 1 }), /plannedRounds/);
    assert.throws(() => checkPrivacyConfig({ mode: 'central', clip: 1, delta: 2, noiseMultiplier: 1 }), /delta must be in/);
  });
});
