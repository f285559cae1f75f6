/**
 * The edge inference service clinicians' systems call (fastify):
 *   POST /v1/infer   JSON `{"input": [...]}`, a PNG body (Content-Type: image/png) or, with a case
 *                    store, a DICOM file (application/dicom: it becomes a case, preprocessed by
 *                    the serving model's input spec) →
 *                    `{probabilities, predictedClass, version, executionProvider, batchSize[, case]}`
 *   /v1/cases...     the case store and clinicians' labels (caseRoutes.ts), with a case store
 *   GET  /healthz    model version serving, provider, swaps, coordinator reachability
 *                    (offline autonomy: the last good model keeps serving), last refusal
 *   GET  /metrics    Prometheus text format
 * Requests are batched dynamically; a bad request gets a 4xx naming the problem and never
 * affects the others. Every route needs a bearer token (serviceTokens.ts): /v1/infer a clinician's,
 * /healthz and /metrics a monitor's or a clinician's (401 without or with a bad token, 403 for the
 * wrong role), unless `auth: 'none'`, which is refused off loopback. With `tls` it serves https;
 * plain HTTP off loopback needs `insecure: true`.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { DicomError, FedmedError, UsageError } from '../../shared/errors.js';
import { DEFAULT_BATCHING, DynamicBatcher, ModelChangedError, QueueFullError, type BatchingOptions } from './dynamicBatcher.js';
import { NoModelError, type HotSwapModel } from './hotSwapModel.js';
import { exampleFromJson, exampleFromPng, InferenceRequestError } from './inferenceRequest.js';
import { ServiceMetrics } from './serviceMetrics.js';
import { inferenceLimits, inferenceLimitsPlugin, inferenceServerOptions, type InferenceLimits } from './inferenceLimits.js';
import type { ServiceRole, ServiceTokens } from './serviceTokens.js';
import { CaseLabelError, CaseNotFoundError, type CaseInference, type CaseStore } from '../cases/caseStore.js';
import type { IngestedCase } from '../dicom/dicomIngest.js';
import { modelInput } from '../dicom/modelInput.js';
import { caseRoutes } from './caseRoutes.js';

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
  /** Bearer tokens the service accepts (re-read when their file changes). Required unless `auth: 'none'`. */
  tokens?: ServiceTokens;
  /** `'none'`: no authentication (loopback only: tests, benchmarks). */
  auth?: 'tokens' | 'none';
  /** Serve https with this certificate and key (PEM). */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Allow plain HTTP on an address other than loopback. */
  insecure?: boolean;
  /** HTTP limits (inferenceLimits.ts); anything not given has its default. */
  limits?: Partial<InferenceLimits>;
  /** The site's case store: DICOM inference requests become cases; the /v1/cases routes. */
  cases?: {
    store: CaseStore;
    ingest: (p10: Uint8Array) => Promise<IngestedCase>;
    /** After a clinician's label change. */
    onLabel: () => void;
    /** Largest DICOM body (default 64 MiB). */
    bodyLimitBytes?: number;
  };
}

export class ServiceConfigError extends UsageError {}

/** 127.0.0.0/8, ::1 and localhost. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}

/** Which roles may call each route. Routes not listed (404s) still need a valid token. */
const ROUTE_ROLES: Record<string, readonly ServiceRole[]> = {
  '/v1/infer': ['clinician'],
  '/healthz': ['clinician', 'monitor'],
  '/metrics': ['clinician', 'monitor'],
  '/v1/cases': ['clinician'],
  '/v1/cases/:id': ['clinician'],
  '/v1/cases/:id/label': ['clinician'],
  '/v1/cases/:id/input.png': ['clinician'],
  '/v1/cases/lookup': ['clinician'],
};

/** The token each request came with (its id and name), for the records it makes. */
const callers = new WeakMap<object, { id: string; name: string }>();

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
    case: { type: 'string' },
  },
};

export async function startInferenceService(o: InferenceServiceOptions): Promise<RunningInferenceService> {
  const host = o.host ?? '127.0.0.1';
  const loopback = isLoopbackHost(host);
  const auth = o.auth ?? 'tokens';
  if (auth === 'tokens' && !o.tokens) throw new ServiceConfigError('the inference service needs access tokens (tokens), or auth: "none" on loopback');
  if (auth === 'none' && !loopback) throw new ServiceConfigError(`the inference service runs without authentication only on loopback, not on ${host}`);
  if (!o.tls && !loopback && !o.insecure) throw new ServiceConfigError(`the inference service would serve plain HTTP on ${host}: give --serve-tls-cert and --serve-tls-key, or --serve-insecure to accept plain HTTP on the network`);
  const metrics = o.metrics ?? new ServiceMetrics();
  const batcher = new DynamicBatcher(o.model, { ...DEFAULT_BATCHING, ...o.batching });
  batcher.onBatch = (n) => metrics.batchSize.observe(n);
  const limits = inferenceLimits(o.limits);
  const { node, ...server } = inferenceServerOptions(limits);
  const app = Fastify({ logger: false, bodyLimit: o.bodyLimitBytes ?? 1024 * 1024, ...server, ...(o.tls ? { https: { cert: o.tls.cert, key: o.tls.key, minVersion: 'TLSv1.2' as const, ...node } } : { http: node }) }) as unknown as FastifyInstance;
  await app.register(inferenceLimitsPlugin, { limits });
  app.addContentTypeParser('image/png', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  if (o.cases) app.addContentTypeParser('application/dicom', { parseAs: 'buffer', bodyLimit: o.cases.bodyLimitBytes ?? 64 * 1024 * 1024 }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const status = err instanceof InferenceRequestError ? err.status : err instanceof CaseNotFoundError ? 404 : err instanceof CaseLabelError ? 400 : err instanceof DicomError ? 422 : err instanceof QueueFullError || err instanceof NoModelError || err instanceof ModelChangedError ? 503 : err.statusCode && err.statusCode < 500 ? err.statusCode : 500;
    const code = err instanceof FedmedError ? err.code : status === 503 ? 'OVERLOADED' : status < 500 ? 'BAD_REQUEST' : 'INTERNAL';
    void reply.code(status).send({ error: code, message: status < 500 || status === 503 ? err.message : `inference failed: ${err.message}` });
  });
  if (auth === 'tokens') {
    const tokens = o.tokens!;
    app.addHook('onRequest', async (req, reply) => {
      const c = tokens.check(req.headers.authorization);
      if (!c.ok) return reply.code(401).header('www-authenticate', 'Bearer realm="fedmed-edge"').send({ error: 'UNAUTHORIZED', message: c.reason });
      const roles = ROUTE_ROLES[req.routeOptions.url ?? ''];
      if (roles && !roles.includes(c.role)) return reply.code(403).send({ error: 'FORBIDDEN', message: `a ${c.role} token may not call ${req.method} ${req.routeOptions.url}; it needs a ${roles.join(' or ')} token` });
      callers.set(req, { id: c.id, name: c.name });
    });
  }
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
    let dicomCase: IngestedCase | null = null;
    if (type === 'application/json') example = exampleFromJson(req.body, model.inputShape);
    else if (type === 'image/png') example = exampleFromPng(req.body as Buffer, model.inputShape);
    else if (type === 'application/dicom' && o.cases) {
      dicomCase = await o.cases.ingest(req.body as Buffer);
      // (preprocessed for the model serving when it arrived; a swap to another input spec meanwhile: ask again)
      if (dicomCase.modelInput.hash !== modelInput(model.spec).hash) throw new ModelChangedError('the serving model changed while the DICOM was decoded; send it again');
      example = dicomCase.input;
    } else throw new InferenceRequestError(`unsupported Content-Type "${type}"; send application/json, image/png${o.cases ? ' or application/dicom' : ''}`, 415);
    const answer = await batcher.infer(example);
    const probabilities = Array.from(answer.probabilities);
    // Extreme inputs (finite, but far outside what the model was trained on) can overflow inside it: the request's fault, not the service's.
    if (!probabilities.every(Number.isFinite)) throw new InferenceRequestError('the model gives no finite answer for this input (values far outside its range)');
    let best = 0;
    for (let c = 1; c < probabilities.length; c++) if (probabilities[c] > probabilities[best]) best = c;
    const result = { probabilities, predictedClass: best, version: answer.model.versionId, executionProvider: answer.model.session.provider, batchSize: answer.batchSize };
    if (!dicomCase) return result;
    const kept: CaseInference = { version: result.version, provider: result.executionProvider, probabilities, predictedClass: best, at: new Date().toISOString() };
    o.cases!.store.setInference(dicomCase.id, kept);
    return { ...result, case: dicomCase.id };
  });

  if (o.cases) {
    const cases = o.cases;
    await app.register(caseRoutes, { cases: cases.store, classes: () => o.model.current?.classes, caller: (req) => callers.get(req) ?? null, onLabel: cases.onLabel });
  }

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

  await app.listen({ host, port: o.port ?? 8080 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  return {
    app,
    url: `${o.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`,
    metrics,
    batcher,
    close: () => app.close(),
  };
}
