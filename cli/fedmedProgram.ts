/**
 * The `fedmed` command line (loaded by cli/fedmed.ts once the Node version is checked). Expected failures (FedmedError: bad input, missing files,
 * unavailable backends) print one line naming what is wrong and exit 1, without a stack trace;
 * anything else is a bug and prints its stack (exit 70).
 */
import { Command, CommanderError } from 'commander';
import { FedmedError } from '../shared/errors.js';
import { exportOnnxCommand } from './exportOnnxCommand.js';
import { inferCommand } from './inferCommand.js';
import { makeSyntheticCommand } from './makeSyntheticCommand.js';
import { trainCommand } from './trainCommand.js';
import { zooCommand } from './zooCommand.js';
import { coordinatorCommand } from './coordinatorCommand.js';
import { edgeCommand } from './edgeCommand.js';
import { experimentCommand, roundCommand, statusCommand, tokenCommand } from './researchCommands.js';
import { siteCommand } from './siteCommand.js';
import { privacyCommand } from './privacyCommand.js';
import { modelCommand } from './modelCommand.js';
import { simulateCommand } from './simulateCommand.js';
import { federationCommand } from './federationCommand.js';
import { demoCommand } from './demoCommand.js';
import { auditCommand } from './auditCommand.js';

const program = new Command('fedmed')
  .description('fedmed: federated learning for hospital edge nodes')
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride();

program.addCommand(trainCommand());
program.addCommand(exportOnnxCommand());
program.addCommand(inferCommand());
program.addCommand(zooCommand());
program.addCommand(makeSyntheticCommand());
program.addCommand(coordinatorCommand());
program.addCommand(siteCommand());
program.addCommand(edgeCommand());
program.addCommand(experimentCommand());
program.addCommand(roundCommand());
program.addCommand(statusCommand());
program.addCommand(tokenCommand());
program.addCommand(privacyCommand());
program.addCommand(modelCommand());
program.addCommand(simulateCommand());
program.addCommand(federationCommand());
program.addCommand(demoCommand());
program.addCommand(auditCommand());

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode;
  } else if (err instanceof FedmedError) {
    process.stderr.write(`fedmed: error: ${err.message}\n`);
    process.exitCode = 1;
  } else {
    process.stderr.write(`fedmed: internal error (please report): ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 70;
  }
}
