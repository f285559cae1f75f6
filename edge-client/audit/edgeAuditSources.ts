/**
 * What goes into an edge's audit log (STATE_DIR/audit.jsonl, shared/audit/auditLog.ts), and who
 * is named as having done it. A layer over the edge's own event stream — the structured events
 * the federation client, the OTA applier, the site rules and the edge node already log — so that
 * nothing in the round, policy, ledger or OTA code calls the audit log itself:
 *
 *   event (edge log)              audit action                       actor
 *   connected (new certificate)   coordinator_certificate.accepted   coordinator
 *   coordinator_refused           coordinator_certificate.refused    coordinator
 *   revocations_updated/_refused  revocations.accepted/.refused      coordinator
 *   policy_changed / _invalid     policy.changed / policy.invalid    operator
 *   fit_started                   round.joined (the site policy approved the experiment's round)  edge
 *   fit_refused                   privacy.refused | experiment.approval_pending |
 *                                 experiment.refused | round.refused (by kind)   edge
 *   evaluate_refused              evaluation.refused                 edge
 *   privacy_charged               privacy.charged                    edge
 *   update_sent                   round.update_sent                  edge
 *   fit_failed, round_cancelled   round.failed, round.cancelled      edge / coordinator
 *   secagg_refused                secagg.refused                     edge
 *   ota_offered                   ota.offered                        coordinator
 *   ota_active / _held / _refused ota.applied / ota.held / ota.refused   edge
 *   ota_rolled_back / _activated_by_hand   ota.rolled_back / ota.activated   operator
 *   model_swapped                 model.swapped (inference service)  edge
 *   stopped (revoked, impostor)   federation.stopped                 edge
 *   case_received (new case)      case.received (pseudonym, source kind, modality)   edge
 *   case_labelled                 case.labelled (label, previous, labeller)   the token | operator (CLI)
 *   cases_deleted                 cases.deleted (count, before)      operator
 * and, from the client itself, `edge.started` (with the log's integrity), `audit.integrity_broken`
 * when the log did not verify, and `edge.stopped` at shutdown.
 *
 * Details are identifiers, counts, hashes and the refusal texts the site sends the coordinator
 * anyway: never patient data, keys or tokens, and never the text of a local training error
 * (which may describe the local data).
 */
import { cappedDetails, type AuditActor, type AuditDetails } from '../../shared/audit/auditChain.js';
import type { AuditIntegrity, AuditLog, AuditRecord } from '../../shared/audit/auditLog.js';

const EDGE: AuditActor = { kind: 'edge' };
const COORDINATOR: AuditActor = { kind: 'coordinator' };
const OPERATOR: AuditActor = { kind: 'operator' };

type Detail = Record<string, unknown>;

const FIT_REFUSALS: Record<string, string> = { privacy_budget: 'privacy.refused', approval_pending: 'experiment.approval_pending', experiment_rejected: 'experiment.refused', policy: 'round.refused' };

export class EdgeAuditSources {
  /** The last coordinator certificate recorded as accepted, and the last refusal (repeats are not recorded again). */
  private certificate: string | null = null;
  private lastRefusal: string | null = null;
  private lastOffer: string | null = null;

  constructor(private readonly audit: AuditLog) {
    for (const e of audit.entries(1000)) {
      if ('action' in e && e.action === 'coordinator_certificate.accepted') this.certificate = e.subject;
    }
  }

  /** The edge's start: `edge.started` (the log's integrity), and `audit.integrity_broken` when the log did not verify. */
  started(site: string, integrity: AuditIntegrity): void {
    void this.audit.append({ actor: EDGE, action: 'edge.started', subject: site, details: { auditEntries: integrity.entries, auditIntact: integrity.ok } });
    if (!integrity.ok) void this.audit.append({ actor: EDGE, action: 'audit.integrity_broken', subject: 'audit.jsonl', details: { brokenAt: integrity.brokenAt ?? null, line: integrity.line ?? null, reason: integrity.reason?.slice(0, 300) ?? null } });
  }

  /** The edge's shutdown. */
  stopping(site: string): void {
    void this.audit.append({ actor: EDGE, action: 'edge.stopped', subject: site, details: {} });
  }

  /** Takes one event of the edge's log; appends its audit entry if it is a state change. */
  observe(event: string, detail: Detail = {}): void {
    let r: AuditRecord | null;
    try {
      r = this.fromEvent(event, detail);
    } catch {
      r = null;
    }
    if (r) void this.audit.append({ ...r, details: cappedDetails(r.details ?? {}) });
  }

  private fromEvent(event: string, d: Detail): AuditRecord | null {
    const round = (): AuditDetails => ({ experiment: str(d.experiment), round: num(d.round) });
    switch (event) {
      case 'connected': {
        const serial = str(d.certificate);
        if (serial === this.certificate) return null;
        this.certificate = serial;
        this.lastRefusal = null;
        return { actor: COORDINATOR, action: 'coordinator_certificate.accepted', subject: serial, details: { coordinator: str(d.coordinator) } };
      }
      case 'coordinator_refused': {
        const reason = str(d.reason, 300);
        if (reason === this.lastRefusal) return null;
        this.lastRefusal = reason;
        return { actor: COORDINATOR, action: 'coordinator_certificate.refused', subject: 'coordinator', details: { reason } };
      }
      case 'revocations_updated':
        return { actor: COORDINATOR, action: 'revocations.accepted', subject: 'revocation-list', details: { sequence: num(d.sequence) } };
      case 'revocations_refused':
        return { actor: COORDINATOR, action: 'revocations.refused', subject: 'revocation-list', details: { held: num(d.held), reason: str(d.reason, 300) } };
      case 'policy_changed':
        return { actor: OPERATOR, action: 'policy.changed', subject: str(d.to), details: { from: str(d.from), to: str(d.to) } };
      case 'policy_invalid':
        return { actor: OPERATOR, action: 'policy.invalid', subject: 'policy.json', details: { reason: str(d.reason, 300) } };
      case 'fit_started':
        return { actor: EDGE, action: 'round.joined', subject: str(d.experiment), details: round() };
      case 'fit_refused':
        return { actor: EDGE, action: FIT_REFUSALS[str(d.kind)] ?? 'round.refused', subject: str(d.experiment), details: { ...round(), kind: str(d.kind), reason: str(d.reason, 300) } };
      case 'evaluate_refused':
        return { actor: EDGE, action: 'evaluation.refused', subject: str(d.experiment), details: { ...round(), kind: str(d.kind), reason: str(d.reason, 300) } };
      case 'privacy_charged':
        return { actor: EDGE, action: 'privacy.charged', subject: str(d.experiment), details: { ...round(), mechanisms: num(d.mechanisms), spent: num(d.spent), experimentSpent: num(d.experimentSpent), delta: num(d.delta) } };
      case 'update_sent':
        return { actor: EDGE, action: 'round.update_sent', subject: str(d.experiment), details: { ...round(), numExamples: num(d.numExamples), masked: d.masked === true } };
      case 'fit_failed':
        return { actor: EDGE, action: 'round.failed', subject: str(d.experiment), details: round() };
      case 'round_cancelled':
        return { actor: COORDINATOR, action: 'round.cancelled', subject: str(d.experiment), details: round() };
      case 'secagg_refused':
        return { actor: EDGE, action: 'secagg.refused', subject: str(d.experiment), details: { ...round(), step: str(d.type), reason: str(d.reason, 300) } };
      case 'ota_offered': {
        const version = str(d.version);
        if (version === this.lastOffer) return null;
        this.lastOffer = version;
        return { actor: COORDINATOR, action: 'ota.offered', subject: version, details: { release: num(d.release) } };
      }
      case 'ota_active':
        this.lastOffer = null;
        return { actor: EDGE, action: 'ota.applied', subject: str(d.version), details: {} };
      case 'ota_held':
        return { actor: EDGE, action: 'ota.held', subject: str(d.version), details: { reason: str(d.reason, 300) } };
      case 'ota_refused':
        this.lastOffer = null;
        return { actor: EDGE, action: 'ota.refused', subject: str(d.version), details: { reason: str(d.reason, 300) } };
      case 'ota_rolled_back':
        return { actor: OPERATOR, action: 'ota.rolled_back', subject: str(d.to), details: { from: str(d.from), to: str(d.to) } };
      case 'ota_activated_by_hand':
        return { actor: OPERATOR, action: 'ota.activated', subject: str(d.to), details: { from: str(d.from), to: str(d.to) } };
      case 'rollback_failed':
        return { actor: OPERATOR, action: 'ota.rollback_failed', subject: str(d.version), details: { reason: str(d.reason, 300) } };
      case 'model_swapped':
        return { actor: EDGE, action: 'model.swapped', subject: str(d.to), details: { from: d.from ? str(d.from) : null, provider: str(d.provider) } };
      case 'stopped':
        return { actor: EDGE, action: 'federation.stopped', subject: 'coordinator', details: { reason: str(d.reason, 300) } };
      case 'case_received':
        return d.duplicate ? null : { actor: EDGE, action: 'case.received', subject: str(d.case), details: { source: str(d.source), modality: d.modality ? str(d.modality) : null } };
      case 'case_labelled':
        return { actor: d.token ? { kind: 'token', id: str(d.token), role: 'clinician' } : OPERATOR, action: 'case.labelled', subject: str(d.case), details: { label: num(d.label), previous: num(d.previous), by: str(d.by, 200), via: str(d.via), at: str(d.at) } };
      case 'cases_deleted':
        return { actor: OPERATOR, action: 'cases.deleted', subject: 'cases', details: { count: num(d.count), before: str(d.before), by: str(d.by, 200) } };
      default:
        return null;
    }
  }
}

const str = (v: unknown, max = 128): string => (typeof v === 'string' ? v.slice(0, max) : v === undefined || v === null ? '' : String(v).slice(0, max));
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

