import assert from 'node:assert/strict';
import { describeRefusals } from '../../coordinator/rounds/refusalSummary.js';
import { MAX_REFUSALS_PER_SITE, pendingApproval, recordDelivery, recordRefusal, siteRefusals } from '../../coordinator/rounds/siteRefusals.js';
import { siteText } from '../../coordinator/rounds/siteText.js';
import type { SiteRecord } from '../../coordinator/store/storeSchema.js';

describe('site refusals (coordinator)', () => {
  it('a round summary groups refusals by kind, then other failures, dropouts and deliveries', () => {
    assert.equal(describeRefusals([{ site: 'b', status: 'failed', reason: 'x' }]), null);
    assert.equal(
      describeRefusals([
        { site: 'c', status: 'failed', reason: 'approval needed', refused: 'approval_pending' },
        { site: 'b', status: 'failed', reason: 'spent', refused: 'privacy_budget' },
        { site: 'a', status: 'failed', reason: 'spent', refused: 'privacy_budget' },
        { site: 'd', status: 'failed', reason: 'out of memory' },
        { site: 'e', status: 'dropped', reason: 'missed the 60 s deadline' },
        { site: 'f', status: 'done' },
      ]),
      '3 of 6 sampled sites refused: privacy budget exhausted (a, b), approval pending (c); 1 failed: d (out of memory); 1 dropped: e (missed the 60 s deadline); 1 returned an update',
    );
  });

  it('a site keeps its latest refusal per experiment, bounded; a later delivery supersedes it and clears a pending approval', () => {
    const site = { name: 's' } as SiteRecord;
    recordRefusal(site, { experiment: 'e1', round: 1, kind: 'approval_pending', reason: 'r', at: 't' });
    recordRefusal(site, { experiment: 'e2', round: 1, kind: 'privacy_budget', reason: 'r', at: 't' });
    recordRefusal(site, { experiment: 'e1', round: 2, kind: 'approval_pending', reason: 'r', at: 't' });
    assert.deepEqual(siteRefusals(site).map((r) => [r.experiment, r.round]), [['e2', 1], ['e1', 2]]);
    assert.deepEqual(pendingApproval(site), ['e1']);
    recordDelivery(site, 'e1', 2); // the same round: not later
    assert.deepEqual(pendingApproval(site), ['e1']);
    recordDelivery(site, 'e1', 3);
    assert.deepEqual(pendingApproval(site), []);
    assert.equal(siteRefusals(site).find((r) => r.experiment === 'e1')!.supersededInRound, 3);
    for (let i = 0; i < 100; i++) recordRefusal(site, { experiment: `x${i}`, round: 1, kind: 'policy', reason: 'r', at: 't' });
    assert.equal(siteRefusals(site).length, MAX_REFUSALS_PER_SITE);
    assert.equal(siteRefusals(site).at(-1)!.experiment, 'x99');
  });

  it('text from a site loses control and format characters and is bounded without splitting a character', () => {
    assert.equal(siteText('a\u001b[31mb\r\nc\u202ed\u0000'), 'a [31mb  c d ');
    const long = siteText('😀'.repeat(1000), 10);
    assert.equal(Array.from(long).length, 10);
    assert.ok(long.endsWith('…'));
    assert.doesNotMatch(long, /[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });
});
