/**
 * CKKS cost in one process, with the same code the edges and the coordinator run: a site's
 * encode + encrypt of its weighted update (the goal: 1M floats <= 1 s at <= 4.5x raw bytes),
 * the coordinator's load-check-add per site and the aggregate's serialisation (with 0% and 10%
 * of the sites dropped: under CKKS a dropout costs nothing, the sum simply has fewer terms),
 * and a site's decrypt + apply of the aggregate. For N = 100 the server adds 10 distinct
 * encrypted updates ten times each: the server's cost does not depend on the values.
 */
import { CiphertextSum } from '../shared/secure/ckks/ciphertextSum.js';
import { ckksMaxWeight } from '../shared/secure/ckks/ckksParams.js';
import { CkksSecretKey } from '../shared/secure/ckks/ckksSecretKey.js';
import { applyCkksAggregate, encodeCkksUpdate } from '../shared/secure/ckks/ckksUpdate.js';
import { ckksContext } from '../shared/secure/ckks/sealContext.js';
import { median, round } from './stats.js';

export interface CkksBenchCase {
  sites: number;
  parameters: number;
  dropout: number;
  /** Site: encode (clip, weight) + encrypt, ms. */
  clientEncryptMs: number;
  /** Site: decrypt the aggregate and apply it to its model, ms. */
  clientDecryptApplyMs: number;
  /** Coordinator: load + check + add every surviving site's update, then serialise, ms. */
  serverAddMs: number;
  serverSerializeMs: number;
  serverMsPerSite: number;
  bytesPerSite: { sent: number; received: number; rawFloat32: number; sentOverRaw: number; receivedOverRaw: number };
}

export async function benchCkks(o: { sites: number[]; parameters: number[]; dropouts: number[]; repeats: number }): Promise<{ cases: CkksBenchCase[]; peakRssMB: number }> {
  const ctx = await ckksContext();
  const { key } = await CkksSecretKey.generate();
  const cases: CkksBenchCase[] = [];
  let peakRss = process.memoryUsage().rss;
  const sample = () => (peakRss = Math.max(peakRss, process.memoryUsage().rss));
  try {
    for (const d of o.parameters) {
      const base = new Float32Array(d).map((_, i) => Math.cos(i) * 0.1);
      const deltas = Array.from({ length: 10 }, (_, s) => new Float32Array(d).map((_, i) => Math.sin(i + s) * 0.01));
      for (const n of o.sites) {
        const params = { range: 1, maxWeight: ckksMaxWeight(n, 1) };
        // Client encryption, timed per update; the 10 distinct updates feed the server.
        const encryptMs: number[] = [];
        const encrypted: Uint8Array[] = [];
        for (let s = 0; s < Math.max(o.repeats, deltas.length); s++) {
          const t = performance.now();
          const { values } = encodeCkksUpdate(deltas[s % deltas.length], 100 + s, params);
          const bytes = key.encrypt(values);
          encryptMs.push(performance.now() - t);
          if (encrypted.length < deltas.length) encrypted.push(bytes);
          sample();
        }
        for (const dropout of o.dropouts) {
          const alive = n - Math.round(n * dropout);
          const add: number[] = [];
          const ser: number[] = [];
          const dec: number[] = [];
          let aggregateBytes = 0;
          for (let r = 0; r < o.repeats; r++) {
            const sum = new CiphertextSum(ctx, d + 1);
            let t = performance.now();
            for (let s = 0; s < alive; s++) sum.add(encrypted[s % encrypted.length], `site-${s}`);
            add.push(performance.now() - t);
            sample();
            t = performance.now();
            const aggregate = sum.serialize();
            ser.push(performance.now() - t);
            sum.dispose();
            aggregateBytes = aggregate.byteLength;
            t = performance.now();
            applyCkksAggregate(base, key.decrypt(aggregate, d + 1));
            dec.push(performance.now() - t);
            sample();
          }
          const raw = d * 4;
          cases.push({
            sites: n,
            parameters: d,
            dropout,
            clientEncryptMs: round(median(encryptMs), 1),
            clientDecryptApplyMs: round(median(dec), 1),
            serverAddMs: round(median(add), 1),
            serverSerializeMs: round(median(ser), 1),
            serverMsPerSite: round(median(add) / alive, 2),
            bytesPerSite: { sent: encrypted[0].byteLength, received: aggregateBytes, rawFloat32: raw, sentOverRaw: round(encrypted[0].byteLength / raw, 3), receivedOverRaw: round(aggregateBytes / raw, 3) },
          });
        }
      }
    }
  } finally {
    key.dispose();
  }
  return { cases, peakRssMB: Math.round(peakRss / 2 ** 20) };
}
