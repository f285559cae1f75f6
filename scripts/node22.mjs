#!/usr/bin/env node
/* global process */
// Runs a command under Node >= 22 (used by the package.json scripts demo, test and bench).
// On an older Node, it fetches Node 22 once from the npm registry (package node-<platform>-<arch>,
// which carries the official binary; the same cache as .ci/use-node22.sh), says so in one line,
// and runs the command with that Node first on PATH. Plain JavaScript that Node 18/20 can parse.
//   node scripts/node22.mjs "npm run build && node dist/cli/fedmed.js demo" [extra args...]
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

const REQUIRED = 22;
const [command, ...extra] = process.argv.slice(2);
if (!command) {
  process.stderr.write('usage: node scripts/node22.mjs "COMMAND" [ARGS...]\n');
  process.exit(2);
}
const quote = (a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`);
const line = [command, ...extra.map(quote)].join(' ');
const env = { ...process.env };

if (Number(process.versions.node.split('.')[0]) < REQUIRED) {
  const platform = { linux: 'linux', darwin: 'darwin', win32: 'win' }[process.platform];
  const arch = { x64: 'x64', arm64: 'arm64' }[process.arch];
  if (!platform || !arch) {
    process.stderr.write(`fedmed needs Node ${REQUIRED} (this is ${process.versions.node}) and there is no node-${process.platform}-${process.arch} package to fetch; install Node ${REQUIRED} from https://nodejs.org\n`);
    process.exit(1);
  }
  const pkg = `node-${platform}-${arch}`;
  const home = process.env.FEDMED_NODE_HOME || join(homedir(), '.cache', 'fedmed-node22');
  const bin = platform === 'win' ? join(home, 'node_modules', pkg) : join(home, 'node_modules', pkg, 'bin');
  const nodeBin = join(bin, platform === 'win' ? 'node.exe' : 'node');
  if (!existsSync(nodeBin)) {
    process.stderr.write(`fedmed: Node ${process.versions.node} is too old (fedmed needs ${REQUIRED}); fetching ${pkg}@${REQUIRED} from the npm registry into ${home} (once)\n`);
    mkdirSync(home, { recursive: true });
    const r = spawnSync('npm', ['install', '--prefix', home, '--no-save', '--no-audit', '--no-fund', '--loglevel=error', `${pkg}@${REQUIRED}`], { stdio: ['ignore', 'ignore', 'inherit'], shell: process.platform === 'win32' });
    if (r.status !== 0 || !existsSync(nodeBin)) {
      process.stderr.write(`fedmed: could not fetch ${pkg}@${REQUIRED} from the npm registry; install Node ${REQUIRED} from https://nodejs.org\n`);
      process.exit(1);
    }
  } else {
    process.stderr.write(`fedmed: Node ${process.versions.node} is too old (fedmed needs ${REQUIRED}); running under Node ${REQUIRED} from ${bin}\n`);
  }
  const pathKey = Object.keys(env).find((k) => k.toUpperCase() === 'PATH') || 'PATH';
  env[pathKey] = `${bin}${delimiter}${env[pathKey] || ''}`;
}

const child = spawn(line, { stdio: 'inherit', shell: true, env });
// A terminal's Ctrl-C reaches the whole process group; wait for the command's own exit. SIGTERM is passed on.
process.on('SIGTERM', () => child.kill('SIGTERM'));
for (const s of ['SIGINT', 'SIGHUP']) process.on(s, () => {}); // (the whole process group gets these: the command handles them)
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 }[signal] || 1) : 1)));
