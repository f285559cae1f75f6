/**
 * The named layout of the one flat Float32Array that holds all of a model's parameters.
 * Every subsystem (training, ONNX export, clipping, masking, aggregation, OTA) works on that
 * vector; the layout says which slice is which tensor.
 */
import { ParamsError } from '../errors.js';
import { resolveLayers, type ModelSpec } from './modelSpec.js';

export interface LayoutEntry {
  name: string;
  shape: number[];
  /** Offset in elements (not bytes) into the flat vector. */
  offset: number;
}

export interface ParameterLayout {
  entries: LayoutEntry[];
  /** Total number of parameters. */
  size: number;
}

export function layoutOf(spec: ModelSpec): ParameterLayout {
  const entries: LayoutEntry[] = [];
  let offset = 0;
  for (const layer of resolveLayers(spec)) {
    for (const p of layer.params) {
      entries.push({ name: p.name, shape: p.shape, offset });
      offset += elementCount(p.shape);
    }
  }
  return { entries, size: offset };
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A zero-copy view of one named tensor inside the flat vector. */
export function paramView(params: Float32Array, layout: ParameterLayout, name: string): Float32Array {
  const entry = layout.entries.find((e) => e.name === name);
  if (!entry) throw new ParamsError(`no parameter named "${name}" in this layout`);
  return params.subarray(entry.offset, entry.offset + elementCount(entry.shape));
}

/** Throws ParamsError unless `params` has exactly the layout's size and only finite values. */
export function checkParams(params: Float32Array, layout: ParameterLayout, what = 'parameters'): void {
  if (params.length !== layout.size) {
    throw new ParamsError(`${what}: expected ${layout.size} values for this model, got ${params.length}`);
  }
  for (let i = 0; i < params.length; i++) {
    if (!Number.isFinite(params[i])) throw new ParamsError(`${what}: value ${i} is not finite (${params[i]})`);
  }
}

export function sameLayout(a: ParameterLayout, b: ParameterLayout): boolean {
  return (
    a.size === b.size &&
    a.entries.length === b.entries.length &&
    a.entries.every((e, i) => e.name === b.entries[i].name && e.offset === b.entries[i].offset && e.shape.join(',') === b.entries[i].shape.join(','))
  );
}
