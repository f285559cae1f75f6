/**
 * The edge inference service clinicians' systems call (fastify):
 *   POST /v1/infer   JSON `{"input": [...]}` or a PNG body (Content-Type: image/png) →
 *                    `{probabilities, predictedClass, version, executionProvider, batchSize}`
 *   GET  /healthz    model version serving, provider, swaps, coordinator reachability
 *                    (offline autonomy: the last good model keeps serving), last refusal
 *   GET  /metrics    Prometheus text format
 * Requests are batched dynamically; a bad request gets a 4xx naming the problem and never
 * affects the others.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { FedmedError } from '../../shared/errors.js';
import { DEFAULT_BATCHING, DynamicBatcher, ModelChangedError, QueueFullError, type BatchingOptions } from './dynamicBatcher.js';
import { NoModelError, type HotSwapModel } from './hotSwapModel.js';
import { exampleFromJson, exampleFromPng, InferenceRequestError } from './inferenceRequest.js';
import { ServiceMetrics } from './serviceMetrics.js';

export interface InferenceServiceOptions {
  model: HotSwapModel;
  host?: string;
  port?: number;
  batching?: Partial<BatchingOptions>;
  /** Largest request body in bytes (default 1 MiB). */
  bodyLimitBytes?: number;
  metrics?: ServiceMetrics;
  /** Coordinator link state for /healthz (absent: serving stand-alone). */
  coordinator?: () => { connected: boolean; since: string | null; url: string };
}

export interface RunningInferenceService {
  app: FastifyInstance;
  url: string;
  metrics: ServiceMetrics;
  batcher: DynamicBatcher;
  close(): Promise<void>;
}

const inferResponse = {
  type: 'object',
  properties: {
    probabilities: { type: 'array', items: { type: 'number' } },
    predictedClass: { type: 'integer' },
    version: { type: 'string' },
    executionProvider: { type: 'string' },
    batchSize: { type: 'integer' },
  },
};

export async function startInferenceService(o: InferenceServiceOptions): Promise<RunningInferenceService> {
  const metrics = o.metrics ?? new ServiceMetrics();
  const batcher = new DynamicBatcher(o.model, { ...DEFAULT_BATCHING, ...o.batching });
  batcher.onBatch = (n) => metrics.batchSize.observe(n);
  const app = Fastify({ logger: false, bodyLimit: o.bodyLimitBytes ?? 1024 * 1024, keepAliveTimeout: 30_000 });
  app.addContentTypeParser('image/png', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const status = err instanceof InferenceRequestError ? err.status : err instanceof QueueFullError || err instanceof NoModelError || err instanceof ModelChangedError ? 503 : err.statusCode && err.statusCode < 500 ? err.statusCode : 500;
    const code = err instanceof FedmedError ? err.code : status === 503 ? 'OVERLOADED' : status < 500 ? 'BAD_REQUEST' : 'INTERNAL';
    void reply.code(status).send({ error: code, message: status < 500 || status === 503 ? err.message : `inference failed: ${err.message}` });
  });
  app.addHook('onResponse', async (req, reply) => {
    if (req.routeOptions.url !== '/v1/infer') return;
    metrics.requests.inc({ status: String(reply.statusCode) });
    metrics.latency.observe(reply.elapsedTime / 1000);
  });

  app.post('/v1/infer', { schema: { response: { 200: inferResponse } } }, async (req) => {
    const model = o.model.current;
    if (!model) throw new NoModelError();
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim();
    let example: Float32Array;
    if (type === 'application/json') example = exampleFromJson(req.body, model.inputShape);
    else if (type === 'image/png') example = exampleFromPng(req.body as Buffer, model.inputShape);
    else throw new InferenceRequestError(`unsupported Content-Type "${type}"; send application/json or image/png`, 415);
    const answer = await batcher.infer(example);
    const probabilities = Array.from(answer.probabilities);
    let best = 0;
    for (let c = 1; c < probabilities.length; c++) if (probabilities[c] > probabilities[best]) best = c;
    return { probabilities, predictedClass: best, version: answer.model.versionId, executionProvider: answer.model.session.provider, batchSize: answer.batchSize };
  });

  app.get('/healthz', async (_req, reply) => {
    const m = o.model.current;
    const link = o.coordinator?.();
    const body = {
      ok: m !== null,
      version: m?.versionId ?? null,
      executionProvider: m?.session.provider ?? null,
      providerAttempts: m?.session.attempts ?? [],
      loadedAt: m?.loadedAt ?? null,
      swaps: o.model.swaps,
      queued: batcher.queued,
      coordinator: link ? { ...link, state: link.connected ? 'connected' : 'unreachable' } : { state: 'not configured' },
      // Offline autonomy: the coordinator is out of reach but the last good model serves.
      offline: link ? !link.connected : true,
      lastRefusal: o.model.lastRefusal,
    };
    return reply.code(m ? 200 : 503).send(body);
  });

  app.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));

  await app.listen({ host: o.host ?? '127.0.0.1', port: o.port ?? 8080 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  return {
    app,
    url: `http://${o.host ?? '127.0.0.1'}:${port}`,
    metrics,
    batcher,
    close: () => app.close(),
  };
}
