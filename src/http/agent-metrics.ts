// The agent's Prometheus metrics (contract: The HTTP listener). prom-client is
// imported part by part: the root module costs ~15 MB for things a sidecar never uses.
import type { HeartbeatObserver } from '../heartbeat/loop.ts';
import Counter from 'prom-client/lib/counter.js';
import collectDefaultMetrics from 'prom-client/lib/defaultMetrics.js';
import Gauge from 'prom-client/lib/gauge.js';
import Histogram from 'prom-client/lib/histogram.js';
import Registry from 'prom-client/lib/registry.js';

// Event-loop delay sampled once a second, not prom-client's 10 ms default: the
// default burns ~6 millicores idle in every task pod.
const EVENT_LOOP_PRECISION_MS = 1_000;

export class AgentMetrics implements HeartbeatObserver {
  readonly registry = new Registry();
  private readonly heartbeats = new Counter({
    name: 'tes_heartbeats_total',
    help: 'Heartbeats by final outcome (not attempts).',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  private readonly attempts = new Counter({
    name: 'tes_heartbeat_attempts_total',
    help: 'HTTP attempts to send a heartbeat, retries included.',
    registers: [this.registry],
  });
  private readonly duration = new Histogram({
    name: 'tes_heartbeat_duration_seconds',
    help: 'Latency of one heartbeat attempt.',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly lastSuccess = new Gauge({
    name: 'tes_heartbeat_last_success_timestamp_seconds',
    help: 'When a heartbeat last succeeded (Unix time).',
    registers: [this.registry],
  });
  private readonly watchRestarts = new Counter({
    name: 'tes_kube_watch_restarts_total',
    help: 'Times the pod watch was re-established.',
    registers: [this.registry],
  });

  constructor() {
    this.heartbeats.inc({ result: 'success' }, 0);
    this.heartbeats.inc({ result: 'failure' }, 0);
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_PRECISION_MS });
  }

  attempt(seconds: number): void {
    this.attempts.inc();
    this.duration.observe(seconds);
  }

  heartbeat(result: 'success' | 'failure', at: number): void {
    this.heartbeats.inc({ result });
    if (result === 'success') this.lastSuccess.set(at / 1000);
  }

  watchRestarted(): void {
    this.watchRestarts.inc();
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
