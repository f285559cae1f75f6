/**
 * An edge's audit log (STATE_DIR/audit.jsonl) as a real `fedmed edge enroll` and `fedmed edge
 * start` write it, facing a scripted coordinator (FakeCoordinator: the federation's certified
 * coordinator, with a real key): enrolment, the coordinator's certificate and its signed audit
 * heads are recorded; an `audit_head` signed with another key is refused and never recorded as
 * received, one without a signature closes the connection; the site answers a good head with
 * its own signed head. Then `fedmed audit verify --state-dir` passes, and names the line of an
 * edited, deleted, reordered or truncated entry.
 */
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { signHead, verifyHead } from '../../../shared/audit/auditHead.js';
import type { AuditEntry } from '../../../shared/audit/auditChain.js';
import { encodeFrame } from '../../../shared/protocol/frameCodec.js';
import { generateIdentity, publicKeyFromB64 } from '../../../shared/secure/identity.js';
import { formatJoinToken } from '../../../shared/secure/trust/joinToken.js';
import { FakeCoordinator } from '../../helpers/fakeCoordinator.js';
import { spawnCli, stopProc, waitFor, type Proc } from '../../helpers/federation.js';
import { makeTempDir } from '../../helpers/paths.js';
import { runCli } from '../../helpers/runCli.js';
import { dataFile } from '../../adversary/harness.js';

const SECRET = `fmj_${'a'.repeat(43)}`;
const HEAD = { seq: 7, hash: 'ab'.repeat(32) };

describe('edge audit log: real edge processes, a scripted coordinator, forged heads, tampering', function () {
  this.timeout(60_000);
  const t = makeTempDir();
  const stateDir = join(t.dir, 'hosp');
  const file = join(stateDir, 'audit.jsonl');
  const fake = new FakeCoordinator();
  let edge: Proc;
  const entries = (): AuditEntry[] => readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as AuditEntry);
  const events = (name: string): Record<string, unknown>[] =>
    edge
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{"time"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((e) => e.event === name);

  before(async () => {
    await fake.start();
    fake.joinTokens.set(SECRET, 'hosp');
    const r = await runCli(['edge', 'enroll', '--coordinator', fake.url, '--token', formatJoinToken(SECRET, fake.admin.fingerprint), '--state-dir', stateDir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    edge = spawnCli(['edge', 'start', '--state-dir', stateDir, '--data', await dataFile(t.dir)]);
    await waitFor('the edge to connect', () => events('connected')[0], 30_000, 50);
  });
  after(async () => {
    if (edge) await stopProc(edge);
    await fake.close();
    t.cleanup();
  });

  it('attacker: a head signed with another key is refused and not recorded as received; a signed one is, and answered with the site head', async () => {
    // A forged head: well-formed, signed by a key that is not the certified coordinator's.
    const forged = signHead(generateIdentity().privateKey, { kind: 'coordinator' }, HEAD);
    await fake.sendTo('hosp', { type: 'audit_head', ...forged });
    await waitFor('the forged head to be refused', () => events('coordinator_head_refused')[0], 10_000, 50);
    // A site's head passed off as the coordinator's (the right key, the wrong signer): refused too.
    const wrongSigner = signHead(fake.identity.privateKey, { kind: 'site', site: 'hosp' }, HEAD);
    await fake.sendTo('hosp', { type: 'audit_head', ...wrongSigner });
    await waitFor('the mislabelled head to be refused', () => events('coordinator_head_refused')[1], 10_000, 50);
    // The honest head of the certified coordinator.
    const good = signHead(fake.identity.privateKey, { kind: 'coordinator' }, { seq: 9, hash: 'cd'.repeat(32) });
    await fake.sendTo('hosp', { type: 'audit_head', ...good });
    await waitFor('the signed head to be recorded', () => events('coordinator_head_recorded')[0], 10_000, 50);
    const siteHead = await waitFor('the site to send its own head', () => fake.of('audit_head', 'hosp')[0], 10_000, 50);
    assert.ok(verifyHead(publicKeyFromB64(fake.enrolled[0].publicKey), { kind: 'site', site: 'hosp' }, siteHead), "the site's head is signed with its enrolled key");
    assert.ok(!verifyHead(publicKeyFromB64(fake.enrolled[0].publicKey), { kind: 'coordinator' }, siteHead), 'and only as its own');

    // Unsigned: the message does not validate; the edge closes that connection (and reconnects).
    const unsigned: Partial<typeof good> = { ...good };
    delete unsigned.signature;
    const before = fake.connections;
    // (as raw frame bytes: the fake's own channel refuses to send an invalid message)
    void fake.channels.get('hosp')!.sendEncoded([encodeFrame({ type: 'audit_head', ...unsigned })]);
    await waitFor('the edge to reconnect after the invalid message', () => fake.connections > before && events('connected').length >= 2, 20_000, 50);
    assert.match(JSON.stringify(events('protocol_error')), /invalid audit_head message/);

    const log = entries();
    const received = log.filter((e) => e.action === 'coordinator_head.received');
    assert.equal(received.length, 1, 'only the good head is recorded as received');
    assert.deepEqual({ seq: received[0].details.seq, hash: received[0].details.hash, signature: received[0].details.signature }, { seq: 9, hash: good.hash, signature: good.signature });
    assert.equal(received[0].actor.kind, 'coordinator');
    const refused = log.filter((e) => e.action === 'coordinator_head.refused');
    assert.ok(refused.length >= 1 && refused.every((e) => e.details.hash === HEAD.hash));
    // The site's head names the entry that recorded the coordinator's head (or a later one).
    assert.ok(siteHead.seq >= log.indexOf(received[0]) + 1);
    assert.equal(log[siteHead.seq - 1].hash, siteHead.hash);
  });

  it('records enrolment and the coordinator certificate; fedmed audit verify --state-dir passes', async () => {
    await stopProc(edge);
    const log = entries();
    const actions = log.map((e) => e.action);
    assert.equal(actions[0], 'site.enrolled');
    assert.deepEqual(log[0].actor, { kind: 'operator' });
    assert.equal(log[0].subject, 'hosp');
    assert.ok(actions.includes('edge.started'));
    assert.equal(actions.filter((a) => a === 'coordinator_certificate.accepted').length, 1, 'one entry per certificate, not per connection');
    const text = readFileSync(file, 'utf8');
    assert.ok(!text.includes(SECRET.slice(4)), 'no join token secret');
    assert.ok(!text.includes(fake.enrolled[0].publicKey), 'no key material');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    const r = await runCli(['audit', 'verify', '--state-dir', stateDir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).entries, log.length);
    const show = await runCli(['audit', 'show', '--state-dir', stateDir, '--json', '--since', '2']);
    assert.equal(show.code, 0);
    assert.equal(show.stdout.trim().split('\n').length, log.length - 1);
    const heads = await runCli(['audit', 'heads', '--state-dir', stateDir, '--json']);
    assert.deepEqual((JSON.parse(heads.stdout) as { signer: string; seq: number }[]).map((h) => [h.signer, h.seq]), [['coordinator', 9]]);
  });

  it('an edited, deleted, reordered or truncated entry is named by fedmed audit verify --state-dir', async () => {
    const good = `${file}.good`;
    copyFileSync(file, good);
    const lines = readFileSync(good, 'utf8').trimEnd().split('\n');
    const n = lines.length;
    assert.ok(n >= 5, `${n} entries`);
    const at = 2; // (line 3)
    const attacks: { name: string; text: string; line: number; kind: string }[] = [
      { name: 'edit a field', text: [...lines.slice(0, at), lines[at].replace(/"seq":3,"at":"[^"]+"/, '"seq":3,"at":"2020-01-01T00:00:00.000Z"'), ...lines.slice(at + 1)].join('\n') + '\n', line: at + 1, kind: 'hash_mismatch' },
      { name: 'delete an entry', text: [...lines.slice(0, at), ...lines.slice(at + 1)].join('\n') + '\n', line: at + 1, kind: 'seq_gap' },
      { name: 'reorder two entries', text: [...lines.slice(0, at), lines[at + 1], lines[at], ...lines.slice(at + 2)].join('\n') + '\n', line: at + 1, kind: 'seq_gap' },
      { name: 'truncate the last entry', text: [...lines.slice(0, n - 1), lines[n - 1].slice(0, 30)].join('\n'), line: n, kind: 'truncated' },
    ];
    for (const a of attacks) {
      writeFileSync(file, a.text, { mode: 0o600 });
      const r = await runCli(['audit', 'verify', '--state-dir', stateDir, '--json']);
      assert.equal(r.code, 1, `${a.name}: verify must fail`);
      const out = JSON.parse(r.stdout) as { line: number; brokenAt: number; kind: string; reason: string };
      assert.deepEqual({ line: out.line, brokenAt: out.brokenAt, kind: out.kind }, { line: a.line, brokenAt: a.line, kind: a.kind }, `${a.name}: ${out.reason}`);
      const human = await runCli(['audit', 'verify', '--state-dir', stateDir]);
      assert.match(human.stderr, new RegExp(`BROKEN at seq ${a.line}, line ${a.line}`));
    }
    copyFileSync(good, file);
    assert.equal((await runCli(['audit', 'verify', '--state-dir', stateDir])).code, 0);
  });
});
