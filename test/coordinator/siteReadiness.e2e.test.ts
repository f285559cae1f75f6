/**
 * Who is ready (`data_status`), with a real coordinator process and real edge processes: each
 * site tells its labelled examples as its own policy releases counts — exact, rounded down to its
 * bucket, or withheld (a site that trains only under DP) with only "ready" — and GET /v1/sites
 * shows them; a policy changed on disk changes what is told, without a restart. A hostile site
 * that floods statuses gets one kept per interval; a malformed one loses its session; neither
 * disturbs the others; readiness never enters the audit log.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { defaultPolicy, type SitePolicy } from '../../edge-client/policy/sitePolicy.js';
import { encodeFrame } from '../../shared/protocol/frameCodec.js';
import type { DataStatus } from '../../shared/protocol/messages.js';
import { dataFile } from '../adversary/harness.js';
import { call, enrol, freePort, onlineSites, spawnCli, startCoordinator, stopProc, waitFor, type CoordinatorProc, type Proc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { enrolScriptedSite, type SiteSend } from '../helpers/scriptedSite.js';

type SiteData = DataStatus & { reportedAt: string };
type SiteView = { name: string; online: boolean; data: SiteData | null };

function writePolicy(stateDir: string, change: (p: SitePolicy) => void): void {
  const p = defaultPolicy();
  change(p);
  writeFileSync(join(stateDir, 'policy.json'), JSON.stringify(p, null, 2));
}

describe('site readiness: labelled-example counts as each site policy releases them', function () {
  this.timeout(120_000);
  const t = makeTempDir();
  const dataDir = join(t.dir, 'coordinator');
  const N = 120;
  const edges: Proc[] = [];
  let coord: CoordinatorProc;

  const site = async (name: string): Promise<SiteView> => (await call<SiteView>(coord, 'GET', `/v1/sites/${name}`)).body;
  const reported = (name: string, check: (d: SiteData) => boolean = () => true) => waitFor(`${name}'s data status`, async () => {
    const d = (await site(name)).data;
    return d && check(d) ? d : null;
  }, 30_000, 200);

  before(async () => {
    coord = await startCoordinator(dataDir, await freePort());
    const data = await dataFile(t.dir, 3, N);
    const policies: Record<string, (p: SitePolicy) => void> = {
      'exact-site': (p) => void (p.release.minExamples = 20),
      'bucketed-site': (p) => Object.assign(p.release, { exampleCount: 'bucketed', bucketSize: 25, minExamples: 500 }),
      'dp-site': (p) => void (p.privacy.allowNonDp = false),
    };
    for (const [name, policy] of Object.entries(policies)) {
      const stateDir = join(t.dir, name);
      await enrol(coord, name, stateDir);
      writePolicy(stateDir, policy);
      edges.push(spawnCli(['edge', 'start', '--state-dir', stateDir, '--data', data]));
    }
    try {
      await waitFor('the edges online', async () => (await onlineSites(coord)).length === 3, 60_000, 100);
    } catch (err) {
      for (const e of edges) console.log(e.output().slice(-2000));
      throw err;
    }
  });
  after(async () => {
    for (const e of edges) await stopProc(e);
    if (coord) await stopProc(coord);
    t.cleanup();
  });

  it('exact, bucketed and withheld counts reach GET /v1/sites, each as its policy says', async () => {
    const exact = await reported('exact-site');
    assert.equal(exact.release, 'exact');
    assert.ok(exact.examples);
    assert.equal(exact.examples.train + exact.examples.validation + exact.examples.test, N, 'every example of the data set, in its splits');
    assert.ok(exact.examples.train > 0 && exact.examples.test > 0);
    assert.deepEqual([exact.ready, exact.minExamples], [true, 20]);

    // Same data, counts rounded down to multiples of 25; not ready below its own minimum of 500.
    const bucketed = await reported('bucketed-site');
    const down = (n: number) => Math.floor(n / 25) * 25;
    assert.deepEqual(bucketed.examples, { train: down(exact.examples.train), validation: down(exact.examples.validation), test: down(exact.examples.test) });
    assert.deepEqual([bucketed.release, bucketed.ready, bucketed.minExamples], ['bucketed', false, 500]);

    // A site that trains only under DP, where counts never leave exactly: withheld.
    const dp = await reported('dp-site');
    assert.deepEqual([dp.examples, dp.release, dp.ready], [null, 'withheld', true]);

    // The listing shows the same.
    const list = (await call<SiteView[]>(coord, 'GET', '/v1/sites')).body;
    assert.deepEqual(list.find((s) => s.name === 'dp-site')?.data?.examples, null);
  });

  it('a policy changed on disk changes what the running edge tells', async () => {
    writePolicy(join(t.dir, 'exact-site'), (p) => Object.assign(p.release, { exampleCount: 'withheld', minExamples: 20 }));
    const now = await reported('exact-site', (d) => d.release === 'withheld');
    assert.deepEqual([now.examples, now.ready], [null, true]);
  });

  it('readiness is shown, not audited', () => {
    const log = readFileSync(join(dataDir, 'audit.jsonl'), 'utf8');
    assert.ok(!/"action":"site\.data"/.test(log), 'no audit entry for data statuses');
  });

  it('a hostile site: a flood keeps one status per interval, a malformed one closes its session only', async () => {
    const mallory = await enrolScriptedSite(coord, coord.admin, 'mallory');
    let send: SiteSend | null = null;
    let closed: { code: number; reason: string } | null = null;
    const ws: WebSocket = mallory.connect((m, _p, reply) => {
      if (m.type === 'welcome') send = reply;
    });
    ws.on('close', (code, reason) => (closed = { code, reason: reason.toString() }));
    const reply = await waitFor('mallory welcomed', () => send, 10_000, 20);
    const status = (train: number): DataStatus => ({ examples: { train, validation: 0, test: 0 }, release: 'exact', ready: true, minExamples: 1 });
    for (let i = 1; i <= 500; i++) reply({ type: 'data_status', ...status(i) });
    const kept = await reported('mallory');
    await new Promise((r) => setTimeout(r, 500));
    const after = (await site('mallory')).data!;
    assert.equal(after.examples?.train, kept.examples?.train, 'the flood did not move what is shown');
    assert.ok(after.examples!.train < 500, `one of the first statuses is kept, not the last (kept ${after.examples!.train})`);
    assert.equal((await call(coord, 'GET', '/v1/sites')).status, 200, 'the coordinator still answers');

    // Counts that are not counts: the session is a protocol error; what was shown stays.
    // (a raw frame: the scripted site's own channel validates what it sends)
    ws.send(encodeFrame({ type: 'data_status', examples: { train: -5, validation: 0, test: 0 }, release: 'exact', ready: true, minExamples: 1 }));
    const c = await waitFor('mallory disconnected', () => closed, 10_000, 20);
    assert.notEqual(c.code, 1000);
    assert.equal((await site('mallory')).data?.examples?.train, kept.examples?.train);
    assert.equal((await onlineSites(coord)).filter((s) => s !== 'mallory').length, 3, 'the honest sites stay online');
  });
});
