// `tes-heartbeat fleet`: the engine (engine/task-run.ts) with many runs, their settings
// from each task pod's annotations. This file wires the process: the pod source
// (pod-source.ts), the runs (runs.ts), the shared TES pool (tes-pool.ts), node and Job
// reads (engine/cluster-facts.ts), Events, the listener and the metrics.
//
// For the per-cluster scope (issue 18, fleet/lease-elector.ts), the seam is the
// SendGate (gate.ts), passed as `FleetDeps.gate`:
// - `open` / `signal` / `onChange`: only the lease holder sends. When the gate closes,
//   FleetRuns.reconsider() abandons every run with `evenFinal` (attempts in flight abort
//   at once through `signal`, which every attempt carries); when it opens, runs start
//   afresh from the pods the watch kept warm (first heartbeats at once, complete
//   unmarked pods get their finals).
// - `nodeOpen(node)`: runs of a lost node (Ready=Unknown) stop the same way and resume
//   when it reports again (call the gate's onChange listeners after a node changes).
// - tes_fleet_leader follows `gate.open`. The cluster scope also wants the node watch and
//   the Lease release on SIGTERM: do those in the gate's owner, around Fleet.start().
// Node scope (FLEET_NODE_NAME set) uses `alwaysOpen`.
import { type Clock, waitAtMost } from '../clock.ts';
import type { FleetConfig } from '../config/fleet.ts';
import { TokenSource } from '../engine/bearer.ts';
import { ClusterFacts } from '../engine/cluster-facts.ts';
import { aborted } from '../heartbeat/loop.ts';
import { type Listener, startListener } from '../http/listener.ts';
import { KubeApi } from '../kube/api.ts';
import { PodEventWriter } from '../kube/events.ts';
import type { Logger } from '../log.ts';
import type { Secrets } from '../secrets.ts';
import { alwaysOpen, type SendGate } from './gate.ts';
import { FleetMetrics } from './metrics.ts';
import { PodSource } from './pod-source.ts';
import { FleetRuns } from './runs.ts';
import { FleetTes } from './tes-pool.ts';

/** Closing connections and the listener after the last mark may take this long at most. */
const CLOSE_GRACE_MS = 500;
/** /healthz: the process ticks this often, and is alive while it ticked within LIVENESS_MS. */
const TICK_MS = 5_000;
const LIVENESS_MS = 60_000;

export interface FleetDeps {
  clock: Clock;
  /** The process's logger: runId and podName null on its own lines. */
  log: Logger;
  secrets: Secrets;
  /** The leadership gate (per cluster); default per node: always open. */
  gate?: SendGate;
  /** A loaded Kubernetes client (tests, the demo); default from the config's KUBECONFIG. */
  kube?: KubeApi;
}

export class Fleet {
  private readonly config: FleetConfig;
  private readonly deps: FleetDeps;
  readonly metrics = new FleetMetrics();
  /** Aborted by SIGTERM: the watches stop, running runs are abandoned. */
  private readonly stopping = new AbortController();
  /** Aborted once the finals and their marks are done: everything left closes. */
  private readonly closing = new AbortController();
  private synced = false;
  private tickedAt: number;
  private runs: FleetRuns | undefined;

  constructor(config: FleetConfig, deps: FleetDeps) {
    this.config = config;
    this.deps = deps;
    this.tickedAt = deps.clock.monotonic();
  }

  /** SIGTERM/SIGINT: no final for running runs; finals due finish with their marks. */
  stop(): void {
    this.stopping.abort();
  }

  /** Runs until stop(); resolves when the finals due and their marks are done (or given up). */
  async start(): Promise<void> {
    const { config, deps } = this;
    const { clock, log, secrets } = deps;
    const gate = deps.gate ?? (config.nodeName ? alwaysOpen : undefined);
    if (!gate) throw new Error('the per-cluster scope needs a leadership gate (fleet/lease-elector.ts)');
    const kube = deps.kube ?? KubeApi.load(config.kubeconfig ? { kubeconfig: config.kubeconfig } : {});
    const tes = new FleetTes({
      baseUrl: config.tesUrl,
      timeoutMs: config.timeoutMs,
      ca: config.ca,
      clock,
      secrets,
      maxInFlight: config.maxInFlight,
      runs: () => this.runs?.active ?? 0,
    });
    const tokens = new TokenSource({
      log,
      secrets,
      ...(config.token ? { token: config.token } : {}),
      ...(config.tokenFile
        ? { tokenFile: config.tokenFile.path, tokenFileContent: config.tokenFile.content }
        : {}),
    });
    const facts = new ClusterFacts({
      api: kube,
      clock,
      timeoutMs: config.timeoutMs,
      signal: this.stopping.signal,
    });
    const events = config.events
      ? new PodEventWriter({
          api: kube,
          log,
          now: () => clock.now(),
          timeoutMs: config.timeoutMs,
          reportingInstance: config.podName,
        })
      : undefined;
    this.metrics.leader.set(gate.open ? 1 : 0);
    const unsubscribe = gate.onChange(() => this.metrics.leader.set(gate.open ? 1 : 0));
    const runs = new FleetRuns({
      config,
      clock,
      log,
      secrets,
      api: kube,
      tes,
      tokens,
      facts,
      events,
      metrics: this.metrics,
      gate,
      signal: this.closing.signal,
    });
    this.runs = runs;
    const source = new PodSource({
      api: kube,
      clock,
      log,
      signal: this.stopping.signal,
      namespaces: config.namespaces,
      selector: config.selector,
      nodeName: config.nodeName,
      timeoutMs: config.timeoutMs,
      handler: runs,
      onRestart: () => this.metrics.watchRestarted(),
    });
    const listening = this.startListener();
    void source.synced.then(() => {
      this.synced = true;
      log.info({ runs: runs.active }, 'first pod list synced');
    });
    const watching = source
      .run()
      .catch((error: unknown) => log.error({ err: error }, 'the pod watch stopped'));
    const ticking = this.tick();
    try {
      await aborted(this.stopping.signal); // at once when a signal came before start()
      log.info({ runs: runs.active }, 'stopping: running runs get no final heartbeat; finals due finish');
      await runs.stop();
      await gate.release?.(); // nothing more is sent: a standby may take over at once
    } finally {
      unsubscribe();
      this.closing.abort();
      const closed = Promise.allSettled([
        watching,
        ticking,
        ...facts.pending(),
        tes.close(),
        kube.close(),
        listening.then((l) => l?.close()),
      ]);
      await waitAtMost(clock, closed, CLOSE_GRACE_MS);
    }
  }

  private startListener(): Promise<Listener | undefined> {
    const { httpAddr } = this.config;
    if (httpAddr === 'off') return Promise.resolve(undefined);
    return startListener({
      ...httpAddr,
      log: this.deps.log,
      healthy: () => this.deps.clock.monotonic() - this.tickedAt <= LIVENESS_MS,
      readiness: () =>
        this.synced ? { ready: true } : { ready: false, reason: 'the first pod list is not synced yet' },
      metrics: () => this.metrics.render(),
    });
  }

  /** The process's own tick for /healthz: a wedged event loop stops it. */
  private async tick(): Promise<void> {
    const { clock } = this.deps;
    while (!this.closing.signal.aborted) {
      this.tickedAt = clock.monotonic();
      await clock.sleep(TICK_MS, this.closing.signal).catch(() => undefined);
    }
  }
}
