/**
 * Seeded fault injection: whether a site drops at a protocol step, and whether it straggles in
 * a round, are pure functions of (seed, run, site, round, step), so a simulation replays the
 * same faults. Dropping cuts the site's connection (it reconnects with backoff, as after a
 * crash); a straggler answers its fit `delaySeconds` late (and misses the round if that is past
 * the deadline).
 */
import { createHash } from 'node:crypto';
import type { FaultAction, FaultHook, FaultPoint } from '../edge-client/federation/edgeClient.js';
import type { SimulationConfig } from './simulationConfig.js';

/** A uniform [0, 1) draw keyed by its parts. */
export function keyedUniform(...parts: (string | number)[]): number {
  return createHash('sha256').update(parts.join('\u0000')).digest().readUInt32LE(0) / 2 ** 32;
}

/**
 * The fault hook of one site. `runOf` maps an experiment id to the run's label (ids are random;
 * labels keep the faults the same between replays).
 */
export function siteFaults(faults: SimulationConfig['faults'], seed: number, site: string, runOf: (experiment: string) => string): FaultHook {
  return (point: FaultPoint, experiment: string, round: number): FaultAction => {
    const run = runOf(experiment);
    const p = faults.dropout[point] ?? 0;
    if (p > 0 && keyedUniform(seed, run, site, round, point) < p) return { kind: 'drop' };
    const s = faults.stragglers;
    if (point === 'fit_res' && s && s.fraction > 0 && keyedUniform(seed, run, site, round, 'straggler') < s.fraction) return { kind: 'delay', ms: s.delaySeconds * 1000 };
    return { kind: 'none' };
  };
}
