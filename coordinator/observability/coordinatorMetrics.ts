/**
 * Prometheus metrics of the coordinator (prom-client, its own registry; served at GET /metrics
 * by api/eventRoutes.ts): rounds by outcome and their duration, per-site phase durations, sites
 * online, WebSocket bytes, refused updates by reason, ε spent per experiment, OTA deliveries and
 * bytes, API requests by route pattern and status, and the default process metrics
 * (shared/observability/processMetrics.ts). Round,
 * phase, refusal, privacy and delivery figures follow the event feed (events/federationEvents.ts);
 * gauges and byte counters that the gateway and the OTA publisher already keep are read when
 * scraped.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { REFUSAL_KINDS } from '../../shared/protocol/messages.js';
import type { FederationEvents } from '../events/federationEvents.js';
import type { CoordinatorRefusal } from '../events/roundEvents.js';
import { collectProcessMetrics } from '../../shared/observability/processMetrics.js';

const COORDINATOR_REFUSALS: readonly CoordinatorRefusal[] = ['invalid_update', 'secagg_refused', 'protocol_violation'];

/** What the metrics read at scrape time. */
export interface MetricSources {
  sitesOnline(): number;
  /** Bytes over every edge WebSocket connection since start. */
  gatewayTraffic(): { sent: number; received: number };
  /** Model update bytes the OTA publisher sent since start. */
  otaBytes(): number;
}

/** A counter that follows a monotonic total kept elsewhere (read on each scrape). */
function totalCounter(registry: Registry, name: string, help: string, total: () => number): Counter {
  let last = 0;
  return new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const now = total();
      if (now > last) this.inc(now - last);
      last = Math.max(last, now);
    },
  });
}

export class CoordinatorMetrics {
  readonly registry = new Registry();
  readonly rounds = new Counter({ name: 'fedmed_coordinator_rounds_total', help: 'Rounds ended, by outcome (completed, failed, stopped)', labelNames: ['status'], registers: [this.registry] });
  readonly roundDuration = new Histogram({
    name: 'fedmed_coordinator_round_duration_seconds',
    help: 'Round duration from start to end, seconds, by outcome',
    labelNames: ['status'],
    buckets: [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800],
    registers: [this.registry],
  });
  readonly phaseDuration = new Histogram({
    name: 'fedmed_coordinator_phase_duration_seconds',
    help: 'Per-site phase duration (training, key_exchange, masked_input, unmask, evaluation) of phases a site completed, seconds',
    labelNames: ['phase'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 60, 120, 300],
    registers: [this.registry],
  });
  readonly sitesOnline: Gauge;
  readonly wsReceived: Counter;
  readonly wsSent: Counter;
  readonly refused = new Counter({
    name: 'fedmed_coordinator_updates_refused_total',
    help: 'Site updates refused, by reason: the site\'s policy (privacy_budget, approval_pending, experiment_rejected, policy) or the coordinator\'s (invalid_update, secagg_refused, protocol_violation)',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly epsilon = new Gauge({ name: 'fedmed_coordinator_privacy_epsilon', help: 'Privacy budget spent per experiment (epsilon at the experiment\'s delta, federation ledger)', labelNames: ['experiment'], registers: [this.registry] });
  readonly otaDeliveries = new Counter({ name: 'fedmed_coordinator_ota_deliveries_total', help: 'Model updates sent to a site in full', registers: [this.registry] });
  readonly otaBytes: Counter;
  readonly apiRequests = new Counter({ name: 'fedmed_coordinator_api_requests_total', help: 'REST API requests by method, route pattern and HTTP status', labelNames: ['method', 'route', 'status'], registers: [this.registry] });
  private readonly roundStarts = new Map<string, number>();

  constructor(events: FederationEvents, sources: MetricSources) {
    collectProcessMetrics(this.registry);
    this.sitesOnline = new Gauge({
      name: 'fedmed_coordinator_sites_online',
      help: 'Sites with an authenticated session',
      registers: [this.registry],
      collect() {
        this.set(sources.sitesOnline());
      },
    });
    this.wsReceived = totalCounter(this.registry, 'fedmed_coordinator_ws_received_bytes_total', 'Bytes received over the edge WebSocket gateway', () => sources.gatewayTraffic().received);
    this.wsSent = totalCounter(this.registry, 'fedmed_coordinator_ws_sent_bytes_total', 'Bytes sent over the edge WebSocket gateway', () => sources.gatewayTraffic().sent);
    this.otaBytes = totalCounter(this.registry, 'fedmed_coordinator_ota_bytes_total', 'Model update bytes sent to sites over the air', sources.otaBytes);
    // Every known label value from the start (rate() and alerts need the series before the first increment).
    for (const status of ['completed', 'failed', 'stopped']) this.rounds.inc({ status }, 0);
    for (const reason of [...REFUSAL_KINDS, ...COORDINATOR_REFUSALS]) this.refused.inc({ reason }, 0);

    events.on((e) => {
      switch (e.type) {
        case 'round': {
          const key = `${e.experiment}\n${e.round}`;
          if (e.status === 'started') return void this.roundStarts.set(key, e.at);
          this.rounds.inc({ status: e.status });
          const t0 = this.roundStarts.get(key);
          this.roundStarts.delete(key);
          if (t0 !== undefined) this.roundDuration.observe({ status: e.status }, (e.at - t0) / 1000);
          return;
        }
        case 'phase':
          if (e.status === 'done' && e.seconds !== undefined) this.phaseDuration.observe({ phase: e.phase }, e.seconds);
          // (a withheld evaluation is no refused update)
          if (e.refused && e.phase !== 'evaluation') this.refused.inc({ reason: e.refused });
          return;
        case 'privacy':
          if (e.epsilon !== null) this.epsilon.set({ experiment: e.experiment }, e.epsilon);
          return;
        default:
      }
    });
  }

  /** A whole model update reached a site (OtaPublisher.onDelivered). */
  delivered(): void {
    this.otaDeliveries.inc();
  }

  /** One answered API request (the route pattern, not the URL: no unbounded label values). */
  request(method: string, route: string | undefined, status: number): void {
    this.apiRequests.inc({ method, route: route ?? 'unmatched', status: String(status) });
  }
}
