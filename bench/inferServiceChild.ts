/**
 * Child process of the inference-service benchmark: serves cnn-28 through the real inference
 * service (HotSwapModel + dynamic batching + fastify) on the port given, and hot-swaps between
 * two versions whenever the parent sends "swap" (answering "swapped"); it says "ready:PORT" once listening. Given a state dir, a
 * certificate and a key, it serves https and requires the state dir's access tokens (as
 * `fedmed edge start --serve-tls-cert` does); otherwise plain HTTP without authentication.
 *   node dist/bench/inferServiceChild.js PORT MAX_BATCH MAX_WAIT_MS [STATE_DIR CERT KEY]
 */
import { readFileSync } from 'node:fs';
import { zooModel } from '../models/zoo.js';
import { HotSwapModel } from '../edge-client/inference/hotSwapModel.js';
import { startInferenceService } from '../edge-client/inference/inferenceService.js';
import { ServiceTokens } from '../edge-client/inference/serviceTokens.js';
import { initParams } from '../shared/model/initParams.js';
import { modelVersionId } from '../shared/model/modelHash.js';

const [port, maxBatch, maxWaitMs] = process.argv.slice(2, 5).map(Number);
const [stateDir, cert, key] = process.argv.slice(5);
const spec = zooModel('cnn-28', { numClasses: 2 });
const versions = [initParams(spec, 1), initParams(spec, 2)];
const model = new HotSwapModel({ providers: ['cpu'], intraOpNumThreads: 1 });
await model.swapTo(modelVersionId(spec, versions[0]), spec, versions[0]);
const security = stateDir ? { tokens: ServiceTokens.forStateDir(stateDir), tls: { cert: readFileSync(cert), key: readFileSync(key) } } : { auth: 'none' as const };
const service = await startInferenceService({ model, port, batching: { maxBatch, maxWaitMs }, ...security });
let next = 1;
process.on('message', (m) => {
  if (m !== 'swap') return;
  const p = versions[next];
  next = 1 - next;
  void model.swapTo(modelVersionId(spec, p), spec, p).then(() => process.send!('swapped'));
});
process.on('disconnect', () => void service.close().then(() => process.exit(0)));
// The port it got (PORT 0: any free one), so runs never collide with other listeners.
process.send!(`ready:${new URL(service.url).port}`);
