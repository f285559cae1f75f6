/**
 * The audit entries of a coordinator start: `coordinator.started` (its key, the federation, the
 * log's integrity), `audit.integrity_broken` when the log did not verify, the admin token the
 * first start created, and the rounds a previous run left open (aborted at start).
 */
import type { CoordinatorFederation } from '../federation/coordinatorFederation.js';
import { sha256Hex } from '../siteRegistry.js';
import type { CoordinatorStore } from '../store/coordinatorStore.js';
import type { ApiTokenRecord, RoundRecord } from '../store/storeSchema.js';
import type { AuditLog } from '../../shared/audit/auditLog.js';

const COORDINATOR = { kind: 'coordinator' } as const;

export function recordCoordinatorStart(audit: AuditLog, s: { store: CoordinatorStore; federation: CoordinatorFederation; tokensCreated: ApiTokenRecord[]; roundsAborted: RoundRecord[] }): void {
  const integrity = audit.integrity();
  void audit.append({
    actor: COORDINATOR,
    action: 'coordinator.started',
    subject: 'coordinator',
    details: { key: `sha256:${sha256Hex(s.federation.keys.current.publicKeyB64).slice(0, 16)}`, federation: s.federation.adminFingerprint, certified: !!s.federation.certificate, auditEntries: integrity.entries, auditIntact: integrity.ok },
  });
  if (!integrity.ok) void audit.append({ actor: COORDINATOR, action: 'audit.integrity_broken', subject: 'audit.jsonl', details: { brokenAt: integrity.brokenAt ?? null, line: integrity.line ?? null, reason: integrity.reason ?? null } });
  for (const t of s.tokensCreated) void audit.append({ actor: COORDINATOR, action: 'token.created', subject: t.id, details: { role: t.role, ...(t.name ? { name: t.name } : {}) } });
  for (const r of s.roundsAborted) void audit.append({ actor: COORDINATOR, action: 'round.aborted', subject: r.experiment, details: { round: r.round, reason: r.reason?.slice(0, 300) ?? null } });
}
