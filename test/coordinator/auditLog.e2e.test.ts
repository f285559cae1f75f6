/**
 * The coordinator's hash-chained audit log against a real coordinator process: admin and
 * researcher changes are recorded with the API token (id and role) that made them and no secret;
 * `fedmed audit verify` passes; then an edited, deleted, reordered or truncated line, or a forged
 * line appended with a recomputed hash, makes verify exit 1 naming the line, and a restarted
 * coordinator reports the break at that seq in GET /v1/audit (and keeps serving). Only admins
 * read the log.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addSite, revokeSite } from '../../cli/admin/federationAdmin.js';
import { makeEntry, type AuditEntry } from '../../shared/audit/auditChain.js';
import type { AuditIntegrity } from '../../shared/audit/auditLog.js';
import { adminApi, call, enrol, freePort, startCoordinator, stopProc, type CoordinatorProc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { runCli } from '../helpers/runCli.js';

type AuditView = { entries: AuditEntry[]; integrity: AuditIntegrity };
type VerifyOut = { ok: boolean; entries: number; head: string; brokenAt?: number; line?: number; kind?: string; reason?: string };

describe('coordinator audit log (real coordinator process)', function () {
  this.timeout(90_000);
  const t = makeTempDir();
  const dataDir = join(t.dir, 'coordinator');
  const file = join(dataDir, 'audit.jsonl');
  let port: number;
  let coord: CoordinatorProc;
  const secrets: string[] = [];
  let adminId: string;
  let researcher: { id: string; token: string };
  let experiment: string;

  before(async () => {
    port = await freePort();
    coord = await startCoordinator(dataDir, port);
  });
  after(async () => {
    if (coord) await stopProc(coord);
    t.cleanup();
  });

  const verify = async (): Promise<{ code: number | null; out: VerifyOut; stderr: string }> => {
    const r = await runCli(['audit', 'verify', '--data-dir', dataDir, '--json']);
    return { code: r.code, out: JSON.parse(r.stdout) as VerifyOut, stderr: r.stderr };
  };

  it('records who changed what, with the token id and role, and no secrets', async () => {
    adminId = (await call<{ id: string }>(coord, 'GET', '/v1/whoami')).body.id;
    secrets.push(coord.adminToken);
    // The admin adds and certifies a site (it enrols itself), adds another, creates a researcher token.
    secrets.push(await enrol(coord, 'st-olav', join(t.dir, 'st-olav')));
    const { token: joinToken } = await addSite(adminApi(coord), 'haukeland', coord.admin);
    secrets.push(joinToken);
    const created = await call<{ id: string; token: string }>(coord, 'POST', '/v1/tokens', { role: 'researcher', name: 'dr. lee' });
    assert.equal(created.status, 200);
    researcher = created.body;
    secrets.push(researcher.token);
    // The researcher creates an experiment; the admin revokes a site (signed revocation list).
    const exp = await call<{ id: string }>(coord, 'POST', '/v1/experiments', { name: 'audit-e2e', model: { zoo: 'cnn-28', numClasses: 2 }, minFitClients: 2, fit: { epochs: 1, batchSize: 32, learningRate: 0.001, optimizer: 'adam' } }, researcher.token);
    assert.equal(exp.status, 200, JSON.stringify(exp.body));
    experiment = exp.body.id;
    await revokeSite(adminApi(coord), coord.admin, 'st-olav', 'laptop stolen');

    const view = (await call<AuditView>(coord, 'GET', '/v1/audit?limit=1000')).body;
    assert.equal(view.integrity.ok, true, view.integrity.message);
    const find = (action: string, subject: string): AuditEntry => {
      const e = view.entries.find((x) => x.action === action && x.subject === subject);
      assert.ok(e, `${action} ${subject} in ${view.entries.map((x) => `${x.action} ${x.subject}`).join('; ')}`);
      return e;
    };
    const byAdmin = { kind: 'token', id: adminId, role: 'admin' };
    assert.deepEqual(find('site.added', 'st-olav').actor, byAdmin);
    assert.deepEqual(find('site.added', 'haukeland').actor, byAdmin);
    assert.deepEqual(find('site.enrolled', 'st-olav').actor, { kind: 'site', site: 'st-olav' });
    assert.match(String(find('site.enrolled', 'st-olav').details.fingerprint), /\w/);
    assert.deepEqual(find('site.certified', 'st-olav').actor, byAdmin);
    const tokenCreated = find('token.created', researcher.id);
    assert.deepEqual(tokenCreated.actor, byAdmin);
    assert.deepEqual(tokenCreated.details, { role: 'researcher', name: 'dr. lee' });
    const expCreated = find('experiment.created', experiment);
    assert.deepEqual(expCreated.actor, { kind: 'token', id: researcher.id, role: 'researcher' });
    assert.equal(expCreated.details.name, 'audit-e2e');
    assert.deepEqual(find('site.revoked', 'st-olav').actor, byAdmin);
    assert.equal(view.entries.filter((x) => x.action === 'site.revoked' && x.subject === 'st-olav').length, 1, 'one entry per revocation');
    assert.deepEqual(find('federation.revocations_installed', 'revocation-list').actor, byAdmin);
    assert.deepEqual(find('federation.coordinator_certified', 'coordinator').actor, byAdmin);
    assert.equal(find('coordinator.started', 'coordinator').actor.kind, 'coordinator');
    // The chain as served: consecutive seqs, each prev the hash of the line before.
    view.entries.forEach((e, i) => assert.equal(e.seq, i + 1));
    assert.equal(view.integrity.head, view.entries[view.entries.length - 1].hash);
    assert.equal(view.integrity.entries, view.entries.length);
    assert.equal((await call<AuditView>(coord, 'GET', '/v1/audit?limit=2')).body.entries.length, 2);
    assert.equal((await call(coord, 'GET', '/v1/audit?limit=1001')).status, 400);

    const text = readFileSync(file, 'utf8');
    for (const s of secrets) {
      assert.ok(!text.includes(s), 'no token or join token in the log');
      const secret = s.split('.')[0].slice(4); // (the secret part alone, too: fmj_<secret>.<admin fingerprint>, fma_<secret>)
      assert.ok(secret.length >= 16 && !text.includes(secret));
    }
    assert.ok(!/fm[aj]_/.test(text), 'no credential of any kind');
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });

  it('only admins read the log', async () => {
    assert.equal((await call(coord, 'GET', '/v1/audit', undefined, researcher.token)).status, 403);
    const deployer = (await call<{ token: string }>(coord, 'POST', '/v1/tokens', { role: 'deployer' })).body.token;
    assert.equal((await call(coord, 'GET', '/v1/audit', undefined, deployer)).status, 403);
    assert.equal((await call(coord, 'GET', '/v1/audit', undefined, 'fma_nope')).status, 401);
  });

  it('fedmed audit verify passes on the log the coordinator wrote', async () => {
    await stopProc(coord);
    const r = await verify();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out.ok, true);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    assert.equal(r.out.entries, lines.length);
    const last = JSON.parse(lines[lines.length - 1]) as AuditEntry;
    assert.equal(last.action, 'coordinator.stopped');
    assert.equal(r.out.head, last.hash);
    const human = await runCli(['audit', 'verify', '--data-dir', dataDir]);
    assert.equal(human.code, 0);
    assert.match(human.stdout, new RegExp(`${lines.length} entries.*${last.hash}`));
  });

  it('an edited, deleted, reordered or truncated line, or a forged one, is named by verify and by a restarted coordinator', async () => {
    const good = `${file}.good`;
    copyFileSync(file, good);
    const lines = readFileSync(good, 'utf8').trimEnd().split('\n');
    const n = lines.length;
    const at = lines.findIndex((l) => l.includes('"action":"experiment.created"'));
    assert.ok(at > 0 && at < n - 2);
    const last = JSON.parse(lines[n - 1]) as AuditEntry;
    const forged = makeEntry(n + 1, last.hash, { at: new Date().toISOString(), actor: { kind: 'token', id: researcher.id, role: 'admin' }, action: 'token.created', subject: 'backdoor', details: { role: 'admin' } });
    const attacks: { name: string; text: string; line: number; kind: string; recovers?: boolean }[] = [
      // A researcher's action made to look like an admin's.
      { name: 'edit a field', text: [...lines.slice(0, at), lines[at].replace('"role":"researcher"', '"role":"admin"'), ...lines.slice(at + 1)].join('\n') + '\n', line: at + 1, kind: 'hash_mismatch' },
      { name: 'delete a line', text: [...lines.slice(0, at), ...lines.slice(at + 1)].join('\n') + '\n', line: at + 1, kind: 'seq_gap' },
      { name: 'reorder two lines', text: [...lines.slice(0, at), lines[at + 1], lines[at], ...lines.slice(at + 2)].join('\n') + '\n', line: at + 1, kind: 'seq_gap' },
      // (what a crash mid-write leaves: the restarted coordinator cuts the torn tail off and records it, below)
      { name: 'truncate the last line', text: [...lines.slice(0, n - 1), lines[n - 1].slice(0, 40)].join('\n'), line: n, kind: 'truncated', recovers: true },
      // (its prev is the last entry's hash field, not the hash of the last line's bytes)
      { name: 'append a forged line', text: [...lines, JSON.stringify(forged)].join('\n') + '\n', line: n + 1, kind: 'prev_mismatch' },
    ];
    for (const a of attacks) {
      writeFileSync(file, a.text, { mode: 0o600 });
      const r = await verify();
      assert.equal(r.code, 1, `${a.name}: verify must fail`);
      assert.deepEqual({ ok: r.out.ok, line: r.out.line, brokenAt: r.out.brokenAt, kind: r.out.kind }, { ok: false, line: a.line, brokenAt: a.line, kind: a.kind }, `${a.name}: ${r.out.reason}`);
      assert.equal(r.out.entries, a.text.split('\n').filter(Boolean).length, `${a.name}: line count`);
      const human = await runCli(['audit', 'verify', '--data-dir', dataDir]);
      assert.equal(human.code, 1);
      assert.match(human.stderr, new RegExp(`BROKEN at seq ${a.line}, line ${a.line}`));

      coord = await startCoordinator(dataDir, port);
      if (a.recovers) {
        // A torn last line on an otherwise intact log: cut off at start, recorded, and the chain verifies.
        const view = (await call<AuditView>(coord, 'GET', '/v1/audit?limit=1000')).body;
        assert.equal(view.integrity.ok, true, `${a.name}: ${view.integrity.message}`);
        const rec = view.entries.find((e) => e.action === 'audit.recovered');
        assert.deepEqual([rec?.details.line, rec?.details.droppedBytes], [n, 40], a.name);
        await stopProc(coord);
        assert.equal((await verify()).code, 0, `${a.name}: verifies after the restart`);
        copyFileSync(good, file);
        continue;
      }
      // The coordinator still starts, says so loudly, and reports the break.
      const view = (await call<AuditView>(coord, 'GET', '/v1/audit?limit=1000')).body;
      assert.equal(view.integrity.ok, false, a.name);
      assert.equal(view.integrity.brokenAt, a.line, `${a.name}: ${view.integrity.message}`);
      assert.match(coord.output(), /AUDIT LOG INTEGRITY BROKEN/);
      const flagged = view.entries.find((e) => e.action === 'audit.integrity_broken');
      assert.equal(flagged?.details.brokenAt, a.line);
      await stopProc(coord);
      // Still broken at the same place after the coordinator appended to it.
      assert.equal((await verify()).out.brokenAt, a.line);
      copyFileSync(good, file);
    }
    coord = await startCoordinator(dataDir, port);
    assert.equal((await call<AuditView>(coord, 'GET', '/v1/audit')).body.integrity.ok, true, 'the restored log verifies again');
  });
});
