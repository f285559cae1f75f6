/**
 * InputSpec: how a model takes a DICOM image in, the one recipe training and inference share
 * (edge-client/dicom/preprocess.ts applies it). Cases are tagged with `inputSpecHash(spec)`, so a
 * model only ever sees inputs prepared the way it was trained.
 *
 * - `modality`: accepted Modality (0008,0060) values; absent = any.
 * - `window`: a fixed VOI window, `'from-header'` (the header's first window; when the header has
 *   none, falls back to `'min-max'`), or `'min-max'` (the image's own range after rescale).
 * - `invert`: `'monochrome1'` inverts MONOCHROME1 images so that higher always means brighter.
 * - `size`: output [h, w]; `channels`: 1 (grey) or 3 (RGB); `normalise`: `'unit'` = [0, 1].
 */
import { createHash } from 'node:crypto';
import { ModelSpecError } from '../errors.js';
import { canonicalJson } from './canonicalJson.js';

export type InputWindow = { center: number; width: number } | 'from-header' | 'min-max';

export interface InputSpec {
  modality?: string | string[];
  window: InputWindow;
  invert: 'monochrome1' | 'never';
  /** Output [height, width]. */
  size: [number, number];
  channels: 1 | 3;
  /** 'unit': values in [0, 1]. */
  normalise: 'unit';
}

/** Largest accepted output side (a model input, not an image archive). */
export const MAX_INPUT_SIDE = 4096;

const KEYS: ReadonlySet<string> = new Set(['modality', 'window', 'invert', 'size', 'channels', 'normalise']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isSide(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_INPUT_SIDE;
}

function isModality(v: unknown): v is string {
  return typeof v === 'string' && /^[A-Z0-9_ ]{1,16}$/.test(v) && v.trim() === v && v !== '';
}

/** Validates an input spec read from JSON (a ModelSpec's `input`, a CLI file). `source` prefixes errors. */
export function parseInputSpec(value: unknown, source: string): InputSpec {
  if (!isRecord(value)) throw new ModelSpecError(`${source}: input spec must be an object`);
  for (const k of Object.keys(value)) {
    if (!KEYS.has(k)) throw new ModelSpecError(`${source}: unknown input spec field "${k}" (known: ${[...KEYS].join(', ')})`);
  }
  const { modality, window, invert, size, channels, normalise } = value;

  let mod: string | string[] | undefined;
  if (modality !== undefined) {
    if (isModality(modality)) mod = modality;
    else if (Array.isArray(modality) && modality.length > 0 && modality.every(isModality)) mod = [...modality];
    else throw new ModelSpecError(`${source}: "modality" must be a DICOM modality code (e.g. "CR") or a non-empty array of them`);
  }

  let win: InputWindow;
  if (window === 'from-header' || window === 'min-max') win = window;
  else if (isRecord(window)) {
    const { center, width } = window;
    const extra = Object.keys(window).filter((k) => k !== 'center' && k !== 'width');
    if (extra.length > 0) throw new ModelSpecError(`${source}: unknown "window" field "${extra[0]}"`);
    if (typeof center !== 'number' || !Number.isFinite(center)) throw new ModelSpecError(`${source}: "window.center" must be a finite number`);
    if (typeof width !== 'number' || !Number.isFinite(width) || width < 1) throw new ModelSpecError(`${source}: "window.width" must be a number >= 1 (PS3.3 C.11.2.1.2)`);
    win = { center, width };
  } else {
    throw new ModelSpecError(`${source}: "window" must be "from-header", "min-max" or {"center": number, "width": number}`);
  }

  if (invert !== 'monochrome1' && invert !== 'never') throw new ModelSpecError(`${source}: "invert" must be "monochrome1" or "never"`);
  if (!Array.isArray(size) || size.length !== 2 || !size.every(isSide)) {
    throw new ModelSpecError(`${source}: "size" must be [height, width], integers 1..${MAX_INPUT_SIDE}`);
  }
  if (channels !== 1 && channels !== 3) throw new ModelSpecError(`${source}: "channels" must be 1 or 3`);
  if (normalise !== 'unit') throw new ModelSpecError(`${source}: "normalise" must be "unit"`);

  return {
    ...(mod !== undefined ? { modality: mod } : {}),
    window: win,
    invert,
    size: [size[0] as number, size[1] as number],
    channels,
    normalise,
  };
}

/**
 * The spec used for a model without its own: the header's window (min-max when absent),
 * MONOCHROME1 inverted, resized to the model's [h, w], its channel count, values in [0, 1].
 * `inputShape` must be [h, w, c] with c 1 or 3.
 */
export function defaultInputSpec(inputShape: readonly number[]): InputSpec {
  const [h, w, c] = inputShape;
  if (inputShape.length !== 3 || !isSide(h) || !isSide(w) || (c !== 1 && c !== 3)) {
    throw new ModelSpecError(`inputShape [${inputShape.join(', ')}] is not an image [h, w, c] with c 1 or 3: no default DICOM input spec`);
  }
  return { window: 'from-header', invert: 'monochrome1', size: [h, w], channels: c, normalise: 'unit' };
}

/** sha256 (hex) of the spec's canonical JSON: equal specs hash equal, whatever the key order. */
export function inputSpecHash(spec: InputSpec): string {
  return createHash('sha256').update(canonicalJson(spec)).digest('hex');
}
