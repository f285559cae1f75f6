import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import { zooModel } from '../../../models/zoo.js';
import { HotSwapModel } from '../../../edge-client/inference/hotSwapModel.js';
import { startInferenceService, type RunningInferenceService } from '../../../edge-client/inference/inferenceService.js';
import { initParams } from '../../../shared/model/initParams.js';
import { modelVersionId } from '../../../shared/model/modelHash.js';
import { SeededRng } from '../../../shared/random/seededRng.js';

interface Reply {
  probabilities: number[];
  version: string;
  batchSize: number;
  executionProvider: string;
}

describe('edge inference service: requests, errors, dynamic batching, swaps (fastify on loopback)', function () {
  this.timeout(60_000);
  const spec = zooModel('cnn-28', { numClasses: 2 });
  const p1 = initParams(spec, 1);
  const p2 = initParams(spec, 2);
  const id1 = modelVersionId(spec, p1);
  const id2 = modelVersionId(spec, p2);
  const model = new HotSwapModel({ providers: ['cpu'], intraOpNumThreads: 1 });
  let svc: RunningInferenceService;
  const rng = new SeededRng(5);
  const pixels = Array.from({ length: 784 }, () => Math.floor(rng.next() * 256));
  const input = pixels.map((v) => v / 255);

  const post = (body: string | Buffer, type = 'application/json'): Promise<Response> => fetch(`${svc.url}/v1/infer`, { method: 'POST', headers: { 'content-type': type }, body });

  before(async () => {
    await model.swapTo(id1, spec, p1);
    svc = await startInferenceService({ model, port: 0, batching: { maxBatch: 16, maxWaitMs: 2 }, bodyLimitBytes: 64 * 1024, auth: 'none' });
  });
  after(async () => {
    await svc.close();
    await model.close();
  });

  it('answers a JSON tensor (flat or nested) and the same image as PNG identically, tagged with the version', async () => {
    const flat = (await (await post(JSON.stringify({ input }))).json()) as Reply;
    const nested = [];
    for (let r = 0; r < 28; r++) nested.push(input.slice(r * 28, r * 28 + 28).map((v) => [v]));
    const fromNested = (await (await post(JSON.stringify({ input: nested }))).json()) as Reply;
    const png = new PNG({ width: 28, height: 28 });
    pixels.forEach((v, i) => png.data.set([v, v, v, 255], i * 4));
    const res = await post(PNG.sync.write(png), 'image/png');
    assert.equal(res.status, 200);
    const fromPng = (await res.json()) as Reply;
    assert.equal(flat.version, id1);
    assert.equal(flat.executionProvider, 'cpu');
    for (const r of [fromNested, fromPng]) for (let c = 0; c < 2; c++) assert.ok(Math.abs(r.probabilities[c] - flat.probabilities[c]) < 1e-5);
  });

  it('answers malformed requests with a 4xx naming the problem', async () => {
    const cases: [Promise<Response>, number, RegExp][] = [
      [post(JSON.stringify({ input: input.slice(1) })), 422, /783 values.*shape \[28, 28, 1\]/],
      [post(JSON.stringify({ input: [...input.slice(1), 'x'] })), 422, /not a finite 32-bit number/],
      [post(JSON.stringify({ pixels: input })), 400, /"input"/],
      [post('{"input": [1, 2'), 400, /JSON/i],
      [post(Buffer.from('GIF89a....'), 'image/png'), 422, /not a PNG/],
      [post(PNG.sync.write(new PNG({ width: 64, height: 64 })), 'image/png'), 422, /64x64; the model takes 28x28/],
      [post('hello', 'text/plain'), 415, /Content-Type|unsupported/i],
      [post(JSON.stringify({ input: Array(20000).fill(0.5) })), 413, /too large|body/i],
    ];
    for (const [res, status, message] of cases) {
      const r = await res;
      const body = (await r.json()) as { message: string };
      assert.equal(r.status, status, body.message);
      assert.match(body.message, message);
    }
    assert.equal((await post(JSON.stringify({ input }))).status, 200, 'the service still answers');
  });

  it('batches concurrent requests; every answer equals the single-request answer', async () => {
    const single = ((await (await post(JSON.stringify({ input }))).json()) as Reply).probabilities;
    const replies = await Promise.all(Array.from({ length: 64 }, () => post(JSON.stringify({ input })).then((r) => r.json() as Promise<Reply>)));
    assert.ok(Math.max(...replies.map((r) => r.batchSize)) > 1, 'some requests ran together');
    for (const r of replies) for (let c = 0; c < 2; c++) assert.ok(Math.abs(r.probabilities[c] - single[c]) < 1e-5);
  });

  it('a version whose ONNX model does not load is refused and the current one keeps serving', async () => {
    const bad = initParams(spec, 3);
    bad[0] = NaN;
    await assert.rejects(model.swapTo(modelVersionId(spec, bad), spec, bad), /does not load/);
    assert.equal(model.current!.versionId, id1);
    assert.match(model.lastRefusal!.reason, /not finite/);
    assert.equal((await post(JSON.stringify({ input }))).status, 200);
  });

  it('requests in flight during a swap all succeed, on the old or the new version', async () => {
    const pending = Array.from({ length: 200 }, () => post(JSON.stringify({ input })).then(async (r) => ({ status: r.status, body: (await r.json()) as Reply })));
    await model.swapTo(id2, spec, p2);
    const replies = await Promise.all(pending);
    assert.ok(replies.every((r) => r.status === 200));
    assert.ok(replies.every((r) => r.body.version === id1 || r.body.version === id2));
    const after = (await (await post(JSON.stringify({ input }))).json()) as Reply;
    assert.equal(after.version, id2);
    const health = (await (await fetch(`${svc.url}/healthz`)).json()) as { version: string; swaps: number; coordinator: { state: string } };
    assert.equal(health.version, id2);
    assert.equal(health.swaps, 1);
    assert.equal(health.coordinator.state, 'not configured');
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    assert.match(metrics, /fedmed_infer_requests_total\{status="200"\} \d+/);
    assert.match(metrics, /fedmed_infer_requests_total\{status="422"\} \d+/);
  });

  it('requests queued across a swap to a model of another input shape get a 503 to retry, never a 500', async () => {
    const spec32 = zooModel('cnn-28', { numClasses: 2, imageSize: 32 });
    const p32 = initParams(spec32, 1);
    const pending = Array.from({ length: 200 }, () => post(JSON.stringify({ input })).then((r) => r.status));
    await model.swapTo(modelVersionId(spec32, p32), spec32, p32);
    const statuses = await Promise.all(pending);
    assert.ok(statuses.every((s) => s === 200 || s === 503 || s === 422), `statuses ${[...new Set(statuses)].join(', ')}`);
    const r = await post(JSON.stringify({ input }));
    assert.equal(r.status, 422, 'the new model takes 32x32 inputs');
  });
});
