import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultPolicy, loadSitePolicy, parseSitePolicy, policyFromFlags, SitePolicyError, writeSitePolicy, type SitePolicy } from '../../../edge-client/policy/sitePolicy.js';
import { makeTempDir } from '../../helpers/paths.js';

describe('edge-client/policy/sitePolicy (the hospital\'s rules, validated)', () => {
  it('names the field that is wrong', () => {
    const bad = (edit: (p: SitePolicy & Record<string, unknown>) => void): string => {
      const p = structuredClone(defaultPolicy()) as SitePolicy & Record<string, unknown>;
      edit(p);
      try {
        parseSitePolicy(p, 'policy.json');
      } catch (err) {
        assert.ok(err instanceof SitePolicyError);
        return err.message;
      }
      throw new Error('accepted');
    };
    assert.match(bad((p) => (p.privacy.minNoiseMultiplier = -1)), /field privacy\.minNoiseMultiplier: must be >= 0/);
    assert.match(bad((p) => ((p.security as Record<string, unknown>).required = 'strong')), /field security\.required: must be one of \["any","secagg","ckks","secure"\]/);
    assert.match(bad((p) => ((p.release.dp as Record<string, unknown>).metrics = 'exact')), /field release\.dp\.metrics: must be one of \["withheld","noised"\]/);
    assert.match(bad((p) => ((p.experiments as Record<string, unknown>).aproval = 'auto')), /field experiments: unknown field "aproval"/);
    assert.match(bad((p) => delete (p as Partial<SitePolicy>).deployment), /field \(top level\): missing field "deployment"/);
    assert.match(bad((p) => (p.security.minGroupSize = 2)), /field security\.minGroupSize: must be >= 3/);
    // Rules that contradict a budget.
    assert.match(bad((p) => (p.privacy.budget = { epsilon: 3, delta: 1e-5 })), /privacy\.allowedModes: "central" cannot be allowed with a privacy budget/);
    assert.match(
      bad((p) => {
        p.privacy.budget = { epsilon: 3, delta: 1e-5 };
        p.privacy.allowedModes = ['local'];
      }),
      /privacy\.allowNonDp: must be false with a privacy budget/,
    );
  });

  it('a budget from the flags refuses non-DP rounds and central mode', () => {
    const p = policyFromFlags({ privacyBudget: 4, privacyMinNoiseMultiplier: 0.8, requireSecurity: 'secagg', requireApproval: true, secaggMinGroup: 5 });
    assert.deepEqual(p.privacy, { budget: { epsilon: 4, delta: 1e-5 }, minNoiseMultiplier: 0.8, allowedModes: ['local', 'distributed'], allowNonDp: false });
    assert.equal(p.security.required, 'secagg');
    assert.equal(p.security.minGroupSize, 5);
    assert.equal(p.experiments.approval, 'required');
    assert.deepEqual(policyFromFlags({}), defaultPolicy());
  });

  it('reads what it wrote; refuses a file that is not JSON, naming it', () => {
    const t = makeTempDir();
    try {
      assert.equal(loadSitePolicy(t.dir), null);
      const p = policyFromFlags({ privacyBudget: 2 });
      writeSitePolicy(t.dir, p);
      assert.deepEqual(loadSitePolicy(t.dir), p);
      writeFileSync(join(t.dir, 'policy.json'), '{"format":');
      assert.throws(() => loadSitePolicy(t.dir), (err: Error) => err instanceof SitePolicyError && err.message.includes('policy.json: not valid JSON'));
    } finally {
      t.cleanup();
    }
  });
});
