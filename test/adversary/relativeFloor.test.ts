/**
 * The relative local accuracy floor, on by default (issue 17, item 5): a real edge process with
 * a holdout (test) split and NO deployment settings of its own (the default site policy) serves
 * a version; the coordinator (scripted, certified) offers a signed version that is much worse
 * on the site's local test data: refused, the reason naming the tolerance and the serving
 * version (never the figures), the old version keeps answering inference. A version within the
 * tolerance is accepted; `maxAccuracyDrop: null` in policy.json switches the check off; `policy
 * init` writes the default.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_MAX_ACCURACY_DROP, defaultPolicy, loadSitePolicy, policyPath, writeSitePolicy } from '../../edge-client/policy/sitePolicy.js';
import { layoutOf } from '../../shared/model/parameterLayout.js';
import { loadParamsFile } from '../../shared/model/paramsFile.js';
import { FakeCoordinator } from '../helpers/fakeCoordinator.js';
import { freePort, stopProc, waitFor } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { runCli } from '../helpers/runCli.js';
import { dataFile, SPEC, startEdge, waitEvent, type EdgeUnderTest } from './harness.js';
import { ScriptedOta, servingVersion } from './scriptedOta.js';

/** The same model with the last dense layer negated: for 2 classes every prediction flips. */
function inverted(p: Float32Array): Float32Array {
  const out = p.slice();
  for (const e of layoutOf(SPEC).entries.slice(-2)) for (let i = e.offset; i < e.offset + e.shape.reduce((a, b) => a * b, 1); i++) out[i] = -out[i];
  return out;
}

/** A different version (another id) that predicts the same: one weight nudged by 1e-6. */
function nudged(p: Float32Array, k: number): Float32Array {
  const out = p.slice();
  out[k] += 1e-6;
  return out;
}

async function infer(port: number): Promise<{ version: string; predictedClass: number }> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: Array.from({ length: 784 }, (_, i) => (i % 255) / 255) }) });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as { version: string; predictedClass: number };
}

describe('adversary: a worse signed version at a site with a holdout split and the default policy (real edge process serving inference)', function () {
  this.timeout(120_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let edge: EdgeUnderTest;
  let ota: ScriptedOta;
  let port = 0;
  let stateDir = '';
  let good: Float32Array;

  before(async () => {
    // A model trained on this site's own training split (test accuracy near 1 on its 60 test examples).
    const data = await dataFile(t.dir, 1, 300);
    const out = join(t.dir, 'good.fmp');
    const r = await runCli(['train', '--data', data, '--model', 'cnn-28', '--epochs', '3', '--seed', '1', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    good = loadParamsFile(out, SPEC).params;
    await fake.start();
    ota = new ScriptedOta(fake);
    port = await freePort();
    // No policy file, no policy flags: the defaults.
    edge = await startEdge(fake, t.dir, 'hosp', { n: 300, args: ['--serve-port', String(port), '--serve-no-auth'] });
    stateDir = join(t.dir, 'hosp');
    await waitEvent(edge, 'inference_listening');
    await waitEvent(edge, 'connected');
  });
  after(async () => {
    await stopProc(edge);
    await fake.close();
    t.cleanup();
  });

  it('says at start that the default relative floor applies on the holdout split', async () => {
    assert.equal(loadSitePolicy(stateDir), null, 'no policy file');
    const e = await waitEvent(edge, 'deployment_checks');
    assert.deepEqual([e.maxAccuracyDrop, e.holdoutExamples], [DEFAULT_MAX_ACCURACY_DROP, 60]);
    assert.equal(edge.event('deployment_checks_unavailable').length, 0);
  });

  it('refuses a version more than the tolerance below the serving one, naming the drop and the serving version; the old one keeps serving', async () => {
    const v1 = ota.manifest(good);
    await ota.offer(v1);
    assert.equal((await ota.status(v1.manifest.id)).status, 'active');
    await waitFor('v1 to serve', async () => (await servingVersion(port)) === v1.manifest.id, 20_000);

    const worse = ota.manifest(inverted(good));
    await ota.offer(worse);
    const s = await ota.status(worse.manifest.id);
    assert.equal(s.status, 'refused');
    const short = v1.manifest.id.slice(0, 12);
    assert.match(s.reason!, new RegExp(`holdout accuracy more than 0\\.05 below the serving version ${short}'s .*deployment\\.maxAccuracyDrop.*version ${short} keeps serving`));
    assert.doesNotMatch(s.reason!, /\d\.\d{3}/, 'no local figures reach the coordinator');
    // The site's own log has the figures.
    const local = await waitEvent(edge, 'ota_refused', (e) => e.version === worse.manifest.id);
    assert.match(String(local.reason), /holdout accuracy 0\.\d{4} is more than 0\.05 below the serving version's (0\.9\d{3}|1\.0000)/);
    assert.equal(await servingVersion(port), v1.manifest.id);
    assert.equal((await infer(port)).version, v1.manifest.id, 'inference answers with the old version');
  });

  it('accepts a version within the tolerance', async () => {
    const v3 = ota.manifest(nudged(good, 5));
    await ota.offer(v3);
    assert.equal((await ota.status(v3.manifest.id)).status, 'active');
    await waitFor('v3 to serve', async () => (await servingVersion(port)) === v3.manifest.id, 20_000);
    assert.equal((await infer(port)).version, v3.manifest.id);
  });

  it('maxAccuracyDrop: null in policy.json switches the check off', async () => {
    writeSitePolicy(stateDir, { ...defaultPolicy(), deployment: { mode: 'auto', maxAccuracyDrop: null, accuracyFloor: 0 } });
    const worse = ota.manifest(nudged(inverted(good), 6));
    await ota.offer(worse);
    assert.equal((await ota.status(worse.manifest.id)).status, 'active');
    await waitFor('the worse version to serve', async () => (await servingVersion(port)) === worse.manifest.id, 20_000);
  });
});

describe('edge policy init: the relative floor by default', function () {
  this.timeout(60_000);
  const t = makeTempDir();
  after(() => t.cleanup());

  it(`writes maxAccuracyDrop ${DEFAULT_MAX_ACCURACY_DROP}; --max-accuracy-drop off writes null; an explicit null stays null`, async () => {
    const a = join(t.dir, 'a');
    const b = join(t.dir, 'b');
    mkdirSync(a);
    mkdirSync(b);
    assert.equal((await runCli(['edge', 'policy', 'init', '--state-dir', a])).code, 0);
    assert.equal(loadSitePolicy(a)!.deployment.maxAccuracyDrop, DEFAULT_MAX_ACCURACY_DROP);
    const off = await runCli(['edge', 'policy', 'init', '--state-dir', b, '--max-accuracy-drop', 'off']);
    assert.equal(off.code, 0, off.stderr);
    assert.equal((JSON.parse(readFileSync(policyPath(b), 'utf8')) as { deployment: { maxAccuracyDrop: unknown } }).deployment.maxAccuracyDrop, null);
    const bad = await runCli(['edge', 'policy', 'init', '--state-dir', b, '--force', '--max-accuracy-drop', '2']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--max-accuracy-drop must be a number in \[0, 1\] or "off"/);
    // A file written before the default changed, with an explicit null, keeps it.
    assert.equal(loadSitePolicy(b)!.deployment.maxAccuracyDrop, null);
  });
});
