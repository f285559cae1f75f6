/**
 * Turns the CLI's --model / --params into a ModelSpec (and parameters), sized to the data.
 * --model is a zoo name (cnn-28, mlp-tabular, logreg) or a path to a ModelSpec JSON file.
 */
import { existsSync, readFileSync } from 'node:fs';
import { zooModel } from '../models/zoo.js';
import { ModelSpecError, UsageError } from '../shared/errors.js';
import { initParams } from '../shared/model/initParams.js';
import { parseModelSpec, type ModelSpec } from '../shared/model/modelSpec.js';
import { loadParamsFile } from '../shared/model/paramsFile.js';

export interface ModelChoice {
  model?: string;
  params?: string;
  hidden?: string;
  numClasses?: number;
  numFeatures?: number;
  seed: number;
}

export function resolveModel(choice: ModelChoice): { spec: ModelSpec; params: Float32Array } {
  if (choice.params) {
    // The file carries its own spec; with --model too, it must be that model.
    return loadParamsFile(choice.params, choice.model ? specFrom(choice) : undefined);
  }
  if (!choice.model) throw new UsageError('give --model (a zoo name or a spec JSON file) or --params (a fedmed parameters file)');
  const spec = specFrom(choice);
  return { spec, params: initParams(spec, choice.seed) };
}

function specFrom(choice: ModelChoice): ModelSpec {
  const model = choice.model!;
  if (isFile(model)) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(model, 'utf8'));
    } catch (err) {
      throw new ModelSpecError(`${model}: not valid JSON (${(err as Error).message})`);
    }
    return parseModelSpec(json, model);
  }
  return zooModel(model, {
    numClasses: choice.numClasses,
    numFeatures: choice.numFeatures,
    hidden: choice.hidden === undefined ? undefined : parseHidden(choice.hidden),
  });
}

function parseHidden(text: string): number[] {
  if (text.trim() === '') return [];
  const units = text.split(',').map((s) => Number(s.trim()));
  if (units.some((u) => !Number.isInteger(u) || u < 1)) throw new UsageError(`--hidden must be comma-separated positive integers, got "${text}"`);
  return units;
}

function isFile(p: string): boolean {
  return p.endsWith('.json') || (p.includes('/') && existsSync(p));
}
