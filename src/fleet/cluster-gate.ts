// The per-cluster scope's SendGate (gate.ts): open while this process holds the Lease
// (lease-elector.ts), and for each node only while its kubelet reports (lost-nodes.ts).
// It owns what the cluster scope adds around the fleet: the election and the node watch,
// on a Kubernetes client of their own — a renewal must not queue behind thousands of pod
// patches and Event writes on the fleet's connections, or a busy leader would miss its
// own renew deadline — and the release of the Lease when the fleet is done.
import type { Clock } from '../clock.ts';
import type { FleetConfig } from '../config/fleet.ts';
import type { KubeApi } from '../kube/api.ts';
import type { Logger } from '../log.ts';
import type { SendGate } from './gate.ts';
import { LeaseElector } from './lease-elector.ts';
import { LostNodes } from './lost-nodes.ts';

export interface ClusterGateOptions {
  config: Pick<FleetConfig, 'podName' | 'namespace' | 'lease' | 'timeoutMs'>;
  clock: Clock;
  log: Logger;
  /** A Kubernetes client for the Lease and the node watch alone (closed by stop()). */
  api: KubeApi;
}

/** Not leading: nothing may be sent, so the signal every attempt carries is already aborted. */
const NOT_LEADING = AbortSignal.abort(new Error('this process does not hold the lease'));

export class ClusterGate implements SendGate {
  private readonly options: ClusterGateOptions;
  private readonly elector: LeaseElector;
  private readonly nodes: LostNodes;
  private readonly listeners = new Set<() => void>();
  private leadership: AbortSignal = NOT_LEADING;
  private readonly stopping = new AbortController();
  private running: Promise<unknown> | undefined;

  constructor(options: ClusterGateOptions) {
    this.options = options;
    const { config, clock, log, api } = options;
    this.elector = new LeaseElector({
      api,
      clock,
      log,
      namespace: config.namespace ?? '',
      name: config.lease.name,
      identity: config.podName,
      leaseDurationMs: config.lease.durationMs,
      renewDeadlineMs: config.lease.renewDeadlineMs,
      retryPeriodMs: config.lease.retryPeriodMs,
      onStartedLeading: (signal) => {
        this.leadership = signal;
        this.changed();
      },
      onStoppedLeading: () => {
        this.leadership = NOT_LEADING;
        this.changed();
      },
    });
    this.nodes = new LostNodes({
      api,
      clock,
      log,
      timeoutMs: config.timeoutMs,
      onChange: () => this.changed(),
    });
  }

  get open(): boolean {
    return !this.leadership.aborted;
  }

  get signal(): AbortSignal {
    return this.leadership;
  }

  nodeOpen(nodeName: string | undefined): boolean {
    return !this.nodes.isLost(nodeName);
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Competes for the lease and follows the nodes until stop(). */
  start(): void {
    const { signal } = this.stopping;
    this.running = Promise.all([this.elector.run(signal), this.nodes.run(signal)]);
  }

  /** After the fleet's last final: leadership ends and the lease is released. */
  async release(): Promise<void> {
    this.stopping.abort();
    await this.running?.catch((error: unknown) => this.options.log.error({ err: error }, 'cluster gate'));
  }

  /** release(), then the client closes. */
  async stop(): Promise<void> {
    await this.release();
    await this.options.api.close();
  }

  private changed(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (error) {
        this.options.log.error({ err: error }, 'a gate listener failed');
      }
    }
  }
}
