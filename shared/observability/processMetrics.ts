/**
 * prom-client's default process and Node.js metrics, minus the three it names against the
 * Prometheus naming rules: `nodejs_active_{handles,requests,resources}_total` are gauges with a
 * counter's `_total` suffix, which `promtool check metrics` rejects. The same figures stay
 * available per type (`nodejs_active_handles{type}` etc.; sum them in PromQL).
 */
import { collectDefaultMetrics, type Registry } from 'prom-client';

export const MISNAMED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'] as const;

export function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of MISNAMED_DEFAULT_METRICS) registry.removeSingleMetric(name);
}
