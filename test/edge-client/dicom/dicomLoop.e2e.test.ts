/**
 * The clinical loop end to end, with real processes and real tools: a coordinator and two edges
 * (`fedmed edge start --dicom-port …`); CR images with patient names and IDs arrive by C-STORE
 * from dcmtk's storescu; clinicians find each case by the SOP Instance UID their viewer shows and
 * label it over the inference service's API; federated rounds train on the two case stores; the
 * new version is deployed to both edges; POST /v1/infer with a DICOM file answers with it. Then
 * the de-identification check: no patient name, ID or UID of any image appears in the edges'
 * and the coordinator's logs, audit logs, API answers, metrics or anything on the coordinator's
 * disk, nor in the case store's own files.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { call, createExperiment, enrol, freePort, onlineSites, spawnCli, startCoordinator, stopProc, waitFor, type CoordinatorProc, type Proc } from '../../helpers/federation.js';
import { labelledDicom, dicomSourceImages, type LabelledDicom } from '../../helpers/labelledDicom.js';
import { makeTempDir } from '../../helpers/paths.js';
import { runCli } from '../../helpers/runCli.js';

const SITES = ['site-a', 'site-b'] as const;
const PER_SITE = 90;

function hasStorescu(): boolean {
  return spawnSync('storescu', ['--version'], { encoding: 'utf8' }).status === 0;
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describe('DICOM clinical loop: C-STORE → de-identified cases → labels → federated rounds → deployed → DICOM inference (real processes)', function () {
  this.timeout(400_000);
  const t = makeTempDir();
  let coord: CoordinatorProc;
  const edges = new Map<string, { proc: Proc; dicomPort: number; servePort: number; token: string; monitor: string; images: LabelledDicom[]; folder: string }>();
  const answers: string[] = []; // every API answer body, for the PHI check

  const api = async (site: string, method: string, path: string, body?: unknown, type = 'application/json'): Promise<{ status: number; body: Record<string, unknown> }> => {
    const e = edges.get(site)!;
    const res = await fetch(`http://127.0.0.1:${e.servePort}${path}`, { method, headers: { authorization: `Bearer ${e.token}`, ...(body === undefined ? {} : { 'content-type': type }) }, body: body === undefined ? undefined : type === 'application/json' ? JSON.stringify(body) : (body as Buffer) });
    const text = await res.text();
    answers.push(text);
    return { status: res.status, body: text && res.headers.get('content-type')?.includes('json') ? (JSON.parse(text) as Record<string, unknown>) : { text } };
  };

  before(async function () {
    if (!hasStorescu()) {
      if (process.env.CI) throw new Error('dcmtk (storescu) is required in CI: .ci/run installs it');
      console.log('      skipped: dcmtk storescu not installed (apt install dcmtk)');
      return this.skip();
    }
    console.log(`      images: ${dicomSourceImages().source}`);
    coord = await startCoordinator(join(t.dir, 'coordinator'), await freePort());
    for (const [i, site] of SITES.entries()) {
      await enrol(coord, site, join(t.dir, site));
      const token = await runCli(['edge', 'token', 'create', '--state-dir', join(t.dir, site), '--role', 'clinician', '--name', `${site}-radiology`]);
      assert.equal(token.code, 0, token.stderr);
      const monitor = await runCli(['edge', 'token', 'create', '--state-dir', join(t.dir, site), '--role', 'monitor']);
      assert.equal(monitor.code, 0, monitor.stderr);
      const images = labelledDicom(PER_SITE + 1, { offset: i * 5, site });
      const folder = join(t.dir, `${site}-dicom`);
      mkdirSync(folder);
      images.slice(0, PER_SITE).forEach((img, k) => writeFileSync(join(folder, `img${k}.dcm`), img.bytes));
      const dicomPort = await freePort();
      const servePort = await freePort();
      const proc = spawnCli(['edge', 'start', '--state-dir', join(t.dir, site), '--dicom-port', String(dicomPort), '--dicom-aet', 'FEDMED', '--dicom-allowed-aets', 'MODALITY1,PACS', '--serve-port', String(servePort), '--max-accuracy-drop', 'off']);
      edges.set(site, { proc, dicomPort, servePort, token: token.stdout.trim(), monitor: monitor.stdout.trim(), images, folder });
    }
    await waitFor('2 edges online', async () => (await onlineSites(coord)).length === 2, 60_000);
    for (const e of edges.values()) await waitFor('the DICOM listener', () => e.proc.output().includes('"event":"dicom_listening"'), 30_000);
  });

  after(async () => {
    for (const e of edges.values()) await stopProc(e.proc);
    if (coord) await stopProc(coord);
    t.cleanup();
  });

  it('storescu pushes every image; each becomes one case; a re-send is the same case; an unknown calling AE is refused', async () => {
    for (const [site, e] of edges) {
      const r = spawnSync('storescu', ['-R', '-xe', '-aet', 'MODALITY1', '-aec', 'FEDMED', '+sd', '127.0.0.1', String(e.dicomPort), e.folder], { encoding: 'utf8', env: { ...process.env, TCP_NODELAY: '1' }, timeout: 120_000 });
      assert.equal(r.status, 0, `${site}: storescu: ${r.stdout}${r.stderr}\n${e.proc.output().slice(-3000)}`);
      const again = spawnSync('storescu', ['-R', '-xe', '-aet', 'PACS', '-aec', 'FEDMED', '127.0.0.1', String(e.dicomPort), join(e.folder, 'img0.dcm')], { encoding: 'utf8', env: { ...process.env, TCP_NODELAY: '1' } });
      assert.equal(again.status, 0, again.stderr);
      const stranger = spawnSync('storescu', ['-R', '-xe', '-aet', 'STRANGER', '-aec', 'FEDMED', '127.0.0.1', String(e.dicomPort), join(e.folder, 'img1.dcm')], { encoding: 'utf8', env: { ...process.env, TCP_NODELAY: '1' } });
      assert.notEqual(stranger.status, 0, 'an unknown calling AE is refused');
      const list = await api(site, 'GET', '/v1/cases?limit=1000');
      assert.equal(list.status, 200, JSON.stringify(list.body));
      const stats = list.body.stats as { cases: number; labelled: number };
      assert.equal(stats.cases, PER_SITE, `${site}: one case per image (the re-send collapsed)`);
      assert.equal(stats.labelled, 0);
    }
  });

  it('clinicians find each case by its SOP Instance UID and label it; changes are kept; a monitor or no token may not label', async () => {
    for (const [site, e] of edges) {
      for (const img of e.images.slice(0, PER_SITE)) {
        const found = await api(site, 'POST', '/v1/cases/lookup', { sopInstanceUid: img.sopInstanceUid });
        assert.equal(found.status, 200, JSON.stringify(found.body));
        const id = found.body.id as string;
        assert.match(id, /^[0-9a-f]{32}$/);
        const r = await api(site, 'POST', `/v1/cases/${id}/label`, { label: img.label, by: 'dr.test' });
        assert.equal(r.status, 200, JSON.stringify(r.body));
      }
      // A label can change, and every change is kept.
      const first = (await api(site, 'POST', '/v1/cases/lookup', { sopInstanceUid: e.images[0].sopInstanceUid })).body.id as string;
      await api(site, 'POST', `/v1/cases/${first}/label`, { label: 1 - e.images[0].label, by: 'dr.second' });
      await api(site, 'POST', `/v1/cases/${first}/label`, { label: e.images[0].label, by: 'dr.second' });
      const c = await api(site, 'GET', `/v1/cases/${first}`);
      assert.deepEqual((c.body.labelHistory as { label: number; by: string }[]).map((h) => [h.label, h.by]), [[e.images[0].label, 'dr.test'], [1 - e.images[0].label, 'dr.second'], [e.images[0].label, 'dr.second']]);
      const noToken = await fetch(`http://127.0.0.1:${e.servePort}/v1/cases/${first}/label`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ label: 0, by: 'x' }) });
      assert.equal(noToken.status, 401);
      for (const [method, path, body] of [['POST', `/v1/cases/${first}/label`, { label: 0, by: 'x' }], ['GET', '/v1/cases', undefined], ['POST', '/v1/cases/lookup', { sopInstanceUid: e.images[0].sopInstanceUid }]] as const) {
        const asMonitor = await fetch(`http://127.0.0.1:${e.servePort}${path}`, { method, headers: { authorization: `Bearer ${e.monitor}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined });
        assert.equal(asMonitor.status, 403, `a monitor token may not ${method} ${path}`);
      }
      const bad = await api(site, 'POST', `/v1/cases/${first}/label`, { label: -1, by: 'dr.test' });
      assert.equal(bad.status, 400, 'a label that is not a class index is refused');
      const stats = (await api(site, 'GET', '/v1/cases?labelled=false')).body.stats as { labelled: number };
      assert.equal(stats.labelled, PER_SITE);
    }
    // Who is ready: each site tells the coordinator its labelled cases per split (counts only; this policy releases them exactly).
    for (const site of edges.keys()) {
      const data = await waitFor(`${site}'s labelled counts at the coordinator`, async () => {
        const d = (await call<{ data: { examples: { train: number; validation: number; test: number } | null; ready: boolean } | null }>(coord, 'GET', `/v1/sites/${site}`)).body.data;
        return d?.examples && d.examples.train + d.examples.validation + d.examples.test === PER_SITE ? d : null;
      }, 30_000, 250);
      assert.equal(data.ready, true);
      readyTrain.set(site, data.examples!.train);
    }
  });
  const readyTrain = new Map<string, number>();

  let deployed = '';
  it('rounds train on the case stores (counts from the labelled cases), and the new version is deployed to both edges', async () => {
    const experiment = await createExperiment(coord, { name: 'dicom-loop', initSeed: 3, deploy: 'auto', fit: { epochs: 3, batchSize: 16, learningRate: 0.002, optimizer: 'adam' } });
    const r = await call(coord, 'POST', `/v1/experiments/${experiment}/rounds`, { rounds: 2 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await waitFor('the rounds to end', async () => !(await call<{ running: boolean }>(coord, 'GET', `/v1/experiments/${experiment}`)).body.running, 240_000, 250);
    const rounds = (await call<{ status: string; versionId: string; reason?: string }[]>(coord, 'GET', `/v1/experiments/${experiment}/rounds`)).body;
    assert.deepEqual(rounds.map((x) => x.status), ['completed', 'completed'], JSON.stringify(rounds));
    deployed = rounds[1].versionId;
    for (const e of edges.values()) {
      const started = e.proc.output().split('\n').filter((l) => l.includes('"event":"fit_started"')).map((l) => JSON.parse(l) as { examples: number });
      assert.equal(started.length, 2);
      // the train split of the labelled cases: about 70% of them, the same in both rounds
      assert.ok(started[0].examples > PER_SITE * 0.5 && started[0].examples < PER_SITE * 0.9 && started[1].examples === started[0].examples, JSON.stringify(started));
      assert.equal(started[0].examples, readyTrain.get([...edges.entries()].find(([, x]) => x === e)![0]), 'the train count the site told is the one it trained on');
      await waitFor(`the edge to serve ${deployed.slice(0, 8)}`, async () => (await api([...edges.entries()].find(([, x]) => x === e)![0], 'GET', '/healthz')).body.version === deployed, 60_000, 200);
    }
  });

  it('POST /v1/infer with a DICOM file: a new case, answered by the deployed version; the answer is kept with the case', async () => {
    for (const [site, e] of edges) {
      const img = e.images[PER_SITE];
      const r = await api(site, 'POST', '/v1/infer', img.bytes, 'application/dicom');
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.version, deployed);
      assert.match(String(r.body.case), /^[0-9a-f]{32}$/);
      assert.equal((r.body.probabilities as number[]).length, 2);
      const c = await api(site, 'GET', `/v1/cases/${r.body.case as string}`);
      assert.equal((c.body.inference as { version: string }).version, deployed);
      assert.equal(c.body.label, null);
      const notDicom = await api(site, 'POST', '/v1/infer', Buffer.from('not a dicom file at all'), 'application/dicom');
      assert.equal(notDicom.status, 422, JSON.stringify(notDicom.body));
    }
  });

  it('de-identification: no patient name, ID or UID anywhere outside the hospital\'s own DICOM', async () => {
    const secrets = [...edges.values()].flatMap((e) => e.images.flatMap((i) => [i.patientName, i.patientId, i.sopInstanceUid]));
    const sources: { what: string; text: string }[] = [];
    for (const [site, e] of edges) {
      sources.push({ what: `${site} log`, text: e.proc.output() });
      sources.push({ what: `${site} /metrics`, text: (await api(site, 'GET', '/metrics')).body.text as string });
      // Everything in the edge's state dir: audit log, case store (SQLite files), versions, policy, keys.
      for (const f of filesUnder(join(t.dir, site))) if (statSync(f).size < 64 * 1024 * 1024) sources.push({ what: f, text: readFileSync(f).toString('latin1') });
      const audit = await runCli(['audit', 'show', '--state-dir', join(t.dir, site), '--json']);
      assert.equal(audit.code, 0, audit.stderr);
      assert.match(audit.stdout, /case\.received/);
      assert.match(audit.stdout, /case\.labelled/);
      sources.push({ what: `${site} audit`, text: audit.stdout });
    }
    sources.push({ what: 'coordinator log', text: coord.output() });
    for (const f of filesUnder(join(t.dir, 'coordinator'))) sources.push({ what: f, text: readFileSync(f).toString('latin1') });
    sources.push({ what: 'API answers', text: answers.join('\n') });
    assert.ok(secrets.length > 500 && sources.length > 10);
    const leaks = sources.flatMap((s) => secrets.filter((x) => s.text.includes(x)).map((x) => `${s.what}: ${x}`));
    assert.deepEqual(leaks.slice(0, 10), []);
    // and the check can fail: the hospital's own DICOM folder does hold them
    assert.ok(readFileSync(join(edges.get('site-a')!.folder, 'img0.dcm')).toString('latin1').includes(edges.get('site-a')!.images[0].patientId));
  });
});
