/**
 * Crash safety of the edge mid-OTA (issue 19, item 2): a real coordinator process and a real
 * edge process (`fedmed edge start` with its inference service on), the edge SIGKILLed at 12
 * seeded random points around an OTA update and restarted on the same state dir each time. Each
 * round publishes a version (deploy "auto"; a 1.06M-parameter model, so an update is megabytes in
 * 256 KiB chunks) which the edge downloads and applies. Half the kills land in the download (at a
 * seeded fraction of the update's bytes on disk), half after it (decoding, verifying, storing,
 * hot-swapping: a seeded delay after `ota_downloaded`). After every restart: the edge starts and
 * serves at once; its versions store opens; active.json names a version whose params and signed
 * manifest verify (hash and signature, with the project's own loader); the inference service
 * answers with that version; a cut download resumes from the bytes on disk (a partial is never
 * taken for a complete one) and completes, and the edge ends up on the coordinator's deployed
 * version; no temporary or half-stored file is left in the state dir; the audit log verifies.
 * (The mid-ledger-write kills: edgeLedgerCrashSafety.e2e.test.ts.)
 */import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EdgeState } from '../../edge-client/federation/edgeState.js';
import { VersionStore } from '../../edge-client/ota/versionStore.js';
import { auditVerifies, killProc, leftovers, seeded, startEdge, writeCsv, type FollowedEdge, type LogEvent } from '../helpers/edgeCrash.js';
import { call, createExperiment, enrol, freePort, onlineSites, startCoordinator, stopProc, waitFor, type CoordinatorProc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';

async function roundsEnded(coord: CoordinatorProc, experiment: string, timeoutMs = 60_000): Promise<void> {
  await waitFor('the rounds to end', async () => !(await call<{ running: boolean }>(coord, 'GET', `/v1/experiments/${experiment}`)).body.running, timeoutMs, 50);
}


describe('crash safety: an edge SIGKILLed at random points mid-OTA, restarted each time (real processes)', function () {
  this.timeout(300_000);
  const TRIALS = 12;
  const t = makeTempDir();
  const stateDir = join(t.dir, 'site-ota');
  const data = join(t.dir, 'site-ota.csv');
  let coord: CoordinatorProc;
  let edge: FollowedEdge;
  let servePort: number;
  let experiment: string;
  const args = (): string[] => ['edge', 'start', '--state-dir', stateDir, '--data', data, '--serve-port', String(servePort), '--serve-no-auth', '--max-accuracy-drop', 'off'];

  const deployed = async (): Promise<string | null> => (await call<{ current: string | null }>(coord, 'GET', '/v1/deployment')).body.current;
  const infer = async (): Promise<{ status: number; version?: string }> => {
    const res = await fetch(`http://127.0.0.1:${servePort}/v1/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: [0.1, -0.2, 0.3, 0, 0.5, -0.5, 0.2, 0.9] }) });
    return { status: res.status, ...((await res.json()) as { version?: string }) };
  };
  const serving = async (): Promise<string | null> => {
    try {
      return ((await (await fetch(`http://127.0.0.1:${servePort}/healthz`)).json()) as { version: string | null }).version;
    } catch {
      return null;
    }
  };
  /** The active version on disk, opened and verified as the edge does (hash against the signed manifest, the manifest's signature). */
  const activeOnDisk = (what: string): string => {
    const store = new VersionStore(stateDir, 3, new EdgeState(stateDir).trust());
    const active = store.active;
    assert.ok(active, `${what}: versions/active.json names no version`);
    const v = store.load(active); // throws on a missing or corrupt .fmp, a manifest that does not match or is not signed
    assert.equal(v.signed.manifest.id, active);
    return active;
  };
  /** Until the edge serves the coordinator's deployed version (re-offered at reconnection, resumed or installed). */
  const caughtUp = async (what: string): Promise<string> => {
    const target = await deployed();
    assert.ok(target, 'a version is deployed');
    await waitFor(`${what}: the edge to serve ${target.slice(0, 12)}`, async () => (await serving()) === target, 60_000, 50).catch((err: Error) => {
      throw new Error(`${err.message}\n${edge.output().slice(-4000)}`);
    });
    await waitFor(`${what}: the coordinator to hear the edge runs it`, async () => (await call<{ sites: { site: string; active: string | null }[] }>(coord, 'GET', '/v1/deployment')).body.sites.find((s) => s.site === 'site-ota')?.active === target, 30_000, 50);
    return target;
  };
  /** Waits (polling the disk: chunks arrive faster than log lines could tell) until `fraction` of the update's bytes are in versions/partial.bin. */
  const partWritten = (version: string, fraction: number): void => {
    const dir = join(stateDir, 'versions');
    const until = Date.now() + 30_000;
    while (Date.now() < until) {
      try {
        const meta = JSON.parse(readFileSync(join(dir, 'partial.json'), 'utf8')) as { version: string; totalBytes: number };
        if (meta.version !== version) continue;
        const size = statSync(join(dir, 'partial.bin')).size;
        if (size >= fraction * meta.totalBytes) return;
      } catch {
        // (not started yet, or just completed and dropped)
        if (edge.events.length > 0 && new VersionStore(stateDir).has(version)) return;
      }
    }
  };
  /** Starts one round and waits for the edge to ask for the version it publishes. */
  const roundAndFetch = async (before: string | null): Promise<LogEvent> => {
    await waitFor('the edge online', async () => (await onlineSites(coord)).includes('site-ota'), 60_000, 50);
    const from = edge.events.length;
    const started = await call(coord, 'POST', `/v1/experiments/${experiment}/rounds`, { rounds: 1 });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    return edge.next((e) => e.event === 'ota_fetch' && e.version !== before, 'ota_fetch of the new version', { from });
  };

  before(async () => {
    const port = await freePort();
    servePort = await freePort();
    coord = await startCoordinator(join(t.dir, 'coordinator'), port);
    writeCsv(data, 7);
    await enrol(coord, 'site-ota', stateDir);
    edge = startEdge(args());
    await waitFor('the edge online', async () => (await onlineSites(coord)).includes('site-ota'));
    experiment = await createExperiment(coord, {
      name: 'ota-crash',
      model: { zoo: 'mlp-tabular', numFeatures: 8, numClasses: 2, hidden: [1024, 1024] },
      minFitClients: 1,
      fractionEvaluate: 0,
      minEvaluateClients: 0,
      deadlineSeconds: 30,
      deploy: 'auto',
      fit: { epochs: 1, batchSize: 32, learningRate: 0.001, optimizer: 'adam' }, // (adam moves every weight: a delta of megabytes)
    });
  });
  after(async () => {
    if (edge) await stopProc(edge, 'SIGKILL');
    if (coord) await stopProc(coord, 'SIGKILL');
    t.cleanup();
  });

  it('after every kill the edge starts, serves a verified version, resumes the download, and catches up with the deployed version', async () => {
    // Two rounds without a kill: the edge has a version, and the durations of a delta download and its installation.
    let download = 0;
    let apply = 0;
    let updateBytes = 0;
    for (let i = 0; i < 2; i++) {
      const fetch = await roundAndFetch(i === 0 ? null : activeOnDisk('warm-up'));
      const done = await edge.next((e) => e.event === 'ota_downloaded' && e.version === fetch.version, 'ota_downloaded');
      const active = await edge.next((e) => e.event === 'ota_active' && e.version === fetch.version, 'ota_active');
      download = done.at - fetch.at;
      apply = active.at - done.at;
      updateBytes = done.bytes as number;
      await roundsEnded(coord, experiment);
    }
    assert.equal(await caughtUp('warm-up'), activeOnDisk('warm-up'));

    const rand = seeded(19);
    /** Where each kill landed: before the first chunk, in the download, after it (not yet stored / stored, not yet active), after the switch. */
    const landed = { beforeFirstChunk: 0, midDownload: 0, midApplyDecoding: 0, midApplyStored: 0, afterApply: 0 };
    const fractions: number[] = [];
    let resumed = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      const what = `trial ${trial}`;
      const before = activeOnDisk(what);
      const fetch = await roundAndFetch(before);
      const version = fetch.version as string;
      // The kill: during the download (once a seeded fraction of the update is on disk) or the
      // installation (a seeded delay after the last chunk).
      const target = trial % 2 === 0 ? 'download' : 'apply';
      if (target === 'download') partWritten(version, 0.05 + 0.9 * rand());
      else {
        await edge.next((e) => e.event === 'ota_downloaded' && e.version === version, 'ota_downloaded', { from: edge.events.indexOf(fetch) });
        const delay = rand() * apply * 0.7;
        if (delay >= 1) await new Promise((r) => setTimeout(r, delay));
      }
      await killProc(edge);
      const seen = (event: string): boolean => edge.events.some((e) => e.event === event && e.version === version);
      const partial = new VersionStore(stateDir).partial();
      if (seen('ota_active')) landed.afterApply++;
      else if (seen('ota_downloaded')) landed[new VersionStore(stateDir).has(version) ? 'midApplyStored' : 'midApplyDecoding']++;
      else if (partial && partial.version === version && partial.bytes > 0) {
        landed.midDownload++;
        fractions.push(partial.bytes / partial.totalBytes);
      } else landed.beforeFirstChunk++;
      await roundsEnded(coord, experiment);

      // Restart on the same state dir: it starts, and serves a verified version at once (from disk, before the coordinator is reached).
      edge = startEdge(args());
      const listening = await edge.next((e) => e.event === 'inference_listening', `${what}: the edge to start`, { timeoutMs: 30_000 });
      const onDisk = activeOnDisk(what);
      assert.ok(onDisk === before || onDisk === version, `${what}: active ${onDisk} is neither the version before the kill nor the one offered`);
      assert.ok(listening.version === onDisk || listening.version === version, `${what}: serves ${String(listening.version)} at start, active on disk ${onDisk}`);
      const answer = await infer();
      assert.equal(answer.status, 200, `${what}: inference`);
      assert.ok(answer.version === onDisk || answer.version === version, `${what}: inference answered with ${answer.version}`);
      // A cut download is resumed from the bytes on disk (a partial is never taken for a complete one) and completes.
      const refetch = onDisk === before ? await edge.next((e) => ['ota_fetch', 'ota_resumed_complete', 'ota_active'].includes(e.event) && e.version === version, `${what}: the edge to take up ${version.slice(0, 12)} again`) : null;
      if (refetch && partial && partial.version === version && partial.bytes > 0) {
        // (all the bytes on disk, killed before they were processed: finished from disk, nothing left to fetch)
        if (partial.bytes === partial.totalBytes) assert.equal(refetch.event, 'ota_resumed_complete', `${what}: a complete partial download is finished from disk`);
        else assert.deepEqual([refetch.event, refetch.offset], ['ota_fetch', partial.bytes], `${what}: resumed from the ${partial.bytes} bytes on disk`);
        resumed++;
      }
      assert.equal(await caughtUp(what), version);
      assert.equal(activeOnDisk(what), version, `${what}: active.json names the deployed version`);
      const again = await infer();
      assert.deepEqual([again.status, again.version], [200, version], `${what}: inference with the deployed version`);
      assert.equal(edge.events.filter((e) => e.event === 'ota_refused').length, 0, `${what}: nothing refused: ${JSON.stringify(edge.events.filter((e) => e.event === 'ota_refused'))}`);
      assert.deepEqual(leftovers(stateDir), [], `${what}: files a crash left behind`);
      await auditVerifies(stateDir, what);
    }
    console.log(`      (mid-OTA kills: ${JSON.stringify(landed)}; mid-download at ${fractions.map((f) => `${Math.round(f * 100)}%`).join(', ')} of the update; resumed downloads: ${resumed}; a delta of ${(updateBytes / 1e6).toFixed(1)} MB took ${download.toFixed(0)} ms from fetch to last chunk, its installation ${apply.toFixed(0)} ms)`);
    // The kills landed where they were aimed: in the download (and each such download resumed) and in the installation.
    assert.ok(landed.midDownload >= 2, JSON.stringify(landed));
    assert.equal(resumed, landed.midDownload, `resumed downloads: ${resumed}`);
    assert.ok(landed.midApplyDecoding + landed.midApplyStored >= 3, JSON.stringify(landed));
    // And a last round, without a kill, deploys and serves.
    const fetch = await roundAndFetch(activeOnDisk('last'));
    await edge.next((e) => e.event === 'ota_active' && e.version === fetch.version, 'the last ota_active');
    assert.equal(await caughtUp('last'), fetch.version);
  });
});

