/**
 * `fedmed make-synthetic`: writes a seeded MedMNIST-style .npz of synthetic 28x28 images, so the
 * quick start and demos run offline without any real data.
 */
import { writeFileAtomic } from '../shared/atomicFile.js';
import { Command } from 'commander';
import { syntheticImages } from '../edge-client/data/syntheticImages.js';
import { encodeNpz } from '../edge-client/data/npzWriter.js';
import type { Dataset } from '../edge-client/data/dataset.js';
import { floatOption, intOption } from './parseNumber.js';

interface SynthFlags {
  out: string;
  n: number;
  classes: number;
  seed: number;
  shift: number;
  noise: number;
}

export function makeSyntheticCommand(): Command {
  return new Command('make-synthetic')
    .description('write a seeded synthetic MedMNIST-style .npz (train/val/test 28x28 images)')
    .requiredOption('--out <file.npz>', 'output file')
    .option('--n <count>', 'total images (70% train, 10% val, 20% test)', intOption('--n', 10), 1000)
    .option('--classes <k>', 'number of classes', intOption('--classes', 2), 2)
    .option('--seed <n>', 'seed', intOption('--seed'), 1)
    .option('--shift <v>', 'scanner intensity shift of this site', floatOption('--shift', -1), 0)
    .option('--noise <sd>', 'scanner noise level', floatOption('--noise'), 0.08)
    .action((flags: SynthFlags) => {
      const all = syntheticImages({ n: flags.n, numClasses: flags.classes, seed: flags.seed, scanner: { intensityShift: flags.shift, noise: flags.noise } });
      const nTrain = Math.round(flags.n * 0.7);
      const nVal = Math.round(flags.n * 0.1);
      const part = (from: number, to: number): Dataset => ({ x: all.x.subarray(from * 784, to * 784), exampleShape: all.exampleShape, y: all.y.subarray(from, to), numClasses: all.numClasses });
      const arrays: Parameters<typeof encodeNpz>[0] = {};
      for (const [name, d] of [['train', part(0, nTrain)], ['val', part(nTrain, nTrain + nVal)], ['test', part(nTrain + nVal, flags.n)]] as const) {
        arrays[`${name}_images`] = { dtype: 'u1', shape: [d.y.length, 28, 28], data: Uint8Array.from(d.x, (v) => Math.round(v * 255)) };
        arrays[`${name}_labels`] = { dtype: 'i4', shape: [d.y.length, 1], data: Int32Array.from(d.y) };
      }
      writeFileAtomic(flags.out, encodeNpz(arrays), 0o644); // synthetic data, asked for by name
      console.log(`wrote ${flags.out}: ${flags.n} synthetic images, ${flags.classes} classes, seed ${flags.seed}`);
    });
}
