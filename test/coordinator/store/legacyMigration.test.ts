/**
 * Migration from the single-document store of earlier fedmed versions (DATA_DIR/fedmed.json,
 * format /1): on the first start its history becomes indexed rows and the rest the document,
 * the file is kept as fedmed.json.migrated, and a real coordinator serves the migrated rounds,
 * versions and deployment log over its API. A file that is not a store is refused by name and
 * left untouched.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoordinatorStore } from '../../../coordinator/store/coordinatorStore.js';
import { startCoordinator } from '../../../coordinator/coordinatorServer.js';
import { StoreFormatError } from '../../../shared/errors.js';
import { makeTempDir } from '../../helpers/paths.js';

const hex = (c: string) => c.repeat(64);

/** A fedmed.json as fedmed wrote it before this store: two rounds, three versions, two deployment actions. */
function legacyStore(): Record<string, unknown> {
  const round = (n: number, versionId: string | null, status: string) => ({
    experiment: 'exp-1',
    round: n,
    status,
    startedAt: '2026-11-01T10:00:00.000Z',
    endedAt: '2026-11-01T10:00:05.000Z',
    reason: status === 'completed' ? null : 'only 1 of 2 site(s) returned an update',
    sites: [{ site: 'st-olav', phase: 'fit', status: 'done', numExamples: 100 }],
    fitMetrics: { loss: 0.5, accuracy: 0.75 },
    evalMetrics: null,
    versionId,
    timings: { totalMs: 5000 },
    privacy: { mode: 'central', noiseMultiplier: 1, samplingRate: 1, clip: 1, delta: 1e-5, charged: true, epsilon: 0.5 * n },
    bytesSent: 10,
    bytesReceived: 20,
  });
  const version = (id: string, round: number, parent: string | null) => ({ id, experiment: 'exp-1', round, parent, specHash: hex('e'), paramsSha256: hex('f'), createdAt: '2026-11-01T10:00:00.000Z' });
  return {
    format: 'fedmed.coordinator-store/1',
    sites: [{ name: 'st-olav', tokenSha256: hex('1'), tokenUsedAt: null, publicKey: null, createdAt: '2026-11-01T09:00:00.000Z', enrolledAt: null, revokedAt: null, lastSeen: null, roundsJoined: 1 }],
    apiTokens: [],
    experiments: [
      {
        id: 'exp-1',
        name: 'legacy',
        createdAt: '2026-11-01T09:30:00.000Z',
        config: { name: 'legacy', model: { zoo: 'logreg', numFeatures: 4, numClasses: 2 }, strategy: 'fedavg', privacy: { mode: 'central', clip: 1, noiseMultiplier: 1, delta: 1e-5 } },
        spec: { name: 'logreg', inputShape: [4], layers: [{ type: 'dense', units: 2 }, { type: 'softmax' }] },
        currentVersion: hex('b'),
        roundsCompleted: 1,
      },
    ],
    rounds: [round(1, hex('b'), 'completed'), round(2, null, 'failed')],
    versions: [version(hex('a'), 0, null), version(hex('b'), 1, hex('a')), version(hex('c'), 1, hex('a'))],
    deployment: {
      current: hex('b'),
      canary: null,
      previous: [],
      release: 1,
      log: [
        { at: '2026-11-01T10:00:06.000Z', action: 'held', version: hex('c'), reason: 'below the gate' },
        { at: '2026-11-01T10:00:07.000Z', action: 'publish', version: hex('b') },
      ],
    },
  };
}

describe('coordinator store: migration from fedmed.json (format /1)', () => {
  const t = makeTempDir();
  after(() => t.cleanup());

  it('moves history into indexed rows and the rest into the document, once', async () => {
    const dir = join(t.dir, 'migrate');
    mkdirSync(dir);
    writeFileSync(join(dir, 'fedmed.json'), JSON.stringify(legacyStore(), null, 2));
    const store = await CoordinatorStore.open(dir);
    assert.equal(store.data.format, 'fedmed.coordinator-store/2');
    assert.deepEqual(store.data.sites.map((s) => s.name), ['st-olav']);
    assert.equal(store.data.experiments[0].currentVersion, hex('b'));
    assert.equal(store.data.deployment?.current, hex('b'));
    assert.ok(!('log' in (store.data.deployment ?? {})), 'the deployment log is history, not document');
    assert.ok(!('rounds' in store.data) && !('versions' in store.data));
    assert.deepEqual((await store.rounds('exp-1')).map((r) => [r.round, r.status]), [[1, 'completed'], [2, 'failed']]);
    assert.equal((await store.roundOfVersion(hex('b')))?.round, 1);
    assert.deepEqual((await store.chargedRounds('exp-1')).map((r) => r.round), [1, 2]);
    assert.equal(await store.lastRoundNumber('exp-1'), 2);
    assert.deepEqual((await store.versions('exp-1')).map((v) => v.id), [hex('a'), hex('b'), hex('c')]);
    assert.equal((await store.version(hex('c')))?.parent, hex('a'));
    const log = await store.deploymentActions(10);
    assert.deepEqual(log.actions.map((a) => a.action), ['held', 'publish']);
    assert.equal(log.total, 2);
    await store.close();
    assert.ok(!existsSync(join(dir, 'fedmed.json')), 'fedmed.json is renamed');
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'fedmed.json.migrated'), 'utf8')), legacyStore(), 'and kept as it was');

    // Reopening does not migrate again (and a later change persists).
    const again = await CoordinatorStore.open(dir);
    assert.equal((await again.rounds('exp-1')).length, 2);
    await again.update((d) => void (d.sites[0].roundsJoined = 7));
    await again.close();
    assert.equal((await CoordinatorStore.open(dir)).data.sites[0].roundsJoined, 7);
  });

  it('a real coordinator serves the migrated rounds, versions and deployment log over its API', async () => {
    const dir = join(t.dir, 'serve');
    mkdirSync(dir);
    writeFileSync(join(dir, 'fedmed.json'), JSON.stringify(legacyStore()));
    const c = await startCoordinator({ dataDir: dir, port: 0, logLevel: 'silent' });
    try {
      const get = async <T>(path: string): Promise<T> => {
        const res = await fetch(`${c.url}${path}`, { headers: { authorization: `Bearer ${c.adminToken}` } });
        assert.equal(res.status, 200, path);
        return (await res.json()) as T;
      };
      assert.deepEqual((await get<{ round: number }[]>('/v1/experiments/exp-1/rounds')).map((r) => r.round), [1, 2]);
      assert.deepEqual((await get<{ round: number }[]>('/v1/experiments/exp-1/rounds?last=1')).map((r) => r.round), [2]);
      assert.equal((await get<unknown[]>('/v1/experiments/exp-1/versions')).length, 3);
      const privacy = await get<{ rounds: { round: number }[] }>('/v1/experiments/exp-1/privacy');
      assert.deepEqual(privacy.rounds.map((r) => r.round), [1, 2]);
      const d = await get<{ current: string; log: { action: string }[]; logTotal: number }>('/v1/deployment');
      assert.equal(d.current, hex('b'));
      assert.deepEqual(d.log.map((a) => a.action), ['held', 'publish']);
      assert.equal(d.logTotal, 2);
    } finally {
      await c.close();
    }
  });

  it('refuses a fedmed.json that is not a store, naming it, and leaves it as it is', async () => {
    for (const [name, text] of [
      ['not-json', '{"format": "fedmed.coordinator-store/1", "rounds": ['],
      ['wrong-format', JSON.stringify({ format: 'something-else/9', rounds: [], versions: [] })],
    ] as const) {
      const dir = join(t.dir, name);
      mkdirSync(dir);
      writeFileSync(join(dir, 'fedmed.json'), text);
      await assert.rejects(CoordinatorStore.open(dir), (err: Error) => err instanceof StoreFormatError && err.message.includes(join(dir, 'fedmed.json')) && /left as it is/.test(err.message));
      assert.equal(readFileSync(join(dir, 'fedmed.json'), 'utf8'), text);
    }
  });
});
