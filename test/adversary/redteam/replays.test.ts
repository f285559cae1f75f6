/**
 * Red team: releasing twice for one round, or out of order — concurrent and back-to-back
 * fit_ins for the same and for different rounds, rounds at the schema's edge, a replay after a
 * reconnection, and evaluations of rounds the site did not train. Expected defended.
 *
 * A passing test = the attack failed (defended); a failing test = a reproduced hole.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { float32Bytes } from '../../../shared/model/modelHash.js';
import type { MessageOf } from '../../../shared/protocol/messages.js';
import { FakeCoordinator } from '../../helpers/fakeCoordinator.js';
import { stopProc, waitFor } from '../../helpers/federation.js';
import { makeTempDir } from '../../helpers/paths.js';
import { fitIns, PARAMS, settled, SPEC, startEdge, VERSION, waitEvent, type EdgeUnderTest } from '../harness.js';

const DP = { mode: 'local' as const, clip: 1, noiseMultiplier: 2, noiseStddev: 0, samplingRate: 0.1, delta: 1e-5 };

describe('red team: one release per round (real edge process with a privacy budget)', function () {
  this.timeout(240_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let edge: EdgeUnderTest;
  before(async () => {
    await fake.start();
    edge = await startEdge(fake, t.dir, 'hosp', { args: ['--privacy-budget', '1000', '--privacy-min-noise-multiplier', '0.5'] });
    await waitEvent(edge, 'connected');
  });
  after(async () => {
    if (process.env.FEDMED_TEST_DEBUG) console.log(edge.output().slice(-6000));
    await stopProc(edge);
    await fake.close();
    t.cleanup();
  });

  const ledger = () => (JSON.parse(readFileSync(join(t.dir, 'hosp', 'privacy-ledger.json'), 'utf8')) as { entries: { experiment: string; round: number; mechanisms: { kind: string; noiseMultiplier?: number }[] }[] }).entries;
  const results = (experiment: string, round?: number) => fake.of('fit_res', 'hosp').filter((m) => m.experiment === experiment && (round === undefined || m.round === round));
  const answers = (experiment: string) => fake.receivedFrom.filter((x) => x.site === 'hosp' && (x.m.type === 'fit_res' || x.m.type === 'fit_failed') && x.m.experiment === experiment);
  const send = (experiment: string, round: number, extra: Partial<MessageOf<'fit_ins'>> = {}) => {
    const { message, payload } = fitIns(experiment, round, { privacy: DP, ...extra });
    return fake.sendTo('hosp', message, payload);
  };

  it('the same round three times back to back (different settings each time): one release', async () => {
    await Promise.all([send('exp-dup', 1), send('exp-dup', 1, { privacy: { ...DP, noiseMultiplier: 3 } }), send('exp-dup', 1, { config: { epochs: 2, batchSize: 8, learningRate: 0.01, optimizer: 'sgd', proxMu: 0, seed: 9 } })]);
    await waitFor('3 answers', () => answers('exp-dup').length >= 3, 60_000, 20);
    assert.equal(results('exp-dup').length, 1);
  });

  it('rounds 2 and 1 back to back: 2 trains, 1 is refused; rounds 3 and 4 concurrently: both released, each charged', async () => {
    await Promise.all([send('exp-order', 2), send('exp-order', 1)]);
    await waitFor('2 answers', () => answers('exp-order').length >= 2, 60_000, 20);
    assert.deepEqual(results('exp-order').map((m) => m.round), [2]);
    await Promise.all([send('exp-order', 3), send('exp-order', 4)]);
    await waitFor('4 answers', () => answers('exp-order').length >= 4, 120_000, 20);
    for (const m of results('exp-order')) assert.ok(ledger().some((e) => e.experiment === 'exp-order' && e.round === m.round), `round ${m.round} released and charged`);
  });

  it('a fit_ins while a fit of the same round is in flight, and again after a reconnection: one release', async () => {
    await send('exp-rc', 1, { config: { epochs: 3, batchSize: 4, learningRate: 0.001, optimizer: 'adam', proxMu: 0, seed: 1 } });
    await waitEvent(edge, 'fit_started', (e) => e.experiment === 'exp-rc');
    await send('exp-rc', 1);
    const before = fake.connections;
    fake.socket!.terminate(); // cut the link mid-training
    await waitFor('the reconnection', () => fake.connections > before && fake.channels.get('hosp') && edge.event('connected').length >= 2, 60_000, 50);
    await send('exp-rc', 1);
    await settled(edge, 'exp-rc');
    await new Promise((r) => setTimeout(r, 2000));
    assert.ok(results('exp-rc', 1).length <= 1, `${results('exp-rc', 1).length} releases of round 1`);
    assert.ok(ledger().filter((e) => e.experiment === 'exp-rc').length <= 1);
  });

  it('round 1,000,000 (the schema maximum), then 1: refused; the experiment is over but the edge serves others (1,000,001: see rawFrames.test.ts)', async () => {
    await send('exp-max', 1_000_000);
    await waitFor('answer', () => answers('exp-max').length >= 1, 60_000, 20);
    await send('exp-max', 1);
    await waitFor('answer', () => answers('exp-max').length >= 2, 60_000, 20);
    assert.deepEqual(results('exp-max').map((m) => m.round), [1_000_000]);
    await send('exp-after-max', 1);
    await settled(edge, 'exp-after-max');
  });

  it('eval_ins for a round before the one trained, and of a round never trained: refused', async () => {
    for (const round of [3, 99]) {
      await fake.sendTo('hosp', { type: 'eval_ins', experiment: 'exp-order', round, modelVersion: VERSION, spec: SPEC }, float32Bytes(PARAMS));
    }
    await waitFor('2 answers', () => fake.receivedFrom.filter((x) => (x.m.type === 'eval_res' || x.m.type === 'eval_failed') && x.m.experiment === 'exp-order').length >= 2, 30_000, 20);
    assert.equal(fake.of('eval_res', 'hosp').filter((m) => m.experiment === 'exp-order').length, 0);
  });

  it('z below the site minimum is refused; adaptive clipping with countNoiseStddev 0 is charged with the clip bit at z/2', async () => {
    await send('exp-lowz', 1, { privacy: { ...DP, noiseMultiplier: 0.4 } });
    await waitFor('answer', () => answers('exp-lowz').length >= 1, 30_000, 20);
    assert.equal(results('exp-lowz').length, 0);
    await send('exp-bit', 1, { privacy: { ...DP, countNoiseStddev: 0 } });
    const r = await waitFor('result', () => results('exp-bit')[0], 60_000, 20);
    assert.equal(typeof r.clipIndicator, 'number');
    const entry = ledger().find((e) => e.experiment === 'exp-bit')!;
    assert.equal(entry.mechanisms.length, 2, JSON.stringify(entry));
    for (const m of entry.mechanisms) assert.ok(m.kind === 'gaussian' && m.noiseMultiplier! <= 2 + 1e-9, JSON.stringify(entry));
  });
});
