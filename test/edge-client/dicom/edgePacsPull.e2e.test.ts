/**
 * PACS pull by a running `fedmed edge start --pacs <DICOMweb URL> --pacs-interval 1` (a real child
 * process, enrolled with a test coordinator) from a real Orthanc with its DICOMweb plugin (in a
 * loopback-only network namespace: helpers/orthancServer.ts). PacsPull's own behaviour is tested
 * in pacsPull.e2e.test.ts; this proves the edge process wires it up:
 *   - instances uploaded to the PACS become cases without anyone pushing them;
 *   - instances uploaded later are the only ones the next pulls fetch;
 *   - after a restart of the edge (same state dir) nothing is fetched or ingested twice, and a
 *     new upload is still pulled;
 *   - with Orthanc killed the edge keeps running and serving, and logs a clear warning;
 *   - no patient name, ID or UID reaches the edge's logs, audit log, /metrics or API answers.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { enrolDicomSite, leaksOf, startDicomEdge, type DicomEdge, type DicomSite } from '../../helpers/dicomEdge.js';
import { freePort, startCoordinator, stopProc, waitFor, type CoordinatorProc } from '../../helpers/federation.js';
import { labelledDicom, type LabelledDicom } from '../../helpers/labelledDicom.js';
import { startOrthancOrSkip, type OrthancServer } from '../../helpers/orthancServer.js';
import { makeTempDir } from '../../helpers/paths.js';
import { runCli } from '../../helpers/runCli.js';

const FIRST = 4;
const LATER = 3;

/** Instances the edge's pulls fetched, from its "PACS pull done" log lines. */
function fetched(edge: DicomEdge): number {
  return edge.events('pacs_pull').reduce((n, e) => n + (typeof e.fetched === 'number' ? e.fetched : 0), 0);
}

describe('edge PACS pull from Orthanc DICOMweb: each instance once, also across a restart (real `fedmed edge start`)', function () {
  this.timeout(120_000);
  const t = makeTempDir();
  let images: LabelledDicom[] = [];
  let orthanc: OrthancServer | null = null;
  let coord: CoordinatorProc | undefined;
  let site: DicomSite;
  let edge: DicomEdge | undefined;
  const logs: string[] = []; // output of edge processes that ended
  const answers: string[] = [];
  const start = async (): Promise<DicomEdge> => startDicomEdge(site, ['--pacs', orthanc!.dicomWebUrl, '--pacs-interval', '1'], { readyEvent: 'pacs_pull_started', answers });
  const stopEdge = async (): Promise<void> => {
    if (!edge) return;
    const code = await edge.stop();
    logs.push(edge.proc.output());
    assert.equal(code, 0, `the edge did not stop cleanly: ${edge.proc.output().slice(-2000)}`);
    edge = undefined;
  };

  before(async function () {
    orthanc = await startOrthancOrSkip();
    if (!orthanc) return this.skip();
    images = labelledDicom(FIRST + LATER + 1, { offset: 3, site: 'pacs' }); // CR images with patient names and IDs
    coord = await startCoordinator(join(t.dir, 'coordinator'), await freePort());
    site = await enrolDicomSite(coord, 'site-pacs', join(t.dir, 'site-pacs'));
  });

  after(async () => {
    if (edge) await edge.stop();
    if (coord) await stopProc(coord);
    await orthanc?.stop();
    t.cleanup();
  });

  it('pulls the instances on the PACS into cases; later uploads are the only ones fetched next', async () => {
    for (const img of images.slice(0, FIRST)) await orthanc!.upload(img.bytes);
    edge = await start();
    await waitFor(`${FIRST} cases`, async () => (await edge!.cases()).stats.cases === FIRST, 30_000, 200);
    for (const img of images.slice(FIRST, FIRST + LATER)) await orthanc!.upload(img.bytes);
    await waitFor(`${FIRST + LATER} cases`, async () => (await edge!.cases()).stats.cases === FIRST + LATER, 30_000, 200);
    await new Promise((r) => setTimeout(r, 2500)); // two more pulls: nothing new
    const { cases, stats } = await edge.cases();
    assert.equal(stats.cases, FIRST + LATER);
    assert.ok(cases.every((c) => c.source === 'pacs'));
    for (const img of images.slice(0, FIRST + LATER)) assert.equal((await edge.api('POST', '/v1/cases/lookup', { sopInstanceUid: img.sopInstanceUid })).status, 200, 'each uploaded instance is a case');
    const received = edge.events('case_received');
    assert.equal(received.length, FIRST + LATER, 'each instance ingested once');
    assert.ok(received.every((e) => e.duplicate === false && e.source === 'pacs'));
    assert.equal(fetched(edge), FIRST + LATER, 'each instance fetched once');
  });

  it('after a restart with the same state dir nothing is fetched twice; a new upload is still pulled', async () => {
    await stopEdge();
    edge = await start();
    await new Promise((r) => setTimeout(r, 2500)); // at least two pulls of the unchanged PACS
    assert.equal(fetched(edge), 0, `re-fetched after the restart: ${JSON.stringify(edge.events('pacs_pull'))}`);
    assert.equal(edge.events('case_received').length, 0);
    await orthanc!.upload(images[FIRST + LATER].bytes);
    await waitFor(`${FIRST + LATER + 1} cases`, async () => (await edge!.cases()).stats.cases === FIRST + LATER + 1, 30_000, 200);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(fetched(edge), 1);
    assert.deepEqual(edge.events('case_received').map((e) => e.duplicate), [false]);
  });

  it('with the PACS down the edge keeps running and serving, and logs a clear warning each interval', async () => {
    await orthanc!.kill();
    const before = edge!.events('pacs_pull_warning').length;
    await waitFor('two PACS-down warnings', () => edge!.events('pacs_pull_warning').length >= before + 2, 15_000, 200);
    const w = edge!.events('pacs_pull_warning').at(-1)!;
    assert.match(String(w.message), /cannot list instances/);
    assert.equal(w.url, orthanc!.dicomWebUrl);
    assert.ok(w.reason, 'the warning says why');
    assert.equal(edge!.proc.child.exitCode, null, 'the edge is still running');
    assert.equal((await edge!.cases()).stats.cases, FIRST + LATER + 1, 'and still serving its cases');
  });

  it('no patient name, ID or UID in the edge logs, audit log, /metrics or API answers', async () => {
    const metrics = await edge!.api('GET', '/metrics');
    assert.equal(metrics.status, 200, metrics.text);
    await stopEdge();
    const audit = await runCli(['audit', 'show', '--state-dir', site.stateDir, '--json']);
    assert.equal(audit.code, 0, audit.stderr);
    assert.equal(audit.stdout.split('case.received').length - 1, FIRST + LATER + 1, 'one case.received audit entry per instance');
    const secrets = images.flatMap((i) => [i.patientName, i.patientId, i.sopInstanceUid]);
    const sources = [
      { what: 'edge stdout/stderr', text: logs.join('\n') },
      { what: 'audit log', text: audit.stdout },
      { what: '/metrics', text: metrics.text },
      { what: 'API answers', text: answers.join('\n') },
    ];
    assert.deepEqual(leaksOf(secrets, sources).slice(0, 10), []);
    assert.equal(leaksOf(secrets.slice(0, 2), [{ what: 'image', text: images[0].bytes.toString('latin1') }]).length, 2, 'the check can fail: the images hold them');
  });
});
