/**
 * Crash safety of the edge's privacy ledger (issue 19, item 2): a real coordinator process and a
 * real edge process, the edge SIGKILLed at 12 seeded random points while the rounds of a DP
 * experiment (local mode, z = 2) run — while it trains, charges its privacy ledger and sends its
 * update — and restarted on the same state dir each time. After every kill: the ledger opens (it
 * parses and its MAC verifies); the ε it has spent never decreases; every update the coordinator
 * recorded receiving from the site (a 'done' fit in its round records) was charged in the ledger
 * before it left — the ledger as the kill left it holds that (experiment, round), so its ε is at
 * least the ε of those releases; after the restart nothing half-written is left (the temporary
 * files of writes the kill cut short are removed at start) and the audit log verifies. (The mid-OTA kills: edgeCrashSafety.e2e.test.ts.)
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PrivacyLedger } from '../../edge-client/federation/privacyLedger.js';
import { RdpAccountant } from '../../shared/privacy/rdpAccountant.js';
import { composeMechanisms } from '../../shared/privacy/privacyMechanism.js';
import { auditVerifies, killProc, leftovers, seeded, startEdge, writeCsv, type FollowedEdge } from '../helpers/edgeCrash.js';
import { call, createExperiment, enrol, freePort, onlineSites, startCoordinator, stopProc, waitFor, type CoordinatorProc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';

async function roundsEnded(coord: CoordinatorProc, experiment: string, timeoutMs = 60_000): Promise<void> {
  await waitFor('the rounds to end', async () => !(await call<{ running: boolean }>(coord, 'GET', `/v1/experiments/${experiment}`)).body.running, timeoutMs, 50);
}


describe('crash safety: an edge SIGKILLed at random points while DP rounds run, restarted each time (real processes)', function () {
  this.timeout(300_000);
  const TRIALS = 12;
  const Z = 2;
  const DELTA = 1e-5;
  const t = makeTempDir();
  const stateDir = join(t.dir, 'site-dp');
  const data = join(t.dir, 'site-dp.csv');
  let coord: CoordinatorProc;
  let edge: FollowedEdge;
  let experiment: string;
  const args = (): string[] => ['edge', 'start', '--state-dir', stateDir, '--data', data, '--privacy-budget', '1000', '--privacy-delta', String(DELTA)];

  interface RoundRec {
    round: number;
    status: string;
    sites: { site: string; phase: string; status: string }[];
    privacy?: { charged: boolean } | null;
  }

  before(async () => {
    coord = await startCoordinator(join(t.dir, 'coordinator'), await freePort());
    writeCsv(data, 11, 120);
    await enrol(coord, 'site-dp', stateDir);
    edge = startEdge(args());
    await waitFor('the edge online', async () => (await onlineSites(coord)).includes('site-dp'));
    experiment = await createExperiment(coord, {
      name: 'ledger-crash',
      model: { zoo: 'mlp-tabular', numFeatures: 8, numClasses: 2, hidden: [64] },
      minFitClients: 1,
      fractionEvaluate: 0,
      minEvaluateClients: 0,
      deadlineSeconds: 20,
      privacy: { mode: 'local', clip: 1, noiseMultiplier: Z, delta: DELTA },
      fit: { epochs: 2, batchSize: 16, learningRate: 0.05, optimizer: 'sgd' },
    });
  });
  after(async () => {
    if (edge) await stopProc(edge, 'SIGKILL');
    if (coord) await stopProc(coord, 'SIGKILL');
    t.cleanup();
  });

  it('the ledger opens after every kill, its ε never decreases, and every update the coordinator received was charged first', async () => {
    const ledgerFile = join(stateDir, 'privacy-ledger.json');
    const ledgerTemp = /^privacy-ledger\.json\.\d+\.\d+\.tmp$/;
    // A round without a kill: how long a fit takes to its charge.
    let from = edge.events.length;
    await call(coord, 'POST', `/v1/experiments/${experiment}/rounds`, { rounds: 1 });
    const fitStarted = await edge.next((e) => e.event === 'fit_started', 'the warm-up fit', { from });
    const fitCharged = await edge.next((e) => e.event === 'privacy_charged', 'the warm-up charge', { from });
    const fitMs = fitCharged.at - fitStarted.at;
    await roundsEnded(coord, experiment);

    const rand = seeded(23);
    /**
     * Where each kill landed: in training (before the charge), in the ledger write (its temporary
     * file on disk, not renamed yet), charged but the update not received, or after the update was received.
     */
    const landed = { training: 0, midLedgerWrite: 0, chargedNotReceived: 0, received: 0 };
    let spentBefore = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      const what = `trial ${trial}`;
      await waitFor('the edge online', async () => (await onlineSites(coord)).includes('site-dp'), 60_000, 50);
      from = edge.events.length;
      const started = await call<{ firstRound: number }>(coord, 'POST', `/v1/experiments/${experiment}/rounds`, { rounds: 3 });
      assert.equal(started.status, 200, JSON.stringify(started.body));
      // In the nth round's fit (seeded): a seeded point of the training, the ledger's write (its
      // temporary file appears: the kill comes while it is written and synced), or right after the
      // charge was renamed into place (while the update is being sent).
      const mode = (['training', 'ledger-write', 'charged'] as const)[trial % 3];
      const nth = 1 + Math.floor(rand() * 3);
      let n = 0;
      const fit = await edge.next((e) => e.event === 'fit_started' && e.experiment === experiment && ++n === nth, `${what}: fit ${nth}`, { from });
      const round = fit.round as number;
      if (mode === 'training') await new Promise((r) => setTimeout(r, rand() * fitMs));
      else {
        const ino = existsSync(ledgerFile) ? statSync(ledgerFile).ino : -1;
        const until = Date.now() + 30_000;
        // (a busy poll: the write takes a few milliseconds)
        for (;;) {
          if (Date.now() > until) throw new Error(`${what}: the ledger was not written`);
          if (mode === 'ledger-write' && readdirSync(stateDir).some((f) => ledgerTemp.test(f))) break;
          // (the write may also be over before a poll sees its temporary file: then the kill lands just after the charge)
          if (existsSync(ledgerFile) && statSync(ledgerFile).ino !== ino) break;
        }
      }
      await killProc(edge);
      const midWrite = readdirSync(stateDir).some((f) => ledgerTemp.test(f));
      // The ledger as the kill left it: it opens (parses, its MAC verifies).
      const atKill = new PrivacyLedger(stateDir, { epsilon: 1000, delta: DELTA });
      await roundsEnded(coord, experiment, 120_000);
      const roundRecs = (await call<RoundRec[]>(coord, 'GET', `/v1/experiments/${experiment}/rounds`)).body;
      const got = (r: number): boolean => roundRecs.some((x) => x.round === r && x.sites.some((s) => s.site === 'site-dp' && s.phase === 'fit' && s.status === 'done'));
      const chargedAtKill = atKill.history().some((e) => e.experiment === experiment && e.round === round);
      if (midWrite) landed.midLedgerWrite++;
      else if (!chargedAtKill) landed.training++;
      else landed[got(round) ? 'received' : 'chargedNotReceived']++;
      // No round the coordinator got an update for is missing from the ledger as the kill left it.
      const receivedAtKill = roundRecs.filter((r) => got(r.round)).map((r) => r.round);
      const missing = receivedAtKill.filter((r) => !atKill.history().some((e) => e.experiment === experiment && e.round === r));
      assert.deepEqual(missing, [], `${what} (${mode}, round ${round}): updates the coordinator received that the site's ledger had not charged`);

      // Its ε never went down, and is at least the ε of the updates the coordinator received.
      const spent = atKill.spent();
      assert.ok(spent >= spentBefore, `${what}: ε went down from ${spentBefore} to ${spent}`);
      spentBefore = spent;
      const acc = new RdpAccountant();
      for (let i = 0; i < receivedAtKill.length; i++) composeMechanisms(acc, [{ kind: 'gaussian', noiseMultiplier: Z }]);
      const implied = receivedAtKill.length ? acc.epsilon(DELTA).epsilon : 0;
      assert.ok(spent >= implied - 1e-9, `${what}: ledger ε ${spent} below the ε ${implied} of the ${receivedAtKill.length} updates the coordinator received`);
      // Restart on the same state dir: it reconnects, the audit log verifies, nothing half-written is left.
      edge = startEdge(args());
      await edge.next((e) => e.event === 'connected', `${what}: the edge to reconnect`, { timeoutMs: 30_000 });
      assert.equal(edge.events.filter((e) => e.event === 'audit_warning' && /BROKEN/.test(String(e.message))).length, 0, `${what}: ${edge.output().slice(-2000)}`);
      await auditVerifies(stateDir, what);
      assert.deepEqual(leftovers(stateDir), [], `${what}: files a crash left behind, after the restart`);
    }
    console.log(`      (mid-ledger kills: ${JSON.stringify(landed)}; ε spent ${spentBefore.toFixed(3)}; a fit took ${fitMs.toFixed(0)} ms to its charge)`);
    assert.ok(landed.training >= 2 && landed.midLedgerWrite >= 1 && landed.chargedNotReceived + landed.received >= 2, JSON.stringify(landed));
  });
});
