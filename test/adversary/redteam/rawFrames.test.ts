/**
 * Red team: frames the coordinator's own MessageChannel would never send (it validates before
 * sending) written raw onto the socket: numbers that JSON parses to Infinity (1e400) for z, C,
 * countNoiseStddev; a round past the schema maximum; duplicate keys (JSON.parse keeps the last).
 * The edge must release nothing for them, and keep running.
 *
 * A passing test = the attack failed (defended); a failing test = a reproduced hole.
 */
import assert from 'node:assert/strict';
import { float32Bytes } from '../../../shared/model/modelHash.js';
import { FakeCoordinator } from '../../helpers/fakeCoordinator.js';
import { stopProc, waitFor } from '../../helpers/federation.js';
import { makeTempDir } from '../../helpers/paths.js';
import { fitIns, PARAMS, settled, SPEC, startEdge, VERSION, waitEvent, type EdgeUnderTest } from '../harness.js';

function rawFrame(json: string, payload: Uint8Array): Buffer {
  const text = json + ' '.repeat((4 - ((4 + Buffer.byteLength(json)) % 4)) % 4);
  const head = Buffer.from(text, 'utf8');
  const f = Buffer.alloc(4 + head.length + payload.byteLength);
  f.writeUInt32LE(head.length, 0);
  head.copy(f, 4);
  f.set(payload, 4 + head.length);
  return f;
}

const cfg = '"config":{"epochs":1,"batchSize":32,"learningRate":0.001,"optimizer":"adam","proxMu":0,"seed":1}';
const fit = (experiment: string, round: string, privacy: string) => `{"type":"fit_ins","experiment":"${experiment}","round":${round},"modelVersion":"${VERSION}","spec":${JSON.stringify(SPEC)},${cfg}${privacy ? `,"privacy":${privacy}` : ''}}`;

describe('red team: raw frames with values JSON.parse turns into Infinity (real edge process with a privacy budget)', function () {
  this.timeout(180_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let edge: EdgeUnderTest;
  before(async () => {
    await fake.start();
    edge = await startEdge(fake, t.dir, 'hosp', { args: ['--privacy-budget', '1000'] });
    await waitEvent(edge, 'connected');
  });
  after(async () => {
    if (process.env.FEDMED_TEST_DEBUG) console.log(edge.output().slice(-6000));
    await stopProc(edge);
    await fake.close();
    t.cleanup();
  });

  const cases: [string, string][] = [
    ['z = 1e400', fit('raw-z', '1', '{"mode":"local","clip":1,"noiseMultiplier":1e400,"noiseStddev":0,"samplingRate":0.1,"delta":1e-5}')],
    ['C = 1e400', fit('raw-c', '1', '{"mode":"local","clip":1e400,"noiseMultiplier":2,"noiseStddev":0,"samplingRate":0.1,"delta":1e-5}')],
    ['countNoiseStddev = 1e400', fit('raw-bit', '1', '{"mode":"local","clip":1,"noiseMultiplier":2,"noiseStddev":0,"samplingRate":0.1,"delta":1e-5,"countNoiseStddev":1e400}')],
    ['round 1000001', fit('raw-round', '1000001', '{"mode":"local","clip":1,"noiseMultiplier":2,"noiseStddev":0,"samplingRate":0.1,"delta":1e-5}')],
    ['duplicate "privacy" key (the last, none-like, wins?)', fit('raw-dup', '1', '{"mode":"local","clip":1,"noiseMultiplier":2,"noiseStddev":0,"samplingRate":0.1,"delta":1e-5},"privacy":{"mode":"central","clip":1,"noiseMultiplier":2,"noiseStddev":0,"samplingRate":0.1,"delta":1e-5}')],
  ];

  for (const [name, json] of cases) {
    it(`${name}: nothing released, the edge keeps running`, async () => {
      const experiment = /"experiment":"([^"]+)"/.exec(json)![1];
      await waitFor('a live connection', () => fake.channels.get('hosp') && !fake.channels.get('hosp')!.isClosed, 60_000, 50);
      fake.socket!.send(rawFrame(json, float32Bytes(PARAMS)));
      await new Promise((r) => setTimeout(r, 3000));
      assert.equal(edge.child.exitCode, null, `HOLE: the edge died: ${edge.output().slice(-800)}`);
      assert.equal(fake.of('fit_res', 'hosp').filter((m) => m.experiment === experiment).length, 0, `HOLE: released for ${name}`);
    });
  }

  it('still trains afterwards', async () => {
    await waitFor('a live connection', () => fake.channels.get('hosp') && !fake.channels.get('hosp')!.isClosed, 60_000, 50);
    const { message, payload } = fitIns('raw-after', 1, { privacy: { mode: 'local', clip: 1, noiseMultiplier: 2, noiseStddev: 0, samplingRate: 0.1, delta: 1e-5 } });
    await fake.sendTo('hosp', message, payload);
    await settled(edge, 'raw-after');
    void waitEvent;
  });
});
