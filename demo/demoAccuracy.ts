/**
 * How good a model version is on each site's own test split: the demo downloads the version
 * (GET /v1/versions/ID/params; under CKKS the coordinator has only ciphertexts, so the admin
 * decrypts it with the key set's secret key, as `fedmed federation keys decrypt` does), builds
 * its ONNX model and runs it with onnxruntime on the test images it generated for each site.
 */
import { apiBytes } from '../cli/apiClient.js';
import { decryptVersion, readSecretKeyFile } from '../cli/federationKeys.js';
import { buildOnnxModel } from '../models/onnxModel.js';
import { OnnxInferenceSession } from '../edge-client/inference/onnxInferenceSession.js';
import type { Dataset } from '../edge-client/data/dataset.js';
import { decodeParamsFile } from '../shared/model/paramsFile.js';

export interface ModelSource {
  target: { url: string; token: string };
  experiment: string;
  /** CKKS: the admin's secret key file of the experiment's key set. */
  ckksSecretKeyFile?: string;
}

/** The version's `.fmp` bytes (decrypted under CKKS). */
export async function versionBytes(src: ModelSource, version: string): Promise<Uint8Array> {
  if (src.ckksSecretKeyFile) return decryptVersion(src.target, readSecretKeyFile(src.ckksSecretKeyFile), src.experiment, version);
  return apiBytes(src.target, `/v1/versions/${encodeURIComponent(version)}/params`);
}

/** Accuracy of the version on each of `tests` (in order). */
export async function versionAccuracies(src: ModelSource, version: string, tests: Dataset[]): Promise<number[]> {
  const { spec, params } = decodeParamsFile(await versionBytes(src, version), `version ${version}`);
  const session = await OnnxInferenceSession.create(buildOnnxModel(spec, params), { providers: ['cpu'] }, `version ${version}`);
  try {
    const out: number[] = [];
    for (const test of tests) {
      const n = test.y.length;
      const { probabilities, classes } = await session.run(test.x, n);
      let correct = 0;
      for (let i = 0; i < n; i++) {
        let best = 0;
        for (let c = 1; c < classes; c++) if (probabilities[i * classes + c] > probabilities[i * classes + best]) best = c;
        if (best === test.y[i]) correct++;
      }
      out.push(correct / n);
    }
    return out;
  } finally {
    await session.release();
  }
}
