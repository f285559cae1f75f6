/**
 * Deterministic parameter initialisation from a seed: Glorot-uniform kernels and zero biases
 * (Keras' defaults), so the same spec and seed give the same vector on every machine.
 */
import { SeededRng } from '../random/seededRng.js';
import { resolveLayers, type ModelSpec } from './modelSpec.js';
import { elementCount, layoutOf } from './parameterLayout.js';

export function initParams(spec: ModelSpec, seed: number): Float32Array {
  const layout = layoutOf(spec);
  const params = new Float32Array(layout.size);
  const rng = new SeededRng(seed);
  let offset = 0;
  for (const layer of resolveLayers(spec)) {
    for (const p of layer.params) {
      const n = elementCount(p.shape);
      if (p.name.endsWith('/kernel')) {
        // fan_in / fan_out as Keras computes them: receptive field times channels.
        const receptive = p.shape.length === 4 ? p.shape[0] * p.shape[1] : 1;
        const fanIn = receptive * p.shape[p.shape.length - 2];
        const fanOut = receptive * p.shape[p.shape.length - 1];
        const limit = Math.sqrt(6 / (fanIn + fanOut));
        for (let i = 0; i < n; i++) params[offset + i] = rng.uniform(-limit, limit);
      }
      offset += n;
    }
  }
  return params;
}
