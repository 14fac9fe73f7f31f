// The fleet's metrics: the agent's names counted over all runs (no per-run label:
// thousands of series would swamp Prometheus), plus the fleet's own.
import Counter from 'prom-client/lib/counter.js';
import Gauge from 'prom-client/lib/gauge.js';
import { AgentMetrics } from '../http/agent-metrics.ts';

export class FleetMetrics extends AgentMetrics {
  readonly runs = new Gauge({
    name: 'tes_fleet_runs',
    help: 'Runs being heartbeated by this process.',
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: 'tes_fleet_leader',
    help: '1 while this process holds the lease or has no lease to hold (node scope).',
    registers: [this.registry],
  });
  private readonly finals = new Counter({
    name: 'tes_fleet_final_heartbeats_total',
    help: 'Final heartbeats by outcome, as marked on the pods.',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  constructor() {
    super();
    this.finals.inc({ result: 'sent' }, 0);
    this.finals.inc({ result: 'failed' }, 0);
  }

  finalHeartbeat(result: 'sent' | 'failed'): void {
    this.finals.inc({ result });
  }
}
