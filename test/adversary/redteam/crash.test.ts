/**
 * Red team: messages that pass the wire schema but make the edge throw outside any catch in an
 * async handler (EdgeClient.fit / EdgeClient.evaluate are started with `void`): on Node ≥ 15
 * an unhandled rejection ends the process — a coordinator can take a hospital's edge (and its
 * inference service) down with one message.
 *
 * A passing test = the attack failed (defended); a failing test = a reproduced hole.
 */
import assert from 'node:assert/strict';
import { zooModel } from '../../../models/zoo.js';
import { initParams } from '../../../shared/model/initParams.js';
import { float32Bytes } from '../../../shared/model/modelHash.js';
import type { Message } from '../../../shared/protocol/messages.js';
import { defaultPolicy, writeSitePolicy } from '../../../edge-client/policy/sitePolicy.js';
import { FakeCoordinator } from '../../helpers/fakeCoordinator.js';
import { stopProc } from '../../helpers/federation.js';
import { makeTempDir } from '../../helpers/paths.js';
import { fitIns, settled, startEdge, VERSION, waitEvent, type EdgeUnderTest } from '../harness.js';

const TABULAR = zooModel('mlp-tabular', { numFeatures: 13 });

describe('red team: one message that kills the edge process (real edge processes)', function () {
  this.timeout(180_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  const edges: EdgeUnderTest[] = [];
  before(() => fake.start());
  after(async () => {
    for (const e of edges) await stopProc(e);
    await fake.close();
    t.cleanup();
  });

  /** Sends `m` to a fresh edge; asserts it is still alive afterwards and still trains. */
  async function survives(name: string, m: Message, payload: Uint8Array | undefined, o: Parameters<typeof startEdge>[3] = {}): Promise<void> {
    const edge = await startEdge(fake, t.dir, name, o);
    edges.push(edge);
    await waitEvent(edge, 'connected');
    await fake.sendTo(name, m, payload);
    const died = await Promise.race([edge.exited.then((c) => ({ code: c })), new Promise<null>((r) => setTimeout(() => r(null), 4000))]);
    assert.equal(died, null, `HOLE: the edge died (exit ${died?.code}) on ${m.type}: ${edge.output().slice(-1200)}`);
    const next = fitIns(`after-${name}`, 1);
    await fake.sendTo(name, next.message, next.payload);
    await settled(edge, `after-${name}`);
  }

  it('eval_ins whose (valid) spec does not fit the local data', async () => {
    await survives('evalspec', { type: 'eval_ins', experiment: 'exp-shape', round: 1, modelVersion: VERSION, spec: TABULAR }, float32Bytes(initParams(TABULAR, 1)));
  });

  it('a CKKS fit_ins with a spec that does not parse, to a site that requires approval', async () => {
    const p = defaultPolicy();
    p.experiments.approval = 'required';
    await survives('ckksspec', { type: 'fit_ins', experiment: 'exp-ckks', round: 1, modelVersion: VERSION, spec: {}, config: { epochs: 1, batchSize: 32, learningRate: 0.001, optimizer: 'adam', proxMu: 0, seed: 1 }, ckks: { mode: 'ckks', keySet: '0'.repeat(32), range: 1, maxWeight: 1 } }, undefined, { beforeStart: (dir) => writeSitePolicy(dir, p) });
  });

  it('fit_ins for experiment "hasOwnProperty"', async () => {
    const { message, payload } = fitIns('hasOwnProperty', 1);
    await survives('protofit', message, payload);
  });
});
