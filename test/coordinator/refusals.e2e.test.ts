/**
 * Sites that refuse a round on purpose (`fit_failed.refused`: privacy budget, pending approval,
 * rejected experiment, site policy) against a real coordinator over real sockets: the round's
 * failure names the refusals grouped by kind (plain, SecAgg+ and CKKS rounds alike), and each
 * site's refusals and pending approvals show in GET /v1/sites and `fedmed status`. The sites are
 * scripted: enrolled and certified for real, then they answer each fit_ins as the test says.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startCoordinator, type RunningCoordinator } from '../../coordinator/coordinatorServer.js';
import { ApiAdminTarget } from '../../cli/admin/adminTarget.js';
import { certifyCoordinator } from '../../cli/admin/federationAdmin.js';
import { createKeySet } from '../../cli/federationKeys.js';
import { layoutOf } from '../../shared/model/parameterLayout.js';
import { parseModelSpec } from '../../shared/model/modelSpec.js';
import type { MessageOf, RefusalKind } from '../../shared/protocol/messages.js';
import { ephemeralAdminKey } from '../../shared/secure/trust/adminKey.js';
import { makeTempDir } from '../helpers/paths.js';
import { waitFor } from '../helpers/federation.js';
import { runCli } from '../helpers/runCli.js';
import { connectScriptedSite } from '../helpers/scriptedSite.js';

const admin = ephemeralAdminKey();

/** What a scripted site answers to a fit_ins: a refusal of some kind, an ordinary failure, or a zero update. */
type Answer = { refuse: RefusalKind; reason: string } | { fail: string } | 'update';
type Script = (m: MessageOf<'fit_ins'>) => Answer;

interface RoundView {
  round: number;
  status: string;
  reason: string | null;
  sites: { site: string; phase: string; status: string; reason?: string; refused?: string }[];
}
interface SiteView {
  name: string;
  refusals: { experiment: string; round: number; kind: string; reason: string; at: string; supersededInRound?: number }[];
  pendingApproval: string[];
}

/** An enrolled, certified site that answers fit_ins per `script` (and evaluates with made-up metrics). */
function scriptedSite(c: RunningCoordinator, name: string, scripts: Map<string, Script>): Promise<WebSocket> {
  return connectScriptedSite(c, admin, name, (m, _payload, send) => {
    if (m.type === 'fit_ins') {
      const answer = (scripts.get(name) ?? (() => 'update'))(m);
      if (answer === 'update') {
        const size = layoutOf(parseModelSpec(m.spec, 'spec')).size;
        send({ type: 'fit_res', experiment: m.experiment, round: m.round, numExamples: 10, metrics: { loss: 1, accuracy: 0.5 } }, new Uint8Array(size * 4));
      } else if ('refuse' in answer) send({ type: 'fit_failed', experiment: m.experiment, round: m.round, reason: answer.reason, refused: answer.refuse });
      else send({ type: 'fit_failed', experiment: m.experiment, round: m.round, reason: answer.fail });
    } else if (m.type === 'eval_ins') send({ type: 'eval_res', experiment: m.experiment, round: m.round, numExamples: 10, metrics: { loss: 1, accuracy: 0.5 } });
  });
}

describe('sites that refuse rounds: the coordinator names the refusals (real coordinator, scripted sites over WebSocket)', function () {
  this.timeout(240_000);
  const t = makeTempDir();
  let c: RunningCoordinator;
  const sockets: WebSocket[] = [];
  const scripts = new Map<string, Script>();
  const sites = ['hosp1', 'hosp2', 'hosp3'];
  const auth = () => ({ authorization: `Bearer ${c.adminToken}` });

  const createExperiment = async (name: string, extra: Record<string, unknown> = {}): Promise<string> => {
    const res = await c.app.inject({ method: 'POST', url: '/v1/experiments', headers: auth(), payload: { name, model: { zoo: 'logreg', numFeatures: 6, numClasses: 2 }, minFitClients: 3, deadlineSeconds: 30, fit: { epochs: 1, batchSize: 16, learningRate: 0.1, optimizer: 'sgd' }, ...extra } });
    assert.equal(res.statusCode, 200, res.body);
    return (res.json() as { id: string }).id;
  };
  const runRounds = async (experiment: string, n: number): Promise<RoundView[]> => {
    c.rounds.start(experiment, n);
    await waitFor(`rounds of ${experiment}`, () => !c.rounds.isRunning(experiment), 180_000, 50);
    return (await c.app.inject({ method: 'GET', url: `/v1/experiments/${experiment}/rounds`, headers: auth() })).json() as RoundView[];
  };
  const site = async (name: string): Promise<SiteView> => (await c.app.inject({ method: 'GET', url: `/v1/sites/${name}`, headers: auth() })).json() as SiteView;
  const everyone = (answer: Answer) => {
    for (const s of sites) scripts.set(s, () => answer);
  };

  before(async () => {
    c = await startCoordinator({ dataDir: join(t.dir, 'coordinator'), port: 0, logLevel: 'silent' });
    await certifyCoordinator(new ApiAdminTarget({ url: c.url, token: c.adminToken }), admin);
    for (const s of sites) sockets.push(await scriptedSite(c, s, scripts));
    await waitFor('3 sites online', () => c.gateway.readySites().length === 3);
  });

  after(async () => {
    for (const ws of sockets) ws.terminate();
    await c?.close();
    t.cleanup();
  });

  it('plain: every sampled site refuses (privacy budget): the round says who refused and why', async () => {
    everyone({ refuse: 'privacy_budget', reason: 'privacy budget exhausted: ε 3.4 of 3.5 spent' });
    const exp = await createExperiment('plain-refused');
    const [r] = await runRounds(exp, 1);
    assert.equal(r.status, 'failed');
    assert.equal(r.reason, '3 of 3 sampled sites refused: privacy budget exhausted (hosp1, hosp2, hosp3); the round needs at least 3 update(s)');
    assert.deepEqual(r.sites.map((s) => s.refused), ['privacy_budget', 'privacy_budget', 'privacy_budget']);
    const view = await site('hosp2');
    assert.deepEqual(view.refusals.map((x) => [x.experiment, x.round, x.kind, x.reason]), [[exp, 1, 'privacy_budget', 'privacy budget exhausted: ε 3.4 of 3.5 spent']]);
    assert.deepEqual(view.pendingApproval, []);
  });

  it('mixed refusals and an ordinary failure are grouped by kind, the failure counted after them', async () => {
    scripts.set('hosp1', () => ({ refuse: 'privacy_budget', reason: 'budget spent' }));
    scripts.set('hosp2', () => ({ refuse: 'approval_pending', reason: 'experiment awaits the operator\'s approval ("fedmed edge approve")' }));
    scripts.set('hosp3', () => ({ fail: 'local training diverged' }));
    const [r] = await runRounds(await createExperiment('mixed'), 1);
    assert.equal(r.status, 'failed');
    assert.equal(r.reason, '2 of 3 sampled sites refused: privacy budget exhausted (hosp1), approval pending (hosp2); 1 failed: hosp3 (local training diverged); the round needs at least 3 update(s)');
  });

  it('a failure without refusals keeps its ordinary message', async () => {
    everyone({ fail: 'out of memory' });
    const [r] = await runRounds(await createExperiment('failed'), 1);
    assert.equal(r.reason, 'only 0 of 3 site(s) returned an update (dropped: hosp1: out of memory; hosp2: out of memory; hosp3: out of memory); the round needs at least 3');
  });

  it('SecAgg+: refusals at fit_ins are named, not "only 0 site(s) advertised keys"', async () => {
    everyone({ refuse: 'policy', reason: 'site policy requires CKKS' });
    const exp = await createExperiment('secagg-refused', { security: 'secagg', secagg: { bits: 16, range: 0.5 } });
    const [r] = await runRounds(exp, 1);
    assert.equal(r.status, 'failed');
    assert.equal(r.reason, '3 of 3 sampled sites refused: refused by site policy (hosp1, hosp2, hosp3); the round needs at least 3 update(s)');
    // Two refuse, one fails otherwise: the secure aggregation's own cause follows the refusals.
    scripts.set('hosp3', () => ({ fail: 'no room for the masks' }));
    const [, r2] = await runRounds(exp, 1);
    assert.match(r2.reason!, /^2 of 3 sampled sites refused: refused by site policy \(hosp1, hosp2\); 1 failed: hosp3 \(no room for the masks\); secure aggregation aborted: only 0 site\(s\) advertised keys/);
  });

  it('CKKS: refusals are named', async () => {
    await createKeySet({ url: c.url, token: c.adminToken }, admin, join(t.dir, 'ckks-key.json'));
    everyone({ refuse: 'experiment_rejected', reason: 'the operator rejected this experiment' });
    const [r] = await runRounds(await createExperiment('ckks-refused', { security: 'ckks' }), 1);
    assert.equal(r.status, 'failed');
    assert.equal(r.reason, '3 of 3 sampled sites refused: experiment rejected (hosp1, hosp2, hosp3); the round needs at least 3 update(s)');
  });

  it('pending approval shows per site until the site takes part; reasons are made safe; `fedmed status` shows both', async () => {
    everyone('update');
    const evil = `waiting for approval\u001b[2J\r\nFAKE LOG LINE\u202e${'x'.repeat(1900)}`;
    scripts.set('hosp1', (m) => (m.round === 1 ? { refuse: 'approval_pending', reason: evil } : 'update'));
    const exp = await createExperiment('approval', { minFitClients: 2 });
    const [r1] = await runRounds(exp, 1);
    assert.equal(r1.status, 'completed', r1.reason ?? '');
    let view = await site('hosp1');
    assert.deepEqual(view.pendingApproval, [exp]);
    const refusal = view.refusals.find((x) => x.experiment === exp)!;
    assert.equal(refusal.kind, 'approval_pending');
    assert.doesNotMatch(refusal.reason, /[\p{Cc}\p{Cf}]/u);
    assert.ok(refusal.reason.startsWith('waiting for approval [2J  FAKE LOG LINE '), refusal.reason.slice(0, 40));
    assert.ok(refusal.reason.length <= 500, String(refusal.reason.length));
    const list = (await c.app.inject({ method: 'GET', url: '/v1/sites', headers: auth() })).json() as SiteView[];
    assert.deepEqual(list.find((s) => s.name === 'hosp1')!.pendingApproval, [exp]);

    const status = await runCli(['status', '--coordinator', c.url, '--token', c.adminToken]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`hosp1: approval pending for ${exp}`));
    assert.match(status.stdout, /hosp2: refused exp-[0-9a-f]+ round 1: privacy budget exhausted/);
    assert.ok(!status.stdout.includes('\u001b') && !status.stdout.includes('FAKE LOG LINE\n'), status.stdout);
    const json = await runCli(['status', '--json', '--coordinator', c.url, '--token', c.adminToken]);
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout) as { sites: SiteView[] };
    assert.deepEqual(parsed.sites.find((s) => s.name === 'hosp1')!.pendingApproval, [exp]);

    // The operator approves: hosp1 takes part in round 2, and its approval is no longer pending.
    const [, r2] = await runRounds(exp, 1);
    assert.equal(r2.status, 'completed', r2.reason ?? '');
    view = await site('hosp1');
    assert.deepEqual(view.pendingApproval, []);
    assert.equal(view.refusals.find((x) => x.experiment === exp)!.supersededInRound, 2);
    assert.doesNotMatch((await runCli(['status', '--coordinator', c.url, '--token', c.adminToken])).stdout, /hosp1: approval pending/);
  });
});
