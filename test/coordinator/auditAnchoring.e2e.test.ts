/**
 * Cross-site anchoring of the audit logs with a real coordinator process and a real edge
 * process: after a round, the edge's log holds the coordinator's signed chain heads (verified
 * against its certified key) and the coordinator's log holds the site's (verified against the
 * key it enrolled); `fedmed audit cross-check` agrees. Then the coordinator's audit.jsonl is
 * rewritten consistently — an entry dropped and the whole chain re-hashed, so that its own
 * `fedmed audit verify` passes — and the cross-check catches it with the site's copy of the
 * signed head (from the edge's state dir, or from a heads file the site exported); the same for
 * a site that rewrote its log, caught with the coordinator's copy.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GENESIS, makeEntry, serializeEntry, sha256, type AuditEntry } from '../../shared/audit/auditChain.js';
import { call, createExperiment, enrol, freePort, onlineSites, spawnCli, startCoordinator, stopProc, waitFor, type CoordinatorProc, type Proc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { runCli } from '../helpers/runCli.js';
import { dataFile } from '../adversary/harness.js';
import { enrolScriptedSite, type SiteSend } from '../helpers/scriptedSite.js';
import { signHead, verifyHead } from '../../shared/audit/auditHead.js';
import type { MessageOf } from '../../shared/protocol/messages.js';
import { generateIdentity, publicKeyFromB64 } from '../../shared/secure/identity.js';

type CrossCheckOut = { ok: boolean; checks: { log: string; report: { ok: boolean; heads: number; agreeing: number; signatures: { valid: number; invalid: number; unverified: number }; disagreements: { signer: string; seq: number; reason: string }[] } }[] };

const readLog = (file: string): AuditEntry[] => readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as AuditEntry);

/** The log without its entry at `seq`, re-numbered and re-hashed: a rewrite its own verification cannot see. */
function rewriteWithout(file: string, seq: number): void {
  let prev = GENESIS;
  const lines = readLog(file)
    .filter((e) => e.seq !== seq)
    .map((e, i) => {
      const line = serializeEntry(makeEntry(i + 1, prev, e));
      prev = sha256(line);
      return line;
    });
  writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600 });
}

describe('audit anchoring: signed chain heads exchanged between a real coordinator and a real edge', function () {
  this.timeout(120_000);
  const t = makeTempDir();
  const dataDir = join(t.dir, 'coordinator');
  const stateDir = join(t.dir, 'st-olav');
  const coordLog = join(dataDir, 'audit.jsonl');
  const edgeLog = join(stateDir, 'audit.jsonl');
  let coord: CoordinatorProc;
  let edge: Proc;

  const crossCheck = async (args: string[]): Promise<{ code: number | null; out: CrossCheckOut; stderr: string }> => {
    const r = await runCli(['audit', 'cross-check', ...args, '--json']);
    return { code: r.code, out: JSON.parse(r.stdout) as CrossCheckOut, stderr: r.stderr };
  };

  before(async () => {
    coord = await startCoordinator(dataDir, await freePort());
    await enrol(coord, 'st-olav', stateDir);
    edge = spawnCli(['edge', 'start', '--state-dir', stateDir, '--data', await dataFile(t.dir)]);
    await waitFor('the edge online', async () => (await onlineSites(coord)).includes('st-olav'), 60_000, 100);
  });
  after(async () => {
    if (edge) await stopProc(edge);
    if (coord) await stopProc(coord);
    t.cleanup();
  });

  it('after a round, each side holds the other\'s verified signed head', async () => {
    const experiment = await createExperiment(coord, { name: 'anchoring', minFitClients: 1 });
    assert.equal((await call(coord, 'POST', `/v1/experiments/${experiment}/rounds`, { rounds: 1 })).status, 200);
    await waitFor('the round to end', async () => !(await call<{ running: boolean }>(coord, 'GET', `/v1/experiments/${experiment}`)).body.running, 60_000, 200);
    // The coordinator's head after the round's end reaches the site, whose answer reaches the coordinator.
    const ended = await waitFor('round.completed in the coordinator log', () => readLog(coordLog).find((e) => e.action === 'round.completed'), 10_000, 100);
    const held = await waitFor('a coordinator head from after the round in the edge log', () => readLog(edgeLog).find((e) => e.action === 'coordinator_head.received' && Number(e.details.seq) >= ended.seq), 10_000, 100);
    assert.deepEqual(held.actor, { kind: 'coordinator' });
    assert.equal(readLog(coordLog)[Number(held.details.seq) - 1].hash, held.details.hash, 'the head names the coordinator log as it is');
    const siteHead = await waitFor('the site head in the coordinator log', () => readLog(coordLog).find((e) => e.action === 'site_head.received' && Number(e.details.seq) >= held.seq), 10_000, 100);
    assert.deepEqual(siteHead.actor, { kind: 'site', site: 'st-olav' });
    assert.equal(readLog(edgeLog)[Number(siteHead.details.seq) - 1].hash, siteHead.details.hash);
    assert.ok(!readLog(coordLog).some((e) => e.action === 'site_head.refused'));
    const edgeActions = readLog(edgeLog).map((e) => e.action);
    for (const a of ['site.enrolled', 'edge.started', 'coordinator_certificate.accepted', 'round.joined', 'round.update_sent']) assert.ok(edgeActions.includes(a), `${a} in ${edgeActions.join(', ')}`);
  });

  it("attacker: a site's head not signed with its enrolled key is refused, never recorded as received; a flood is recorded once a second", async () => {
    const coordinatorKey = publicKeyFromB64((await call<{ coordinatorPublicKey: string }>(coord, 'GET', '/v1/federation')).body.coordinatorPublicKey);
    const heads: MessageOf<'audit_head'>[] = [];
    const site = await enrolScriptedSite(coord, coord.admin, 'mallory');
    const identity = generateIdentity(); // (not the key mallory enrolled)
    let send: SiteSend | null = null;
    const ws = site.connect((m, _p, reply) => {
      send = reply;
      if (m.type === 'audit_head') heads.push(m);
    });
    const head = await waitFor("the coordinator's head on connecting", () => heads[0], 10_000, 50);
    assert.ok(verifyHead(coordinatorKey, { kind: 'coordinator' }, head), "signed with the coordinator's certified key");
    const forged = (seq: number): MessageOf<'audit_head'> => ({ type: 'audit_head', ...signHead(identity.privateKey, { kind: 'site', site: 'mallory' }, { seq, hash: 'ee'.repeat(32) }) });
    send!(forged(3));
    const refused = await waitFor('the forged site head refused', () => readLog(coordLog).find((e) => e.action === 'site_head.refused' && e.subject === 'mallory'), 10_000, 50);
    assert.equal(refused.details.hash, 'ee'.repeat(32));
    for (let i = 4; i < 40; i++) send!(forged(i));
    await new Promise((r) => setTimeout(r, 1500));
    const mallory = readLog(coordLog).filter((e) => e.subject === 'mallory' && e.action.startsWith('site_head.'));
    assert.deepEqual(mallory.map((e) => [e.action, e.details.seq]), [['site_head.refused', 3], ['site_head.refused', 39]], 'the first, then the newest one a second later');
    ws.close();
  });

  it('fedmed audit cross-check agrees on the honest logs', async () => {
    await stopProc(edge);
    await stopProc(coord);
    for (const args of [['--data-dir', dataDir], ['--state-dir', stateDir]]) assert.equal((await runCli(['audit', 'verify', ...args])).code, 0);
    const r = await crossCheck(['--data-dir', dataDir, '--state-dir', stateDir]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out.ok, true);
    for (const c of r.out.checks) {
      assert.ok(c.report.heads >= 1 && c.report.agreeing === c.report.heads, JSON.stringify(c.report));
      assert.equal(c.report.signatures.valid, c.report.heads, 'every held head is signed by the log owner');
    }
  });

  it("a coordinator that rewrote its log consistently is caught by the site's copy of its signed head; and a site by the coordinator's", async () => {
    const goodCoord = `${coordLog}.good`;
    const goodEdge = `${edgeLog}.good`;
    copyFileSync(coordLog, goodCoord);
    copyFileSync(edgeLog, goodEdge);
    // The site exports the heads it holds (as it would to hand them to an auditor).
    const heads = await runCli(['audit', 'heads', '--state-dir', stateDir, '--json']);
    const headsFile = join(t.dir, 'st-olav-heads.json');
    writeFileSync(headsFile, heads.stdout);

    // The coordinator drops an early entry (the site's enrolment) and re-hashes the rest.
    const dropped = readLog(coordLog).find((e) => e.action === 'site.enrolled')!;
    rewriteWithout(coordLog, dropped.seq);
    const verify = await runCli(['audit', 'verify', '--data-dir', dataDir, '--json']);
    assert.equal(verify.code, 0, 'the rewritten log verifies on its own');
    let r = await crossCheck(['--data-dir', dataDir, '--state-dir', stateDir]);
    assert.equal(r.code, 1);
    const coordCheck = r.out.checks.find((c) => c.log === coordLog)!;
    assert.equal(coordCheck.report.ok, false);
    assert.equal(coordCheck.report.agreeing, 0, 'every head the site holds was signed after the dropped entry');
    assert.equal(coordCheck.report.signatures.valid, coordCheck.report.heads, "the site's copies carry the coordinator's own signature");
    assert.equal(coordCheck.report.disagreements[0].signer, 'coordinator');
    assert.match(coordCheck.report.disagreements[0].reason, /rewritten|cut/);
    assert.equal(r.out.checks.find((c) => c.log === edgeLog)!.report.ok, true, "the site's log still agrees with the coordinator's copies");
    r = await crossCheck(['--data-dir', dataDir, '--heads', headsFile]);
    assert.equal(r.code, 1, 'caught from the exported heads file too');
    const human = await runCli(['audit', 'cross-check', '--data-dir', dataDir, '--state-dir', stateDir]);
    assert.equal(human.code, 1);
    assert.match(human.stderr, /cross-check FAILED: .*audit\.jsonl against \d+ signed heads/);
    copyFileSync(goodCoord, coordLog);

    // A site that rewrote its own log: caught by the coordinator's copies of its heads.
    rewriteWithout(edgeLog, 2);
    assert.equal((await runCli(['audit', 'verify', '--state-dir', stateDir])).code, 0);
    r = await crossCheck(['--data-dir', dataDir, '--state-dir', stateDir]);
    assert.equal(r.code, 1);
    const edgeCheck = r.out.checks.find((c) => c.log === edgeLog)!;
    assert.equal(edgeCheck.report.disagreements[0].signer, 'site:st-olav');
    assert.equal(r.out.checks.find((c) => c.log === coordLog)!.report.ok, true);
    copyFileSync(goodEdge, edgeLog);
    assert.equal((await crossCheck(['--data-dir', dataDir, '--state-dir', stateDir])).code, 0);
  });
});
