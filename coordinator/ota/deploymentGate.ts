/**
 * The deployment gate (experiment `deploy: "gated"`, the default): decides whether a version a
 * round published reaches the sites' inference services. A version is deployed only when its
 * federated evaluation — the example-weighted accuracy the sites reported on their local
 * validation data, each site's weight capped at maxExampleWeight — comes from at least
 * `gate.minSites` sites and is at least the deployed version's accuracy minus `gate.tolerance`.
 * With nothing deployed yet (or a deployed version without a federated evaluation) the baseline
 * is chance, 1 / numClasses, standing in for the initial model's evaluation (a Glorot-initialised
 * model evaluates at about chance; the coordinator does not evaluate round 0): the first version
 * must reach chance + tolerance. Otherwise the version is held, with the reason, and nothing is
 * offered to the sites; a researcher can still deploy it with `fedmed model publish`.
 */
import { numClassesOf } from '../../shared/model/modelSpec.js';
import { exampleWeight, gateSettings, type ExperimentConfig } from '../experimentConfig.js';
import type { CoordinatorStore } from '../store/coordinatorStore.js';
import type { ExperimentRecord, GateDecision, RoundRecord } from '../store/storeSchema.js';

/** The example-weighted accuracy of a round's evaluation and how many sites reported one. */
export function federatedAccuracy(round: RoundRecord | null | undefined, config: ExperimentConfig): { accuracy: number | null; sites: number } {
  let sites = 0;
  let n = 0;
  let sum = 0;
  for (const s of round?.sites ?? []) {
    const a = s.metrics?.accuracy;
    if (s.phase !== 'evaluate' || s.status !== 'done' || typeof a !== 'number' || !Number.isFinite(a) || !s.numExamples) continue;
    const w = exampleWeight(config, s.numExamples);
    sites++;
    n += w;
    sum += w * a;
  }
  return { accuracy: n > 0 ? sum / n : null, sites };
}

/** The gate's decision about `versionId` of `exp`, against the currently deployed version. */
export async function gateDecision(store: CoordinatorStore, exp: ExperimentRecord, versionId: string, deployed: string | null): Promise<GateDecision> {
  const { minSites, tolerance } = gateSettings(exp.config);
  const round = await roundOf(store, exp.id, versionId);
  const { accuracy, sites } = federatedAccuracy(round, exp.config);
  const base = { version: versionId, experiment: exp.id, round: round?.round ?? 0, accuracy, sites, at: new Date().toISOString() };
  if (accuracy === null || sites < minSites) {
    return { ...base, decision: 'held', baseline: null, reason: `its federated evaluation has accuracy from ${sites} site(s); the deployment gate needs at least ${minSites} (gate.minSites)` };
  }
  const baseline = await baselineOf(store, exp, deployed);
  const threshold = baseline.version ? baseline.accuracy - tolerance : baseline.accuracy + tolerance;
  const against = baseline.version ? `deployed version ${baseline.version.slice(0, 12)}'s ${baseline.accuracy.toFixed(4)} − tolerance ${tolerance}` : `chance (${baseline.accuracy.toFixed(4)}, nothing deployed with a federated evaluation) + tolerance ${tolerance}`;
  const measured = `accuracy ${accuracy.toFixed(4)} over ${sites} site(s)`;
  return accuracy >= threshold
    ? { ...base, decision: 'deployed', baseline, reason: `${measured} ≥ ${against}` }
    : { ...base, decision: 'held', baseline, reason: `${measured} is below ${against} (${threshold.toFixed(4)})` };
}

/** The deployed version's federated accuracy, or chance when there is none to compare with. */
async function baselineOf(store: CoordinatorStore, exp: ExperimentRecord, deployed: string | null): Promise<{ version: string | null; accuracy: number }> {
  if (deployed) {
    const v = await store.version(deployed);
    const owner = store.data.experiments.find((e) => e.id === v?.experiment);
    const evaluated = federatedAccuracy(v ? await roundOf(store, v.experiment, deployed) : null, owner?.config ?? exp.config);
    if (evaluated.accuracy !== null) return { version: deployed, accuracy: evaluated.accuracy };
  }
  return { version: null, accuracy: 1 / Math.max(2, numClassesOf(exp.spec)) };
}

/** The round of `experiment` that published `versionId`. */
async function roundOf(store: CoordinatorStore, experiment: string, versionId: string): Promise<RoundRecord | null> {
  const r = await store.roundOfVersion(versionId);
  return r?.experiment === experiment ? r : null;
}
