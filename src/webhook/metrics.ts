// The webhook's Prometheus metrics, on their own registry.
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import CounterClass from 'prom-client/lib/counter.js';
import collectDefaultMetrics from 'prom-client/lib/defaultMetrics.js';
import GaugeClass from 'prom-client/lib/gauge.js';
import HistogramClass from 'prom-client/lib/histogram.js';
import RegistryClass from 'prom-client/lib/registry.js';
import type { MutateResult, SidecarMode } from './mutate.ts';

export interface WebhookMetrics {
  readonly registry: Registry;
  readonly admissions: Counter<'result'>;
  readonly duration: Histogram;
  /** Sets tes_webhook_sidecar_mode: 1 for `mode`, 0 for the other. */
  setMode(mode: SidecarMode): void;
}

export function createWebhookMetrics(options: { processMetrics: boolean }): WebhookMetrics {
  const registry = new RegistryClass();
  const admissions = new CounterClass({
    name: 'tes_webhook_admissions_total',
    help: 'Admission reviews answered, by outcome',
    labelNames: ['result'],
    registers: [registry],
  });
  for (const result of ['injected', 'skipped', 'error'] satisfies MutateResult['result'][]) {
    admissions.inc({ result }, 0);
  }
  const duration = new HistogramClass({
    name: 'tes_webhook_admission_duration_seconds',
    help: 'Time from a review request arriving to its answer being written',
    // Reviews take well under a millisecond; the API server gives up at 5 s.
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
    registers: [registry],
  });
  const mode: Gauge<'mode'> = new GaugeClass({
    name: 'tes_webhook_sidecar_mode',
    help: 'The sidecar mode in use: 1 for the mode injected pods get',
    labelNames: ['mode'],
    registers: [registry],
  });
  // Two webhook replicas per cluster: the event-loop sampling the agent avoids
  // (library notes, prom-client) costs nothing that matters here.
  if (options.processMetrics) collectDefaultMetrics({ register: registry });
  return {
    registry,
    admissions,
    duration,
    setMode(current) {
      mode.set({ mode: 'native' }, current === 'native' ? 1 : 0);
      mode.set({ mode: 'regular' }, current === 'regular' ? 1 : 0);
    },
  };
}
