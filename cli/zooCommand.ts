/** `fedmed zoo`: lists the built-in models with their parameter counts. */
import { Command } from 'commander';
import { ZOO } from '../models/zoo.js';
import { layoutOf } from '../shared/model/parameterLayout.js';

export function zooCommand(): Command {
  return new Command('zoo')
    .description('list the built-in models')
    .option('--json', 'print JSON')
    .action((flags: { json?: boolean }) => {
      const rows = ZOO.map((e) => ({ name: e.name, description: e.description, parametersAt10Classes: layoutOf(e.build({ numClasses: 10 })).size }));
      if (flags.json) process.stdout.write(`${JSON.stringify(rows)}\n`);
      else for (const r of rows) console.log(`${r.name.padEnd(12)} ${String(r.parametersAt10Classes).padStart(8)} params @10 classes  ${r.description}`);
    });
}
