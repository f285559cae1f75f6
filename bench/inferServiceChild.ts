/**
 * Child process of the inference-service benchmark: serves cnn-28 through the real inference
 * service (HotSwapModel + dynamic batching + fastify) on the port given, and hot-swaps between
 * two versions whenever the parent sends "swap" (answering "swapped").
 *   node dist/bench/inferServiceChild.js PORT MAX_BATCH MAX_WAIT_MS
 */
import { zooModel } from '../models/zoo.js';
import { HotSwapModel } from '../edge-client/inference/hotSwapModel.js';
import { startInferenceService } from '../edge-client/inference/inferenceService.js';
import { initParams } from '../shared/model/initParams.js';
import { modelVersionId } from '../shared/model/modelHash.js';

const [port, maxBatch, maxWaitMs] = process.argv.slice(2).map(Number);
const spec = zooModel('cnn-28', { numClasses: 2 });
const versions = [initParams(spec, 1), initParams(spec, 2)];
const model = new HotSwapModel({ providers: ['cpu'], intraOpNumThreads: 1 });
await model.swapTo(modelVersionId(spec, versions[0]), spec, versions[0]);
const service = await startInferenceService({ model, port, batching: { maxBatch, maxWaitMs } });
let next = 1;
process.on('message', (m) => {
  if (m !== 'swap') return;
  const p = versions[next];
  next = 1 - next;
  void model.swapTo(modelVersionId(spec, p), spec, p).then(() => process.send!('swapped'));
});
process.on('disconnect', () => void service.close().then(() => process.exit(0)));
process.send!('ready');
