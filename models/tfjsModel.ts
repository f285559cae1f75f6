/**
 * tfjs builder: ModelSpec + flat params -> a trainable tfjs model, and back to a flat vector.
 *
 * The model is a list of tf.Variables (one per layout entry, in layout order) and a forward
 * function built from tfjs-core ops. We do not use tfjs-layers: the variables ARE the layout,
 * so moving between the flat vector and the model is one copy per tensor.
 */
import * as tf from '@tensorflow/tfjs';
import { resolveLayers, type ModelSpec, type ResolvedLayer } from '../shared/model/modelSpec.js';
import { checkParams, elementCount, layoutOf, type ParameterLayout } from '../shared/model/parameterLayout.js';

export class TfjsModel {
  readonly spec: ModelSpec;
  readonly layout: ParameterLayout;
  /** One variable per layout entry, in layout order. */
  readonly variables: tf.Variable[];
  private readonly layers: ResolvedLayer[];
  private readonly variableByName: Map<string, tf.Variable>;

  constructor(spec: ModelSpec, params: Float32Array) {
    this.spec = spec;
    this.layout = layoutOf(spec);
    checkParams(params, this.layout, `parameters for model "${spec.name}"`);
    this.layers = resolveLayers(spec);
    // tidy disposes the temporary initial-value tensors; the variables keep their data.
    this.variables = tf.tidy(() =>
      this.layout.entries.map((e) =>
        tf.variable(tf.tensor(params.subarray(e.offset, e.offset + elementCount(e.shape)), e.shape, 'float32'), true, `${e.name}_${uniqueSuffix()}`),
      ),
    );
    this.variableByName = new Map(this.layout.entries.map((e, i) => [e.name, this.variables[i]]));
  }

  /**
   * Forward pass to the logits (everything before a final softmax). `x` is [batch, ...inputShape].
   * With `training`, dropout is active.
   */
  logits(x: tf.Tensor, training = false): tf.Tensor2D {
    let h: tf.Tensor = x;
    const layers = this.layers;
    for (let i = 0; i < layers.length; i++) {
      const layer = layers[i];
      const spec = layer.spec;
      // conv/dense followed by relu run as one fused kernel (faster, and fused gradients exist).
      const fuseRelu = layers[i + 1]?.spec.type === 'relu';
      switch (spec.type) {
        case 'conv2d': {
          const w = layer.window!;
          h = tf.fused.conv2d({
            x: h as tf.Tensor4D,
            filter: this.param(layer, 'kernel') as tf.Tensor4D,
            bias: this.param(layer, 'bias'),
            strides: w.strides,
            pad: spec.padding ?? 'valid',
            activation: fuseRelu ? 'relu' : 'linear',
          });
          if (fuseRelu) i++;
          break;
        }
        case 'maxpool2d': {
          const w = layer.window!;
          h = tf.maxPool(h as tf.Tensor4D, w.size, w.strides, spec.padding ?? 'valid');
          break;
        }
        case 'dense':
          h = tf.fused.matMul({ a: h as tf.Tensor2D, b: this.param(layer, 'kernel') as tf.Tensor2D, bias: this.param(layer, 'bias'), activation: fuseRelu ? 'relu' : 'linear' });
          if (fuseRelu) i++;
          break;
        case 'flatten':
          h = tf.reshape(h, [h.shape[0], -1]);
          break;
        case 'relu':
          h = tf.relu(h);
          break;
        case 'dropout':
          if (training && spec.rate > 0) h = tf.dropout(h, spec.rate);
          break;
        case 'softmax':
          // Logits stop here; probabilities() applies it.
          break;
      }
    }
    return h as tf.Tensor2D;
  }

  /** Class probabilities, [batch, classes]. */
  probabilities(x: tf.Tensor): tf.Tensor2D {
    return tf.tidy(() => tf.softmax(this.logits(x, false)));
  }

  /** Copies the current variable values into one flat vector (into `out` when given). */
  getParams(out?: Float32Array): Float32Array {
    const flat = out ?? new Float32Array(this.layout.size);
    this.layout.entries.forEach((e, i) => flat.set(this.variables[i].dataSync() as Float32Array, e.offset));
    return flat;
  }

  /** Replaces all variable values from a flat vector. */
  setParams(params: Float32Array): void {
    checkParams(params, this.layout, `parameters for model "${this.spec.name}"`);
    tf.tidy(() => {
      this.layout.entries.forEach((e, i) => {
        this.variables[i].assign(tf.tensor(params.subarray(e.offset, e.offset + elementCount(e.shape)), e.shape, 'float32'));
      });
    });
  }

  dispose(): void {
    for (const v of this.variables) v.dispose();
  }

  private param(layer: ResolvedLayer, kind: 'kernel' | 'bias'): tf.Variable {
    return this.variableByName.get(`layer${layer.index}_${layer.spec.type}/${kind}`)!;
  }
}

let counter = 0;
/** tfjs variable names must be unique per engine; several models may coexist. */
function uniqueSuffix(): string {
  return String(counter++);
}
