/**
 * The comparisons a federated run is judged against, trained on this thread with the same local
 * trainer, hyper-parameters and total epochs (rounds × local epochs):
 * - pooled (centralised): one model on all sites' training data together;
 * - local-only: each site alone on its own data. Like FLamby, each local model is also scored
 *   on every site's test split (for up to 16 sites), since "best local model" is judged on the
 *   whole federation's data.
 */
import { TfjsModel } from '../models/tfjsModel.js';
import type { Dataset } from '../edge-client/data/dataset.js';
import { evaluateModel, localFit, type LocalFitOptions } from '../edge-client/training/localTrainer.js';
import type { ModelSpec } from '../shared/model/modelSpec.js';
import type { FederationData } from './siteData.js';

export interface TestMetrics {
  loss: number;
  accuracy: number;
  auc: number | null;
  numExamples: number;
}

/** Scores of one model: on each site's test split, their unweighted mean, and on all test data. */
export interface ModelScores {
  perSite: Record<string, TestMetrics>;
  meanAccuracy: number;
  meanAuc: number | null;
  pooledTest: TestMetrics;
}

function metrics(model: TfjsModel, data: Dataset): TestMetrics {
  const m = evaluateModel(model, data);
  return { loss: m.loss, accuracy: m.accuracy, auc: Number.isFinite(m.auc) ? m.auc : null, numExamples: m.numExamples };
}

/** Scores a parameter vector on every site's test split and on the pooled test data. */
export function scoreModel(spec: ModelSpec, params: Float32Array, data: FederationData): ModelScores {
  const model = new TfjsModel(spec, params);
  try {
    const perSite = Object.fromEntries(data.sites.map((s) => [s.name, metrics(model, s.test)]));
    const values = Object.values(perSite);
    const aucs = values.map((v) => v.auc).filter((a): a is number => a !== null);
    return {
      perSite,
      meanAccuracy: values.reduce((a, v) => a + v.accuracy, 0) / values.length,
      meanAuc: aucs.length ? aucs.reduce((a, b) => a + b, 0) / aucs.length : null,
      pooledTest: metrics(model, data.pooledTest),
    };
  } finally {
    model.dispose();
  }
}

export interface LocalBaseline {
  /** Each site's local model on its own test split. */
  perSite: Record<string, TestMetrics>;
  /** Mean over sites of the own-test accuracy. */
  meanAccuracy: number;
  /** Each local model's mean accuracy over all sites' test splits (FLamby's "Local i"), ≤ 16 sites. */
  crossSiteMean?: Record<string, number>;
  /** The best of crossSiteMean. */
  best?: { site: string; meanAccuracy: number };
}

export async function pooledBaseline(spec: ModelSpec, init: Float32Array, data: FederationData, fit: LocalFitOptions): Promise<ModelScores> {
  const r = await localFit(spec, init, data.pooledTrain, fit);
  return scoreModel(spec, r.params, data);
}

export async function localBaseline(spec: ModelSpec, init: Float32Array, data: FederationData, fit: LocalFitOptions): Promise<LocalBaseline> {
  const perSite: Record<string, TestMetrics> = {};
  const crossSiteMean: Record<string, number> = {};
  const cross = data.sites.length <= 16;
  for (const [k, s] of data.sites.entries()) {
    const r = await localFit(spec, init, s.train, { ...fit, seed: (fit.seed ?? 0) + k });
    if (cross) {
      const scores = scoreModel(spec, r.params, data);
      perSite[s.name] = scores.perSite[s.name];
      crossSiteMean[s.name] = scores.meanAccuracy;
    } else {
      const model = new TfjsModel(spec, r.params);
      try {
        perSite[s.name] = metrics(model, s.test);
      } finally {
        model.dispose();
      }
    }
  }
  const values = Object.values(perSite);
  const result: LocalBaseline = { perSite, meanAccuracy: values.reduce((a, v) => a + v.accuracy, 0) / values.length };
  if (cross) {
    result.crossSiteMean = crossSiteMean;
    const [site, meanAccuracy] = Object.entries(crossSiteMean).sort((a, b) => b[1] - a[1])[0];
    result.best = { site, meanAccuracy };
  }
  return result;
}
