/**
 * A rule's optimiser state (named float32 vectors) as bytes, to persist it next to the version
 * it belongs to: `u32 headerLength | header JSON {names, lengths} | float32 data`.
 */
import type { RuleState } from './aggregationRule.js';

export function encodeRuleState(state: RuleState): Buffer {
  const names = Object.keys(state).sort();
  const header = Buffer.from(JSON.stringify({ names, lengths: names.map((n) => state[n].length) }));
  const pad = (4 - ((4 + header.length) % 4)) % 4;
  const total = names.reduce((a, n) => a + state[n].length * 4, 0);
  const out = Buffer.alloc(4 + header.length + pad + total);
  out.writeUInt32LE(header.length + pad, 0);
  header.copy(out, 4);
  out.fill(0x20, 4 + header.length, 4 + header.length + pad);
  let offset = 4 + header.length + pad;
  for (const n of names) {
    out.set(new Uint8Array(state[n].buffer, state[n].byteOffset, state[n].byteLength), offset);
    offset += state[n].byteLength;
  }
  return out;
}

export function decodeRuleState(bytes: Uint8Array): RuleState {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 4) throw new RangeError('strategy state file is truncated');
  const headerLength = buf.readUInt32LE(0);
  if (4 + headerLength > buf.length) throw new RangeError('strategy state header is truncated');
  const { names, lengths } = JSON.parse(buf.subarray(4, 4 + headerLength).toString()) as { names: string[]; lengths: number[] };
  let offset = 4 + headerLength;
  const state: RuleState = {};
  names.forEach((n, i) => {
    const bytesNeeded = lengths[i] * 4;
    if (offset + bytesNeeded > buf.length) throw new RangeError(`strategy state "${n}" is truncated`);
    const v = new Float32Array(lengths[i]);
    new Uint8Array(v.buffer).set(buf.subarray(offset, offset + bytesNeeded));
    state[n] = v;
    offset += bytesNeeded;
  });
  if (offset !== buf.length) throw new RangeError('strategy state file has trailing bytes');
  return state;
}
