/**
 * The case store: one case per SOP instance (keyed pseudonyms, stable splits), labels and their
 * history, what the audit log has yet to record, retention, the labelled data sets training
 * reads — and nothing identifying in its files.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CaseLabelError, CaseNotFoundError, CaseStore, splitOf } from '../../../edge-client/cases/caseStore.js';
import { Pseudonymiser } from '../../../edge-client/cases/pseudonymiser.js';
import type { InstanceMetadata } from '../../../edge-client/dicom/dicomTypes.js';
import { loadNodeSqlite } from '../../../shared/storage/nodeSqlite.js';
import { makeTempDir } from '../../helpers/paths.js';

const META: InstanceMetadata = { modality: 'CR', bodyPart: 'CHEST', manufacturer: 'ACME', manufacturerModel: 'X1', sopClassUid: '1.2.840.10008.5.1.4.1.1.1', transferSyntax: '1.2.840.10008.1.2.1', rows: 28, columns: 28, bitsAllocated: 8, bitsStored: 8, pixelRepresentation: 0, photometric: 'MONOCHROME2', samplesPerPixel: 1, frames: 1 };
const uids = (k: number) => ({ sopInstanceUid: `1.2.3.4.${k}`, studyInstanceUid: `1.2.3.5.${k % 3}`, seriesInstanceUid: `1.2.3.6.${k % 3}` });
const input = (k: number) => Float32Array.from({ length: 4 }, (_, i) => (k + i) / 10);

describe('case store', () => {
  let t: ReturnType<typeof makeTempDir>;
  let store: CaseStore;
  beforeEach(async () => {
    t = makeTempDir();
    store = await CaseStore.open(t.dir);
  });
  afterEach(() => {
    store.close();
    t.cleanup();
  });
  const put = (k: number, hash = 'spec-a', label?: number) => {
    const r = store.put(store.pseudonyms.of(uids(k)), { metadata: META, source: { kind: 'scp', callingAet: 'MOD' }, input: input(k), inputShape: [2, 2, 1], inputSpecHash: hash });
    if (label !== undefined) store.label(r.id, label, 'dr.a', { via: 'api', token: 'tok1' });
    return r;
  };

  it('one case per SOP Instance UID: a re-sent instance is the same case, left as it was', () => {
    const a = put(1);
    const b = put(1);
    assert.equal(a.duplicate, false);
    assert.equal(b.duplicate, true);
    assert.equal(a.id, b.id);
    assert.equal(store.stats().cases, 1);
    assert.deepEqual(Array.from(store.input(a.id)), Array.from(input(1)));
  });

  it('pseudonyms are keyed: the same UID gets another pseudonym at another site, the same one after a restart', async () => {
    const id = put(1).id;
    const other = makeTempDir();
    try {
      assert.notEqual(Pseudonymiser.open(join(other.dir, 'k')).pseudonym('sop', '1.2.3.4.1'), id);
      store.close();
      store = await CaseStore.open(t.dir);
      assert.equal(store.pseudonyms.of(uids(1)).id, id);
      assert.equal(statSync(join(t.dir, 'cases', 'pseudonym.key')).mode & 0o777, 0o600);
    } finally {
      other.cleanup();
    }
  });

  it('labels change, every change kept with who and how; a bad label or labeller is refused by name', () => {
    const id = put(2).id;
    store.label(id, 1, 'dr.a', { via: 'api', token: 'tok1', numClasses: 2 });
    store.label(id, 0, 'dr.b', { via: 'cli' });
    assert.equal(store.get(id)!.label, 0);
    assert.deepEqual(store.labelHistory(id).map((c) => [c.label, c.previous, c.by, c.via, c.token]), [[1, null, 'dr.a', 'api', 'tok1'], [0, 1, 'dr.b', 'cli', null]]);
    assert.throws(() => store.label(id, 2, 'dr.a', { via: 'api', numClasses: 2 }), CaseLabelError);
    assert.throws(() => store.label(id, -1, 'dr.a', { via: 'api' }), /class index/);
    assert.throws(() => store.label(id, 1, ' ', { via: 'api' }), /"by"/);
    assert.throws(() => store.label('0'.repeat(32), 1, 'dr.a', { via: 'api' }), CaseNotFoundError);
    store.label(id, null, 'dr.c', { via: 'api' });
    assert.equal(store.get(id)!.label, null);
  });

  it('the audit backlog holds each label change and deletion once, in order, until marked recorded', () => {
    const id = put(3).id;
    store.label(id, 1, 'dr.a', { via: 'api', token: 'tok1' });
    store.label(id, 0, 'dr.a', { via: 'cli' });
    const backlog = store.unaudited();
    assert.deepEqual(backlog.map((c) => c.kind), ['label', 'label']);
    store.audited(backlog[0].seq);
    assert.equal(store.unaudited().length, 1);
    store.audited(backlog[1].seq);
    assert.equal(store.deleteBefore(new Date(Date.now() + 1000), 'test'), 1);
    const del = store.unaudited();
    assert.equal(del.length, 1);
    assert.equal(del[0].kind, 'deletion');
    assert.equal(del[0].kind === 'deletion' && del[0].count, 1);
  });

  it('splits come from the pseudonym alone: stable, about 70 / 15 / 15', () => {
    const counts = { train: 0, val: 0, test: 0 };
    for (let k = 0; k < 2000; k++) {
      const id = store.pseudonyms.pseudonym('sop', `9.9.${k}`);
      assert.equal(splitOf(id), splitOf(id));
      counts[splitOf(id)]++;
    }
    assert.ok(counts.train > 1300 && counts.train < 1500 && counts.val > 220 && counts.test > 220, JSON.stringify(counts));
  });

  it('training data: only labelled cases of the model\'s input spec and classes, in their splits', () => {
    for (let k = 0; k < 60; k++) put(k, 'spec-a', k % 2);
    for (let k = 60; k < 70; k++) put(k, 'spec-b', 1); // another model's input
    put(70, 'spec-a'); // unlabelled
    put(71, 'spec-a', 5); // a label beyond this model's classes
    const d = store.datasets('spec-a', [2, 2, 1], 2);
    assert.equal(d.train.y.length + d.val!.y.length + d.test.y.length, 60);
    assert.deepEqual(d.train.exampleShape, [2, 2, 1]);
    assert.equal(d.train.x.length, d.train.y.length * 4);
    const counts = store.labelledCounts('spec-a');
    assert.equal(counts.train + counts.val + counts.test, 61);
    assert.equal(store.datasets('spec-c', [2, 2, 1], 2).train.y.length, 0);
  });

  it('retention deletes old cases with their history; originals only when kept', async () => {
    store.close();
    store = await CaseStore.open(t.dir, { keepOriginals: true });
    const r = store.put(store.pseudonyms.of(uids(5)), { metadata: META, source: { kind: 'import', file: 'x.dcm' }, input: input(5), inputShape: [2, 2, 1], inputSpecHash: 'h', original: Buffer.from('DICM original bytes') });
    assert.equal(store.get(r.id)!.original, true);
    assert.equal(Buffer.from(store.original(r.id)!).toString(), 'DICM original bytes');
    assert.equal(store.get(r.id)!.source, 'import', 'only the kind of source is kept (a path can name a patient)');
    assert.equal(store.deleteBefore(new Date(Date.now() - 86_400_000)), 0);
    assert.equal(store.deleteBefore(new Date(Date.now() + 1000)), 1);
    assert.equal(store.get(r.id), null);
    assert.equal(store.original(r.id), null);
  });

  it('pixelHash: keyed with the site key, kept with the case, found again under another UID; null without a digest', () => {
    const digest = 'ab'.repeat(32);
    const withPixels = (k: number) => store.put(store.pseudonyms.of({ ...uids(k), pixelSha256: digest }), { metadata: META, source: { kind: 'api' }, input: input(k), inputShape: [2, 2, 1], inputSpecHash: 'h' });
    const a = withPixels(30);
    const b = withPixels(31); // the same image re-sent under a new SOP Instance UID
    const hash = store.get(a.id)!.pixelHash;
    assert.match(hash ?? '', /^[0-9a-f]{64}$/);
    assert.equal(hash, store.pseudonyms.pixelHash(digest));
    assert.notEqual(hash, digest);
    const other = makeTempDir();
    try {
      assert.notEqual(Pseudonymiser.open(join(other.dir, 'k')).pixelHash(digest), hash, 'another site key gives another pixelHash');
    } finally {
      other.cleanup();
    }
    assert.deepEqual(store.withPixelHash(hash!).map((c) => c.id).sort(), [a.id, b.id].sort());
    assert.equal(store.get(put(32).id)!.pixelHash, null);
  });

  it('a schema-1 database (before pixelHash) opens: its cases keep pixelHash null, new ones get it', async () => {
    store.close();
    const old = makeTempDir();
    try {
      const { DatabaseSync } = await loadNodeSqlite();
      mkdirSync(join(old.dir, 'cases'));
      const db = new DatabaseSync(join(old.dir, 'cases', 'cases.db'));
      db.exec(`CREATE TABLE cases (id TEXT PRIMARY KEY, study TEXT NOT NULL, series TEXT NOT NULL, source TEXT NOT NULL, received_at TEXT NOT NULL, metadata TEXT NOT NULL, input_spec_hash TEXT NOT NULL, input_shape TEXT NOT NULL, input BLOB NOT NULL, split TEXT NOT NULL, label INTEGER, labelled_by TEXT, labelled_at TEXT, inference TEXT, original INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE label_changes (case_id TEXT NOT NULL, label INTEGER, previous INTEGER, by TEXT NOT NULL, at TEXT NOT NULL, via TEXT NOT NULL, token TEXT);
        CREATE TABLE unaudited (seq INTEGER PRIMARY KEY AUTOINCREMENT, record TEXT NOT NULL);
        PRAGMA user_version = 1;`);
      db.prepare('INSERT INTO cases (id, study, series, source, received_at, metadata, input_spec_hash, input_shape, input, split) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').run('1'.repeat(32), 's', 's', 'scp', new Date().toISOString(), JSON.stringify(META), 'h', '[2,2,1]', new Uint8Array(16), 'train');
      db.close();
      store = await CaseStore.open(old.dir);
      assert.equal(store.get('1'.repeat(32))!.pixelHash, null);
      const r = store.put(store.pseudonyms.of({ ...uids(40), pixelSha256: 'cd'.repeat(32) }), { metadata: META, source: { kind: 'api' }, input: input(40), inputShape: [2, 2, 1], inputSpecHash: 'h' });
      assert.match(store.get(r.id)!.pixelHash ?? '', /^[0-9a-f]{64}$/);
      store.close();
    } finally {
      old.cleanup();
    }
    store = await CaseStore.open(t.dir); // (afterEach closes it)
  });

  it('no UID in any of its files', async () => {
    for (let k = 0; k < 20; k++) put(k, 'spec-a', 1);
    store.close();
    const dir = join(t.dir, 'cases');
    const text = readdirSync(dir).map((f) => readFileSync(join(dir, f)).toString('latin1')).join('');
    for (let k = 0; k < 20; k++) for (const u of Object.values(uids(k))) assert.ok(!text.includes(u), u);
    store = await CaseStore.open(t.dir); // (afterEach closes it)
  });
});
