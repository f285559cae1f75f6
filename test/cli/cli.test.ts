import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir, sharedDataFile } from '../helpers/paths.js';
import { runCli } from '../helpers/runCli.js';
import { freePort, startCoordinator, stopProc } from '../helpers/federation.js';
import { COORDINATOR_SEMI_SPACE_MB } from '../../cli/coordinatorHeap.js';

describe('cli: the fedmed command in child processes', function () {
  this.timeout(180_000);
  let t: ReturnType<typeof makeTempDir>;
  before(() => (t = makeTempDir()));
  after(() => t.cleanup());

  it('--help works on every command', async () => {
    for (const args of [['--help'], ['train', '--help'], ['export-onnx', '--help'], ['infer', '--help'], ['zoo', '--help'], ['make-synthetic', '--help'], ['coordinator', 'start', '--help'], ['site', 'add', '--help'], ['site', 'certify', '--help'], ['federation', 'init', '--help'], ['federation', 'certify-coordinator', '--help'], ['federation', 'rotate-coordinator-key', '--help'], ['edge', 'start', '--help'], ['experiment', 'create', '--help'], ['round', 'start', '--help'], ['status', '--help'], ['privacy', 'epsilon', '--help']]) {
      const r = await runCli(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /Usage: fedmed/);
    }
  });

  it('make-synthetic -> train --json -> export-onnx -> infer --json, offline, end to end', async () => {
    const npz = join(t.dir, 'site.npz');
    const params = join(t.dir, 'site.fmp');
    const onnx = join(t.dir, 'site.onnx');
    let r = await runCli(['make-synthetic', '--out', npz, '--n', '400', '--seed', '3']);
    assert.equal(r.code, 0, r.stderr);
    r = await runCli(['train', '--model', 'cnn-28', '--data', npz, '--epochs', '2', '--backend', 'wasm', '--out', params, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.backend, 'wasm');
    assert.equal(report.epochs.length, 2);
    assert.equal(report.examples.train, 280);
    assert.ok(report.test.accuracy > 0.9, JSON.stringify(report.test));
    assert.ok(report.test.auc > 0.9);
    assert.ok(existsSync(params));

    r = await runCli(['export-onnx', '--params', params, '--out', onnx, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).model, 'cnn-28');

    r = await runCli(['infer', '--model', onnx, '--input', npz, '--providers', 'cuda,cpu', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const inf = JSON.parse(r.stdout);
    assert.equal(inf.examples, 80);
    assert.equal(inf.predictions.length, 80);
    assert.equal(inf.provider, inf.providerAttempts[inf.providerAttempts.length - 1].provider);
    // ONNX inference agrees with the tfjs evaluation of the same parameters.
    assert.ok(Math.abs(inf.metrics.accuracy - report.test.accuracy) < 1e-9, `${inf.metrics.accuracy} vs ${report.test.accuracy}`);
  });

  it('trains logistic regression on a CSV (real UCI Cleveland data when present)', async () => {
    const real = sharedDataFile('uci_heart_disease/processed.cleveland.data');
    let data = real;
    if (!data) {
      data = join(t.dir, 'tab.csv');
      const rows = Array.from({ length: 200 }, (_, i) => `${i % 7},${(i * 13) % 11},${i % 2}`);
      writeFileSync(data, `a,b,y\n${rows.join('\n')}\n`);
    }
    const r = await runCli(['train', '--model', 'logreg', '--data', data, '--epochs', '30', '--batch-size', '16', '--lr', '0.01', '--binarize-label', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    if (real) assert.ok(report.test.accuracy > 0.7, `Cleveland logreg accuracy ${report.test.accuracy}`);
  });

  it('privacy epsilon and noise agree with the accountant (Abadi et al. setting)', async () => {
    let r = await runCli(['privacy', 'epsilon', '--noise-multiplier', '4', '--sampling-rate', '0.01', '--steps', '10000', '--delta', '1e-5', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { epsilon, order } = JSON.parse(r.stdout) as { epsilon: number; order: number };
    assert.ok(Math.abs(epsilon - 1.04) < 0.01 && order > 1);
    r = await runCli(['privacy', 'noise', '--target-epsilon', String(epsilon), '--sampling-rate', '0.01', '--steps', '10000', '--delta', '1e-5', '--json']);
    assert.ok(Math.abs((JSON.parse(r.stdout) as { noiseMultiplier: number }).noiseMultiplier - 4) < 0.01);
    r = await runCli(['privacy', 'epsilon', '--noise-multiplier', '4', '--sampling-rate', '1.5', '--steps', '10', '--delta', '1e-5']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /sampling rate q must be in \(0, 1\]/);
  });

  const failures: [string, string[], RegExp][] = [
    ['a missing data file', ['train', '--data', '/nonexistent/x.npz'], /\/nonexistent\/x\.npz: cannot read \(ENOENT\)/],
    ['an unknown model', ['export-onnx', '--model', 'resnet-900', '--out', '/tmp/x.onnx'], /unknown model "resnet-900"/],
    ['a bad number', ['train', '--data', 'x.npz', '--epochs', 'many'], /--epochs must be an integer/],
    ['an unknown provider', ['infer', '--model', 'x.onnx', '--input', 'x.npz', '--providers', 'rocm'], /unknown execution provider "rocm"/],
  ];
  for (const [what, args, message] of failures) {
    it(`exits non-zero with a one-line message and no stack trace for ${what}`, async () => {
      const r = await runCli(args, { cwd: t.dir });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    });
  }

  it('refuses a malformed model spec file and a CSV with an unparsable value, naming them', async () => {
    const spec = join(t.dir, 'bad-spec.json');
    writeFileSync(spec, JSON.stringify({ name: 'x', inputShape: [13], layers: [{ type: 'dense', units: 0 }] }));
    let r = await runCli(['export-onnx', '--model', spec, '--out', join(t.dir, 'never.onnx')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad-spec\.json: layers\[0\]\.units must be a positive integer/);
    const csv = join(t.dir, 'bad.csv');
    writeFileSync(csv, 'age,chol,y\n50,200,0\n61,high,1\n');
    r = await runCli(['train', '--data', csv, '--epochs', '1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.csv: line 3, column "chol": cannot parse "high" as a number/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  it('refuses a corrupt ONNX file and a corrupt params file, naming them', async () => {
    const onnx = join(t.dir, 'corrupt.onnx');
    writeFileSync(onnx, readFileSync(join(t.dir, 'site.onnx')).subarray(0, 100));
    let r = await runCli(['infer', '--model', onnx, '--input', join(t.dir, 'site.npz'), '--providers', 'cpu']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /corrupt\.onnx: onnxruntime cannot load the model/);
    const params = join(t.dir, 'corrupt.fmp');
    const bytes = readFileSync(join(t.dir, 'site.fmp'));
    bytes[bytes.length - 10] ^= 0xff;
    writeFileSync(params, bytes);
    r = await runCli(['export-onnx', '--params', params, '--out', join(t.dir, 'never.onnx')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /corrupt\.fmp: payload SHA-256 .* does not match/);
    assert.ok(!existsSync(join(t.dir, 'never.onnx')), 'nothing half-written');
  });

  it('coordinator start: one process with the coordinator\'s heap settings, no ML runtime loaded, stops on SIGTERM', async function () {
    if (!existsSync('/proc/self/cmdline')) this.skip(); // reads the process table (Linux)
    const c = await startCoordinator(join(t.dir, 'coord-heap'), await freePort());
    try {
      const pid = c.child.pid!;
      // Re-executed in place (same pid, so signals reach the coordinator itself) with a small young generation.
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      assert.ok(argv.includes(`--max-semi-space-size=${COORDINATOR_SEMI_SPACE_MB}`), argv.join(' '));
      // The CLI loads commands' work lazily: the coordinator maps no onnxruntime library.
      assert.doesNotMatch(readFileSync(`/proc/${pid}/maps`, 'utf8'), /onnxruntime/);
    } finally {
      assert.equal(await stopProc(c), 0);
    }
  });
});
