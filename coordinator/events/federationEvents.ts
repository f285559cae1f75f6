/**
 * The coordinator's event feed: a small typed bus that the gateway, the round engine (through
 * its observer, roundEvents.ts), the deployment and the API emit into, and that GET /v1/events
 * (api/eventRoutes.ts) and the Prometheus metrics (observability/coordinatorMetrics.ts) listen
 * to. Every event carries `at` (ms since the epoch, stamped here). Emitting never throws: a
 * listener that throws is logged and the others still run, so nothing that emits is disturbed.
 *
 * The events (what the dashboard consumes; keep these shapes stable):
 *   site        a site's authenticated session opened or closed (`online`), or, with `change`,
 *               the site was added, enrolled, certified or revoked, or told its readiness (`online`: its session state then)
 *   round       a round `started`, or ended `completed` | `failed` | `stopped` (`reason` unless completed)
 *   phase       one site's progress in a round phase (see PHASES): `started` then `done`,
 *               `failed` or `dropped` (`reason`), with `seconds` and `bytes` (sent + received on
 *               the site's connection during the phase) once it ends. Under SecAgg+ the phases
 *               overlap (the site trains while it exchanges keys): each site's phases start in
 *               the order of PHASES; `training` ends when its (masked) update arrives. A failed
 *               phase may name `refused`: the site's policy refusal (privacy_budget,
 *               approval_pending, experiment_rejected, policy) or the coordinator's
 *               (invalid_update, secagg_refused, protocol_violation; events/roundEvents.ts).
 *   version     a new global model version was persisted
 *   metrics     a round's metrics were stored (GET /v1/experiments/:id/metrics has them)
 *   privacy     the federation's privacy ledger of the experiment changed (a round was charged)
 *   deployment  the deployment changed (`change`: publish, canary, promote, rollback, held,
 *               gate, report); GET /v1/deployment has the state
 *   token       an API token was created or revoked
 *   audit       entries were appended to the audit log (at most ~2 a second; GET /v1/audit has them)
 */

/** A round's per-site phases, in the order each site starts them (SecAgg+ stages only under SecAgg+). */
export const PHASES = ['training', 'key_exchange', 'masked_input', 'unmask', 'evaluation'] as const;
export type SitePhase = (typeof PHASES)[number];
export type PhaseStatus = 'started' | 'done' | 'failed' | 'dropped';
export type RoundEventStatus = 'started' | 'completed' | 'failed' | 'stopped';
/** `data`: the site's readiness (data_status) changed — shown, not audited (it is not a change to the federation). */
export type SiteChange = 'added' | 'enrolled' | 'certified' | 'revoked' | 'data';
export type DeploymentChange = 'publish' | 'canary' | 'promote' | 'rollback' | 'held' | 'gate' | 'report';

export type FederationEvent =
  | { type: 'site'; at: number; site: string; online: boolean; change?: SiteChange }
  | { type: 'round'; at: number; experiment: string; round: number; status: RoundEventStatus; reason?: string }
  | { type: 'phase'; at: number; experiment: string; round: number; site: string; phase: SitePhase; status: PhaseStatus; reason?: string; refused?: string; seconds?: number; bytes?: number }
  | { type: 'version'; at: number; experiment: string; version: string; round: number; parent: string | null; paramsSha256: string | null; encrypted: boolean }
  | { type: 'metrics'; at: number; experiment: string; round: number }
  | { type: 'privacy'; at: number; experiment: string; epsilon: number | null }
  | { type: 'deployment'; at: number; change: DeploymentChange; version?: string | null; site?: string }
  | { type: 'token'; at: number; id: string; change: 'created' | 'revoked' }
  | { type: 'experiment'; at: number; experiment: string; change: 'created' | 'stopped' }
  | { type: 'audit'; at: number };

type WithoutAt<T> = T extends unknown ? Omit<T, 'at'> : never;
/** An event as emitted (the bus stamps `at`). */
export type FederationEventInput = WithoutAt<FederationEvent>;
export type FederationEventOf<T extends FederationEvent['type']> = Extract<FederationEvent, { type: T }>;
export type FederationListener = (event: FederationEvent) => void;

type Log = { warn(o: object, msg: string): void };

export class FederationEvents {
  private readonly listeners = new Set<FederationListener>();

  constructor(private readonly log: Log = { warn: () => {} }) {}

  /** Sends an event to every listener now; never throws. */
  emit(event: FederationEventInput): void {
    const e = { ...event, at: Date.now() } as FederationEvent;
    for (const listener of [...this.listeners]) {
      try {
        listener(e);
      } catch (err) {
        this.log.warn({ err: (err as Error).message, event: e.type }, 'a federation event listener failed');
      }
    }
  }

  /** Adds a listener; returns the function that removes it. */
  on(listener: FederationListener): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  /** Calls `listener` for events of one type only. */
  onType<T extends FederationEvent['type']>(type: T, listener: (event: FederationEventOf<T>) => void): () => void {
    return this.on((e) => {
      if (e.type === type) listener(e as FederationEventOf<T>);
    });
  }

  get listenerCount(): number {
    return this.listeners.size;
  }
}

/** Runs `f` and swallows what it throws (emitting must never break the code that emits). */
export function safely(f: () => void): void {
  try {
    f();
  } catch {
    // (the bus already isolates listeners; this guards the building of the event itself)
  }
}
