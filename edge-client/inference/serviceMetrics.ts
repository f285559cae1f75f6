/**
 * Prometheus metrics of the edge inference service (prom-client, its own registry): request
 * latency, batch sizes, requests by outcome, the model version and execution provider in use,
 * swaps, OTA bytes and whether the coordinator is reachable.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { collectProcessMetrics } from '../../shared/observability/processMetrics.js';

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly latency = new Histogram({
    name: 'fedmed_infer_request_duration_seconds',
    help: 'Inference request latency (receipt to response), seconds',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({ name: 'fedmed_infer_batch_size', help: 'Examples per onnxruntime run', buckets: [1, 2, 4, 8, 16, 32, 64, 128], registers: [this.registry] });
  readonly requests = new Counter({ name: 'fedmed_infer_requests_total', help: 'Inference requests by HTTP status', labelNames: ['status'], registers: [this.registry] });
  readonly model = new Gauge({ name: 'fedmed_model_info', help: 'The model version serving (value 1) and its execution provider', labelNames: ['version', 'provider'], registers: [this.registry] });
  readonly swaps = new Counter({ name: 'fedmed_model_swaps_total', help: 'Hot swaps to a new model version', registers: [this.registry] });
  readonly refusals = new Counter({ name: 'fedmed_model_refusals_total', help: 'Model versions refused (bad signature, hash, or failed checks)', registers: [this.registry] });
  readonly otaBytes = new Counter({ name: 'fedmed_ota_bytes_total', help: 'Model update bytes received over the air', registers: [this.registry] });
  readonly coordinatorConnected = new Gauge({ name: 'fedmed_coordinator_connected', help: '1 while connected to the coordinator', registers: [this.registry] });

  constructor() {
    collectProcessMetrics(this.registry);
  }

  setModel(version: string, provider: string): void {
    this.model.reset();
    this.model.set({ version, provider }, 1);
  }
}
