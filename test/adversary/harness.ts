/**
 * The adversarial suite's common parts: real `fedmed edge start` processes enrolled in a
 * federation whose admin key the test holds, facing a scripted coordinator (FakeCoordinator:
 * a real WebSocket server speaking fedmed's protocol) that is either the certified coordinator
 * turned malicious or an impostor. Helpers read the edge's JSON log and build protocol messages.
 */
import { join } from 'node:path';
import { zooModel } from '../../models/zoo.js';
import { initParams } from '../../shared/model/initParams.js';
import { float32Bytes, modelVersionId } from '../../shared/model/modelHash.js';
import type { ModelSpec } from '../../shared/model/modelSpec.js';
import type { Message, MessageOf } from '../../shared/protocol/messages.js';
import { maxWeightFor } from '../../shared/secure/secagg/secaggParams.js';
import { newSession } from '../../shared/secure/secagg/secaggServer.js';
import type { SecAggRoundParams } from '../../shared/secure/secagg/secaggParams.js';
import { FakeCoordinator, type EnrolledFakeSite } from '../helpers/fakeCoordinator.js';
import { spawnCli, waitFor, type Proc } from '../helpers/federation.js';
import { runCli } from '../helpers/runCli.js';

export const SPEC: ModelSpec = zooModel('cnn-28', { numClasses: 2 });
export const PARAMS = initParams(SPEC, 1);
export const VERSION = modelVersionId(SPEC, PARAMS);

/** A small synthetic data file (made once per directory). */
export async function dataFile(dir: string, seed = 1): Promise<string> {
  const file = join(dir, `data-${seed}.npz`);
  const r = await runCli(['make-synthetic', '--out', file, '--n', '60', '--seed', String(seed)]);
  if (r.code !== 0) throw new Error(r.stderr);
  return file;
}

export interface EdgeUnderTest extends Proc {
  site: EnrolledFakeSite;
  /** The edge's JSON log events. */
  events(): Record<string, unknown>[];
  event(name: string): Record<string, unknown>[];
}

/** Enrols a state dir in the fake's federation and starts a real edge process on it. */
export async function startEdge(fake: FakeCoordinator, dir: string, name: string, o: { args?: string[]; env?: NodeJS.ProcessEnv; seed?: number } = {}): Promise<EdgeUnderTest> {
  const stateDir = join(dir, name);
  const site = fake.enrolEdge(stateDir, name);
  const p = spawnCli(['edge', 'start', '--state-dir', stateDir, '--data', await dataFile(dir, o.seed ?? 1), ...(o.args ?? [])], o.env);
  const events = () =>
    p
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{"time"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { ...p, site, events, event: (n) => events().filter((e) => e.event === n) };
}

export function waitEvent(edge: EdgeUnderTest, name: string, match: (e: Record<string, unknown>) => boolean = () => true, timeoutMs = 30_000): Promise<Record<string, unknown>> {
  return waitFor(`${edge.site.site} to log ${name}`, () => edge.event(name).find(match), timeoutMs, 50);
}

/** What the fake has received from the edge of type T (the fake records every message). */
export function sent<T extends Message['type']>(fake: FakeCoordinator, type: T): MessageOf<T>[] {
  return fake.of(type);
}

export function secaggParams(n: number): SecAggRoundParams {
  return { mode: 'secagg', session: newSession(), bits: 16, range: 1, maxWeight: maxWeightFor(n, 16), noiseStddev: 0 };
}

/** A fit_ins for the test model (payload: the model). */
export function fitIns(experiment: string, round: number, extra: Partial<MessageOf<'fit_ins'>> = {}): { message: MessageOf<'fit_ins'>; payload: Uint8Array } {
  return {
    message: { type: 'fit_ins', experiment, round, modelVersion: VERSION, spec: SPEC, config: { epochs: 1, batchSize: 32, learningRate: 0.001, optimizer: 'adam', proxMu: 0, seed: 1 }, ...extra },
    payload: float32Bytes(PARAMS),
  };
}

export async function connected(fake: FakeCoordinator, edge: EdgeUnderTest): Promise<void> {
  await waitEvent(edge, 'connected');
  void fake;
}
