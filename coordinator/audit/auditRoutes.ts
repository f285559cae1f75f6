/**
 * GET /v1/audit?limit=N (admin only; N in 1..1000, default 100): the last N entries of the audit
 * log, oldest first, and the chain's integrity:
 *   { entries: [...], integrity: { ok, entries, brokenAt?, line?, reason?, head, message, checkedAt } }
 * `entries` in integrity counts the log's lines; `head` is the hash of the last verified entry.
 * A line that does not parse appears as `{ line, unparseable }`. The file is re-verified first if
 * something other than this coordinator changed it.
 */
import type { FastifyInstance } from 'fastify';
import type { ApiTokens } from '../apiTokens.js';
import { roleGuard } from '../api/apiRoutes.js';
import { AUDIT_TAIL, type AuditLog } from '../../shared/audit/auditLog.js';

export const AUDIT_DEFAULT_LIMIT = 100;

export function registerAuditRoutes(app: FastifyInstance, d: { tokens: ApiTokens; audit: AuditLog }): void {
  app.get<{ Querystring: { limit?: string } }>(
    '/v1/audit',
    {
      preHandler: roleGuard(d.tokens, ['admin']),
      schema: {
        description: 'The tail of the hash-chained audit log and whether the chain verifies (admin)',
        security: [{ bearer: [] }],
        querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'string', pattern: '^[0-9]{1,7}$' } } },
      },
    },
    async (req, reply) => {
      const limit = req.query.limit === undefined ? AUDIT_DEFAULT_LIMIT : Number(req.query.limit);
      if (limit < 1 || limit > AUDIT_TAIL) return reply.code(400).send({ error: 'invalid request', message: `limit must be 1..${AUDIT_TAIL} (got ${limit}); for the whole log run "fedmed audit show --data-dir DIR" on the coordinator's machine` });
      await d.audit.recheck();
      return { entries: d.audit.entries(limit), integrity: d.audit.integrity() };
    },
  );
}
