/**
 * The data of a simulated federation: one train/test split per site (each site keeps its own
 * test split), plus the pooled views the baselines and the global test metrics use.
 *
 * Tabular features are standardised with the pooled training split's mean and deviation (what
 * FLamby does for Fed-Heart-Disease; a real federation would agree on these statistics first).
 */
import { loadCsv, standardize } from '../edge-client/data/csvLoader.js';
import { exampleSize, stratifiedSplit, subset, type Dataset } from '../edge-client/data/dataset.js';
import { loadMedmnistNpz } from '../edge-client/data/medmnistLoader.js';
import { syntheticImages } from '../edge-client/data/syntheticImages.js';
import { DataFormatError } from '../shared/errors.js';
import { SeededRng } from '../shared/random/seededRng.js';
import { HEART_DISEASE_CENTERS, loadHeartDiseaseCenter } from './heartDisease.js';
import { partition } from './partitioners.js';
import type { SimulationConfig } from './simulationConfig.js';

export interface SiteData {
  name: string;
  train: Dataset;
  test: Dataset;
}

export interface FederationData {
  sites: SiteData[];
  /** All sites' training data together (the pooled baseline trains on it). */
  pooledTrain: Dataset;
  /** All sites' test data together (global test metrics). */
  pooledTest: Dataset;
  exampleShape: number[];
  numClasses: number;
  /** What was loaded and how it was split, for the report. */
  description: string;
}

/** Concatenates data sets of the same example shape. */
export function concat(parts: Dataset[]): Dataset {
  const size = exampleSize(parts[0]);
  const n = parts.reduce((a, p) => a + p.y.length, 0);
  const x = new Float32Array(n * size);
  const y = new Int32Array(n);
  let at = 0;
  for (const p of parts) {
    x.set(p.x, at * size);
    y.set(p.y, at);
    at += p.y.length;
  }
  return { x, y, exampleShape: [...parts[0].exampleShape], numClasses: parts[0].numClasses };
}

/** A seeded tabular task: Gaussian features, labels from a random linear model plus noise. */
export function syntheticTabular(examples: number, features: number, classes: number, seed: number): Dataset {
  const rng = new SeededRng(seed);
  const w = Float64Array.from({ length: features * classes }, () => rng.normal());
  const x = Float32Array.from({ length: examples * features }, () => rng.normal());
  const y = new Int32Array(examples);
  for (let i = 0; i < examples; i++) {
    let best = 0;
    let bestScore = -Infinity;
    for (let c = 0; c < classes; c++) {
      let s = rng.normal() * 0.5;
      for (let j = 0; j < features; j++) s += w[c * features + j] * x[i * features + j];
      if (s > bestScore) [best, bestScore] = [c, s];
    }
    y[i] = best;
  }
  return { x, y, exampleShape: [features], numClasses: classes };
}

function loadPooled(c: SimulationConfig): Dataset {
  const d = c.data;
  if (d.source === 'synthetic-tabular') return syntheticTabular(d.examples!, d.features!, d.classes!, c.seed);
  if (d.source === 'synthetic-images') return syntheticImages({ n: d.examples!, numClasses: d.classes, seed: c.seed });
  if (d.source === 'csv') return loadCsv(d.path!, { labelColumn: d.labelColumn, binarizeLabel: d.binarizeLabel });
  if (d.source === 'medmnist') {
    const s = loadMedmnistNpz(d.path!);
    return concat([s.train, ...(s.val ? [s.val] : []), s.test]);
  }
  return concat(HEART_DISEASE_CENTERS.map((center) => loadHeartDiseaseCenter(d.path!, center)));
}

export function loadFederationData(c: SimulationConfig): FederationData {
  let groups: { name: string; data: Dataset }[];
  if (c.partition.kind === 'natural') {
    groups = HEART_DISEASE_CENTERS.map((center) => ({ name: center, data: loadHeartDiseaseCenter(c.data.path!, center) }));
  } else {
    const pooled = loadPooled(c);
    const parts = partition(pooled.y, pooled.numClasses, c.partition.sites!, c.partition.kind, { alpha: c.partition.alpha, seed: c.seed, minPerSite: 4 });
    const width = String(parts.length - 1).length;
    groups = parts.map((idx, k) => ({ name: `site-${String(k).padStart(width, '0')}`, data: subset(pooled, idx) }));
  }
  const sites = groups.map(({ name, data }, k) => {
    const [train, test] = stratifiedSplit(data, [1 - c.testFraction, c.testFraction], c.seed * 7919 + k);
    if (train.y.length === 0 || test.y.length === 0) throw new DataFormatError(`site ${name} has ${data.y.length} examples: too few for a train/test split at testFraction ${c.testFraction}`);
    return { name, train, test };
  });
  // Tabular: standardise every split with the pooled training statistics.
  if (sites[0].train.exampleShape.length === 1) standardize(concat(sites.map((s) => s.train)), ...sites.flatMap((s) => [s.train, s.test]));
  const pooledTrain = concat(sites.map((s) => s.train));
  const pooledTest = concat(sites.map((s) => s.test));
  const how = c.partition.kind === 'natural' ? 'natural split by hospital' : `${c.partition.kind}${c.partition.alpha !== undefined ? `(α=${c.partition.alpha})` : ''} over ${sites.length} sites`;
  return {
    sites,
    pooledTrain,
    pooledTest,
    exampleShape: pooledTrain.exampleShape,
    numClasses: pooledTrain.numClasses,
    description: `${c.data.source}${c.data.path ? ` (${c.data.path})` : ''}: ${pooledTrain.y.length + pooledTest.y.length} examples, ${how}, ${Math.round(c.testFraction * 100)}% of each site kept for its test split`,
  };
}
