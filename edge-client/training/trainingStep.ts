/**
 * One optimisation step on a mini-batch: softmax cross-entropy (+ the FedProx proximal term)
 * on a TfjsModel, either applied at once (`minimize`, single thread) or returned as a flat
 * gradient vector and applied later (`gradients` / `applyFlatGradients`, data-parallel workers
 * that average their gradients first).
 */
import * as tf from '@tensorflow/tfjs';
import type { TfjsModel } from '../../models/tfjsModel.js';
import { elementCount } from '../../shared/model/parameterLayout.js';
import { numClassesOf } from '../../shared/model/modelSpec.js';

export type OptimizerName = 'sgd' | 'adam';

export interface StepOptions {
  optimizer: OptimizerName;
  learningRate: number;
  /** FedProx mu; 0 = off. */
  proxMu?: number;
}

// A type alias (not an interface) so that tf.tidy accepts it as a return value.
export type BatchOutcome = {
  /** Mean loss over the batch (before any scaling). */
  loss: number;
  /** Correct top-1 predictions in the batch. */
  correct: number;
};

export class TrainingStep {
  private readonly optimizer: tf.Optimizer;
  private readonly anchors: tf.Tensor[];
  private readonly mu: number;
  private readonly classes: number;

  constructor(private readonly model: TfjsModel, options: StepOptions) {
    this.optimizer = options.optimizer === 'adam' ? tf.train.adam(options.learningRate) : tf.train.sgd(options.learningRate);
    this.mu = options.proxMu ?? 0;
    // The global model at the start of local training, for the proximal term.
    this.anchors = this.mu > 0 ? model.variables.map((v) => tf.keep(v.clone())) : [];
    this.classes = numClassesOf(model.spec);
  }

  /** Computes the loss on the batch and updates the model. */
  minimize(x: Float32Array, y: Int32Array, exampleShape: number[]): BatchOutcome {
    return tf.tidy(() => {
      const { xs, labels, oneHot } = this.tensors(x, y, exampleShape);
      let predicted: tf.Tensor | null = null;
      const loss = this.optimizer.minimize(() => {
        const out = this.loss(xs, oneHot, 1);
        predicted = out.predicted;
        return out.loss;
      }, true, this.model.variables)!;
      return this.outcome(loss, predicted!, labels);
    });
  }

  /**
   * Writes the gradient of `scale * loss(batch)` into `out` (layout order) without updating the
   * model. Workers use scale = shard size / batch size so that summing their gradients gives
   * the gradient of the whole batch's mean loss.
   */
  gradients(x: Float32Array, y: Int32Array, exampleShape: number[], scale: number, out: Float32Array): BatchOutcome {
    return tf.tidy(() => {
      const { xs, labels, oneHot } = this.tensors(x, y, exampleShape);
      let predicted: tf.Tensor | null = null;
      let unscaled: tf.Scalar | null = null;
      const { grads } = tf.variableGrads(() => {
        const r = this.loss(xs, oneHot, scale);
        predicted = r.predicted;
        unscaled = tf.keep(r.unscaled);
        return r.loss;
      }, this.model.variables);
      this.model.layout.entries.forEach((e, i) => out.set(grads[this.model.variables[i].name].dataSync() as Float32Array, e.offset));
      const result = this.outcome(unscaled!, predicted!, labels);
      (unscaled as tf.Scalar | null)?.dispose();
      return result;
    });
  }

  /** Applies a flat gradient vector (layout order) with this step's optimizer. */
  applyFlatGradients(flat: Float32Array): void {
    tf.tidy(() => {
      const named: tf.NamedTensorMap = {};
      this.model.layout.entries.forEach((e, i) => {
        named[this.model.variables[i].name] = tf.tensor(flat.subarray(e.offset, e.offset + elementCount(e.shape)), e.shape, 'float32');
      });
      this.optimizer.applyGradients(named);
    });
  }

  dispose(): void {
    this.optimizer.dispose();
    for (const a of this.anchors) a.dispose();
  }

  private tensors(x: Float32Array, y: Int32Array, exampleShape: number[]): { xs: tf.Tensor; labels: tf.Tensor1D; oneHot: tf.Tensor } {
    const xs = tf.tensor(x, [y.length, ...exampleShape], 'float32');
    const labels = tf.tensor1d(y, 'int32');
    return { xs, labels, oneHot: tf.oneHot(labels, this.classes) };
  }

  private loss(xs: tf.Tensor, oneHot: tf.Tensor, scale: number): { loss: tf.Scalar; unscaled: tf.Scalar; predicted: tf.Tensor } {
    const logits = this.model.logits(xs, true);
    const predicted = tf.keep(tf.argMax(logits, 1));
    let l = tf.losses.softmaxCrossEntropy(oneHot, logits) as tf.Scalar;
    if (this.mu > 0) {
      const prox = tf.addN(this.model.variables.map((v, k) => tf.sum(tf.square(tf.sub(v, this.anchors[k])))));
      l = tf.add(l, tf.mul(this.mu / 2, prox));
    }
    return { loss: scale === 1 ? l : tf.mul(l, scale), unscaled: l, predicted };
  }

  private outcome(loss: tf.Scalar, predicted: tf.Tensor, labels: tf.Tensor): BatchOutcome {
    const hits = tf.sum(tf.cast(tf.equal(predicted, labels), 'int32'));
    const result = { loss: loss.dataSync()[0], correct: hits.dataSync()[0] };
    predicted.dispose();
    return result;
  }
}
