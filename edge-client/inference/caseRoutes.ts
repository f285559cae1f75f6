/**
 * The case routes of the edge inference service (registered when the site has a case store):
 *   GET  /v1/cases?labelled=false&limit=50&before=ISO   newest first, no pixel data
 *   GET  /v1/cases/:id                                  one case, its label history, last answer
 *   GET  /v1/cases/:id/input.png                        the model input it was preprocessed to (a viewer's thumbnail)
 *   POST /v1/cases/lookup  {"sopInstanceUid": "1.2…"}   the case of an instance a clinician's viewer shows
 *                                                       (the UID is hashed with the site key, never kept)
 *   POST /v1/cases/:id/label  {"label": 1, "by": "dr.lee"}   set (or with null, clear) the label
 * Clinician tokens only (inferenceService.ts). Every label change is kept in the case store with
 * the token that made it, and the edge records it in its audit log.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { PNG } from 'pngjs';
import { CaseNotFoundError, type CaseStore } from '../cases/caseStore.js';

export interface CaseRoutesOptions {
  cases: CaseStore;
  /** Classes of the serving model (labels are class indices), when one serves. */
  classes: () => number | undefined;
  /** Who called (the token's id and name), for the record. */
  caller: (req: FastifyRequest) => { id: string; name: string } | null;
  /** After a label change (the edge records it in the audit log). */
  onLabel: () => void;
}

const ID = '^[0-9a-f]{32}$';

const register: FastifyPluginAsync<CaseRoutesOptions> = async (app: FastifyInstance, o) => {
  app.get<{ Querystring: { labelled?: 'true' | 'false'; limit?: number; before?: string } }>(
    '/v1/cases',
    { schema: { querystring: { type: 'object', additionalProperties: false, properties: { labelled: { enum: ['true', 'false'] }, limit: { type: 'integer', minimum: 1, maximum: 1000 }, before: { type: 'string', format: 'date-time' } } } } },
    async (req) => {
      const q = req.query;
      return { cases: o.cases.list({ labelled: q.labelled === undefined ? undefined : q.labelled === 'true', limit: q.limit ?? 100, before: q.before }), stats: o.cases.stats() };
    },
  );

  app.get<{ Params: { id: string } }>('/v1/cases/:id', { schema: { params: { type: 'object', properties: { id: { type: 'string', pattern: ID } } } } }, async (req) => {
    const c = o.cases.get(req.params.id);
    if (!c) throw new CaseNotFoundError(req.params.id);
    return { ...c, labelHistory: o.cases.labelHistory(c.id) };
  });

  app.get<{ Params: { id: string } }>('/v1/cases/:id/input.png', { schema: { params: { type: 'object', properties: { id: { type: 'string', pattern: ID } } } } }, async (req, reply) => {
    const c = o.cases.get(req.params.id);
    if (!c) throw new CaseNotFoundError(req.params.id);
    return reply.type('image/png').send(inputPng(o.cases.input(c.id), c.inputShape));
  });

  app.post<{ Body: { sopInstanceUid: string } }>(
    '/v1/cases/lookup',
    { schema: { body: { type: 'object', additionalProperties: false, required: ['sopInstanceUid'], properties: { sopInstanceUid: { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)*$', maxLength: 64 } } } } },
    async (req) => {
      const id = o.cases.pseudonyms.pseudonym('sop', req.body.sopInstanceUid);
      const c = o.cases.get(id);
      if (!c) throw new CaseNotFoundError(id);
      return { ...c, labelHistory: o.cases.labelHistory(c.id) };
    },
  );

  app.post<{ Params: { id: string }; Body: { label: number | null; by: string } }>(
    '/v1/cases/:id/label',
    {
      schema: {
        params: { type: 'object', properties: { id: { type: 'string', pattern: ID } } },
        body: { type: 'object', additionalProperties: false, required: ['label', 'by'], properties: { label: { type: ['integer', 'null'], minimum: 0, maximum: 1_000_000 }, by: { type: 'string', minLength: 1, maxLength: 200 } } },
      },
    },
    async (req) => {
      // (CaseNotFoundError answers 404 and CaseLabelError 400: the service's error handler)
      const change = o.cases.label(req.params.id, req.body.label, req.body.by, { numClasses: o.classes(), via: 'api', token: o.caller(req)?.id ?? null });
      o.onLabel();
      return { case: o.cases.get(req.params.id), change };
    },
  );
};

/** A [h, w, c] input in [0, 1] as an 8-bit PNG (grey or RGB). */
function inputPng(x: Float32Array, shape: number[]): Buffer {
  const [h, w, c] = shape.length === 3 ? shape : [shape[0], shape[1] ?? 1, 1];
  const png = new PNG({ width: w, height: h });
  for (let i = 0; i < h * w; i++) {
    for (let k = 0; k < 3; k++) png.data[i * 4 + k] = Math.round(255 * Math.min(1, Math.max(0, x[i * c + (c === 3 ? k : 0)])));
    png.data[i * 4 + 3] = 255;
  }
  return PNG.sync.write(png);
}

export const caseRoutes = register;
