// Build step of the dashboard (npm run build): copies the page, its style and uPlot (from
// node_modules, never a CDN) beside the compiled scripts in dist/dashboard.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/dashboard');
const files = [
  ['dashboard/index.html', 'index.html'],
  ['dashboard/style.css', 'style.css'],
  ['node_modules/uplot/dist/uPlot.esm.js', 'vendor/uPlot.esm.js'],
  ['node_modules/uplot/dist/uPlot.min.css', 'vendor/uPlot.min.css'],
];
mkdirSync(join(out, 'vendor'), { recursive: true });
for (const [from, to] of files) copyFileSync(join(root, from), join(out, to));
