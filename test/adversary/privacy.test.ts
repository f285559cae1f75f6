/**
 * The site's own noise against a coordinator that lies about it (real edge process with a
 * privacy budget): whatever noise level the coordinator states, the site adds the noise it
 * computes from z and C itself — checked statistically on what it released (224,002 values: the
 * sample standard deviation is within 1% of the target with probability 1 − 10⁻⁹⁰, whatever the
 * seed) — refuses modes whose noise it cannot stand behind, and releases once per round.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeSum } from '../../shared/secure/secagg/fixedPoint.js';
import { quantLevels } from '../../shared/secure/secagg/secaggParams.js';
import type { MessageOf } from '../../shared/protocol/messages.js';
import { FakeCoordinator } from '../helpers/fakeCoordinator.js';
import { stopProc, waitFor } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { fitIns, ScriptedSecureRound, settled, startEdge, waitEvent, type EdgeUnderTest } from './harness.js';

function std(values: ArrayLike<number>): number {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < values.length; i++) {
    s += values[i];
    s2 += values[i] * values[i];
  }
  const mean = s / values.length;
  return Math.sqrt(s2 / values.length - mean * mean);
}

describe('adversary: a coordinator lying about the noise (real edge process with a privacy budget)', function () {
  this.timeout(120_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let edge: EdgeUnderTest;
  before(async () => {
    await fake.start();
    edge = await startEdge(fake, t.dir, 'hosp', { args: ['--privacy-budget', '1000'] });
    await waitEvent(edge, 'connected');
  });
  after(async () => {
    await stopProc(edge);
    await fake.close();
    t.cleanup();
  });

  const answer = (experiment: string, round = 1) => waitFor(`the answer for ${experiment}`, () => fake.receivedFrom.find((x) => (x.m.type === 'fit_res' || x.m.type === 'fit_failed') && x.m.experiment === experiment && x.m.round === round), 60_000, 20);

  it('local mode with "noiseStddev 0": the site adds N(0, (zC)²) itself and charges it', async () => {
    const { message, payload } = fitIns('exp-local', 1, { privacy: { mode: 'local', clip: 1, noiseMultiplier: 2, noiseStddev: 0, samplingRate: 0.01, delta: 1e-5 } });
    await fake.sendTo('hosp', message, payload);
    const r = await answer('exp-local');
    assert.equal(r.m.type, 'fit_res');
    const released = new Float32Array(r.payload.buffer.slice(r.payload.byteOffset, r.payload.byteOffset + r.payload.byteLength));
    // The clipped update has norm ≤ 1 over 224,002 values: the noise (stddev zC = 2) is all one sees.
    const s = std(released);
    assert.ok(Math.abs(s - 2) < 0.02, `released stddev ${s}, the site's own zC is 2`);
    await settled(edge, 'exp-local');
    const ledger = JSON.parse(readFileSync(join(t.dir, 'hosp', 'privacy-ledger.json'), 'utf8')) as { entries: { experiment: string; round: number; mechanisms: unknown[] }[] };
    assert.deepEqual(ledger.entries.map((e) => [e.experiment, e.round, e.mechanisms]), [['exp-local', 1, [{ kind: 'gaussian', noiseMultiplier: 2 }]]]);
  });

  it('distributed mode under SecAgg+ with a stated integer noise of 0: the site adds zC/√t itself (t the threshold it checked)', async () => {
    const r = new ScriptedSecureRound(fake, 'exp-dist', 1, ['hosp'], [fake.certifiedPeer('p1'), fake.certifiedPeer('p2')], undefined, {
      params: { maxWeight: 1, noiseStddev: 0 },
      fit: { privacy: { mode: 'distributed', clip: 1, noiseMultiplier: 1, noiseStddev: 0, samplingRate: 0.5, delta: 1e-5 } },
    });
    await r.sharesAndMasks(await r.keys());
    const sum = await r.unmask(); // the peers masked zero vectors: the sum is the site's noised update
    const { weightedSum, totalWeight } = decodeSum(sum, r.params);
    assert.equal(totalWeight, 1);
    const s = std(weightedSum);
    const want = 1 / Math.sqrt(3); // zC / √t with t = 3 of the 3 holders
    assert.ok(Math.abs(s - want) / want < 0.01, `stddev of the site's released sum ${s}, expected its own zC/√t = ${want}`);
    await settled(edge, 'exp-dist');
    // Charged as the mechanism it ran: the distributed discrete Gaussian over t = 3 summands.
    const ledger = JSON.parse(readFileSync(join(t.dir, 'hosp', 'privacy-ledger.json'), 'utf8')) as { entries: { experiment: string; mechanisms: Record<string, unknown>[] }[] };
    const [charged] = ledger.entries.find((e) => e.experiment === 'exp-dist')!.mechanisms;
    const step = r.params.range / quantLevels(r.params.bits);
    assert.deepEqual({ ...charged, sigmaSteps: undefined }, { kind: 'distributed-discrete-gaussian', clip: 1, step, dimension: weightedSum.length, sigmaSteps: undefined, minSummands: 3, beta: charged.beta, maxWeight: 1 });
    assert.ok(Math.abs((charged.sigmaSteps as number) - want / step) < 1e-9);
  });

  it('refuses central mode (it has a budget), distributed without SecAgg+, and a second release for the same round', async () => {
    const central = fitIns('exp-central', 1, { privacy: { mode: 'central', clip: 1, noiseMultiplier: 1000, noiseStddev: 0, samplingRate: 0.5, delta: 1e-5 } });
    await fake.sendTo('hosp', central.message, central.payload);
    assert.match(((await answer('exp-central')).m as MessageOf<'fit_failed'>).reason, /"central" leaves the noise to the coordinator/);
    const plainDist = fitIns('exp-plain-dist', 1, { privacy: { mode: 'distributed', clip: 1, noiseMultiplier: 3, noiseStddev: 1, samplingRate: 0.5, delta: 1e-5 } });
    await fake.sendTo('hosp', plainDist.message, plainDist.payload);
    assert.match(((await answer('exp-plain-dist')).m as MessageOf<'fit_failed'>).reason, /distributed DP needs SecAgg\+/);
    // exp-local round 1 was released above: the same round again is refused, whatever it says.
    const again = fitIns('exp-local', 1, { privacy: { mode: 'local', clip: 1, noiseMultiplier: 3, noiseStddev: 6, samplingRate: 0.01, delta: 1e-5 } });
    await fake.sendTo('hosp', again.message, again.payload);
    const repeated = await waitFor('the refusal', () => fake.of('fit_failed', 'hosp').find((m) => m.experiment === 'exp-local' && m.round === 1), 30_000, 20);
    assert.match(repeated.reason, /already trained for round 1 of experiment exp-local/);
    assert.equal(fake.of('fit_res', 'hosp').filter((m) => m.experiment === 'exp-local').length, 1, 'released once');
    assert.equal(fake.of('fit_res', 'hosp').filter((m) => m.experiment === 'exp-central' || m.experiment === 'exp-plain-dist').length, 0);
  });
});
