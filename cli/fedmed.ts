#!/usr/bin/env node
/**
 * The `fedmed` entry point. It checks the Node version before loading anything else: fedmed
 * needs Node 22 (node-seal's WebAssembly GC, process.execve, ...), and an older Node would fail
 * half-way through a command. On an older Node it prints one line saying what to do and exits 1;
 * otherwise it runs the program (cli/fedmedProgram.ts). Keep this file free of static imports
 * and of syntax older Nodes cannot parse.
 */
const REQUIRED_MAJOR = 22;
const major = Number(process.versions.node.split('.')[0]);
if (major < REQUIRED_MAJOR) {
  process.stderr.write(`fedmed: error: fedmed needs Node.js ${REQUIRED_MAJOR} or newer, this is Node ${process.versions.node} (${process.execPath}); install Node ${REQUIRED_MAJOR} (https://nodejs.org), or in the project run "npm run demo" / "npm test", which fetch Node ${REQUIRED_MAJOR} themselves, or ". .ci/use-node22.sh"\n`);
  process.exit(1);
}
await import('./fedmedProgram.js');
