// The agent: the engine (engine/task-run.ts) with one run, its settings from env. What
// only a sidecar does stays here: the watch on its own pod, the start-up order of rule 1
// (the first heartbeat waits for the pod and, with JOB_RETRY_COUNT=auto, the Job at most
// HEARTBEAT_TIMEOUT each, then goes out whatever is known), the kubelet's last word after
// SIGTERM (rule 16), the native sidecar's wait (rule 18), and its listener.
import { type Clock, waitAtMost } from '../clock.ts';
import type { AgentConfig } from '../config/agent.ts';
import { RunBearer, TokenSource } from '../engine/bearer.ts';
import { ClusterFacts } from '../engine/cluster-facts.ts';
import { TaskRun } from '../engine/task-run.ts';
import { aborted, type EndReason } from '../heartbeat/loop.ts';
import { AgentMetrics } from '../http/agent-metrics.ts';
import { type Listener, type Readiness, startListener } from '../http/listener.ts';
import { KubeApi, KubeError } from '../kube/api.ts';
import { type EventContent, PodEventWriter } from '../kube/events.ts';
import { owningJobName } from '../kube/job.ts';
import { watchPod } from '../kube/pod-watch.ts';
import type { Pod } from '../kube/types.ts';
import type { Logger } from '../log.ts';
import type { Secrets } from '../secrets.ts';
import { TesClient } from '../tes/client.ts';

/** How long a SIGTERM may spend refreshing the pod before the final heartbeat (rule 16). */
const FINAL_POD_REFRESH_MS = 2_000;
/**
 * While waiting for the kubelet's last word the watch usually delivers it; the pod is
 * also read this often, in case the watch is down (a few GETs per pod, not a storm).
 */
const FINAL_POD_POLL_MS = 500;
/** Closing connections and the listener after the loop may take this long at most (rule 15). */
const CLOSE_GRACE_MS = 500;

export interface AgentDeps {
  clock: Clock;
  log: Logger;
  /** The logger's scrubber: the bearer adds every credential it meets (rule 11). */
  secrets: Secrets;
}

export class Agent {
  private readonly config: AgentConfig;
  private readonly deps: AgentDeps;
  private readonly metrics = new AgentMetrics();
  private readonly tes: TesClient;
  private readonly run: TaskRun;
  private eventWriter: PodEventWriter | undefined;
  private readonly stopped = new AbortController();
  /** SIGTERM/SIGINT has come (a native sidecar waits for it after the final heartbeat). */
  private readonly signalled = new AbortController();
  /** Set once the final heartbeat is done: readiness stands still from then on. */
  private finalReadiness: Readiness | undefined;
  private kube: KubeApi | undefined;
  private facts: ClusterFacts | undefined;
  private kubeLoaded!: (kube: KubeApi | undefined) => void;
  /** The Kubernetes client once start() loaded its configuration (undefined: none). */
  private readonly kubeReady = new Promise<KubeApi | undefined>((resolve) => {
    this.kubeLoaded = resolve;
  });
  private firstPod: (() => void) | undefined;
  /** Resolved when the pod is first seen (its uid puts an Event into `kubectl describe pod`). */
  private readonly podKnown = Promise.withResolvers<void>();
  private jobRead: Promise<void> | undefined;
  private nodeRead: Promise<void> | undefined;

  constructor(config: AgentConfig, deps: AgentDeps) {
    this.config = config;
    this.deps = deps;
    this.tes = new TesClient({
      baseUrl: config.tesUrl,
      timeoutMs: config.timeoutMs,
      clock: deps.clock,
      secrets: deps.secrets,
      ca: config.ca,
    });
    const tokens = new TokenSource({
      log: deps.log,
      secrets: deps.secrets,
      ...(config.token ? { token: config.token } : {}),
      ...(config.tokenFile
        ? { tokenFile: config.tokenFile.path, tokenFileContent: config.tokenFile.content }
        : {}),
    });
    this.run = new TaskRun({
      runId: config.runId,
      podName: config.podName,
      nonce: config.nonce,
      watchContainers: config.watchContainers,
      ...(typeof config.jobRetryCount === 'number' ? { jobRetryCount: config.jobRetryCount } : {}),
      policy: config,
      clock: deps.clock,
      log: deps.log,
      send: (body, token, signal) =>
        this.tes.heartbeatTaskRun(config.runId, body, { ...(token ? { token } : {}), signal }),
      resetConnections: () => this.tes.resetConnections(),
      bearer: new RunBearer({
        tokens,
        log: deps.log,
        secrets: deps.secrets,
        ...(config.jwtFile ? { jwtFile: config.jwtFile } : {}),
      }),
      writeEvent: config.events ? (event, signal) => this.recordEvent(event, signal) : undefined,
      observers: [this.metrics],
    });
  }

  /** SIGTERM/SIGINT (rules 8 and 16): wait for the kubelet's last word, then the final heartbeat. */
  stop(): void {
    this.signalled.abort();
    this.end('signal', this.lastWord());
  }

  private end(reason: EndReason, prepare?: Promise<void>): void {
    this.run.end(reason, prepare);
  }

  async start(): Promise<void> {
    const { log } = this.deps;
    const listening = this.startListener();
    let watching: Promise<void> = Promise.resolve();
    try {
      try {
        this.kube = KubeApi.load(this.config.kubeconfig ? { kubeconfig: this.config.kubeconfig } : {});
        this.facts = new ClusterFacts({
          api: this.kube,
          clock: this.deps.clock,
          timeoutMs: this.config.timeoutMs,
          signal: this.stopped.signal,
        });
      } catch (error) {
        log.error({ err: error }, 'no Kubernetes API configuration: heartbeats go on without the pod');
      }
      this.kubeLoaded(this.kube);
      // Handled from the start (rule 22): a watch that fails must not be an unhandled rejection.
      if (this.kube)
        watching = this.watch(this.kube).catch((error: unknown) => {
          log.error({ err: error }, 'the pod watch stopped: heartbeats go on with the last snapshot');
        });
      if (this.kube && !this.run.ending) {
        await this.firstPodOrTimeout();
        if (this.jobRead) await this.bounded(this.jobRead);
      }
      await this.run.run();
      // Rule 18 and "where rules meet": after the final heartbeat nothing more is reported.
      this.finalReadiness = this.run.readiness();
      this.stopped.abort();
      const pod = this.run.pod;
      if (this.run.endReason === 'complete' && pod && isNativeSidecar(pod, this.config.selfName)) {
        // Exiting would make the kubelet restart a native sidecar, and the new process
        // would beat a finished run: wait for the SIGTERM that ends the pod instead.
        log.info('final heartbeat sent; a native sidecar waits for its SIGTERM');
        await aborted(this.signalled.signal);
      }
    } finally {
      // Even after a throw (a regular sidecar must never hold its Job open), and bounded:
      // a TES or API server that never answers must not keep the process alive (rule 15).
      this.stopped.abort();
      const closing = Promise.allSettled([
        watching,
        this.jobRead,
        this.nodeRead,
        this.tes.close(),
        // The final Event may still be on its way: the API connection closes after it.
        this.run.closeEvents().then(() => this.kube?.close()),
        listening.then((l) => l?.close()),
      ]);
      await waitAtMost(this.deps.clock, closing, CLOSE_GRACE_MS);
    }
  }

  private startListener(): Promise<Listener | undefined> {
    const { httpAddr } = this.config;
    if (httpAddr === 'off') return Promise.resolve(undefined);
    return startListener({
      ...httpAddr,
      log: this.deps.log,
      // Alive while the loop ticks; a native sidecar waiting for its SIGTERM is alive too.
      healthy: () => this.finalReadiness !== undefined || this.run.alive(),
      readiness: () => this.finalReadiness ?? this.run.readiness(),
      metrics: () => this.metrics.render(),
      onPortTaken: (address) => this.portTaken(address),
    });
  }

  /**
   * Rule T5: in regular mode a task container may hold the agent's port and answer
   * scrapes for it; one Warning Event says so where people look, once the pod is known
   * (or after HEARTBEAT_TIMEOUT without it).
   */
  private portTaken(address: string): void {
    if (!this.config.events) return;
    const event: EventContent = {
      reason: 'ListenerPortTaken',
      type: 'Warning',
      note: `HTTP_ADDR ${address} is taken by another process in the pod: what answers there (/healthz, /readyz, /metrics) is not tes-heartbeat. Heartbeats go on.`,
    };
    void this.bounded(this.podKnown.promise).then(() => this.recordEvent(event, this.stopped.signal));
  }

  /** Writes one Event once the Kubernetes client is loaded; without one there is nowhere to write. */
  private async recordEvent(event: EventContent, signal: AbortSignal): Promise<void> {
    const kube = await this.kubeReady;
    if (!kube) return;
    const { namespace, podName, timeoutMs } = this.config;
    this.eventWriter ??= new PodEventWriter({
      api: kube,
      log: this.deps.log,
      pod: () => ({ namespace, name: podName, uid: this.run.pod?.metadata?.uid }),
      now: () => this.deps.clock.now(),
      timeoutMs,
    });
    await this.eventWriter.write(event, signal);
  }

  private watch(kube: KubeApi): Promise<void> {
    const { namespace, podName, timeoutMs } = this.config;
    return watchPod({
      api: kube,
      namespace,
      podName,
      listTimeoutMs: timeoutMs,
      clock: this.deps.clock,
      log: this.deps.log,
      signal: this.stopped.signal,
      onPod: (pod) => this.podSeen(pod),
      onDeleted: (last) => this.run.deleted(last),
      onRestart: () => this.metrics.watchRestarted(),
    });
  }

  private podSeen(pod: Pod): void {
    this.run.podSeen(pod);
    this.firstPod?.();
    this.podKnown.resolve();
    this.startReads(pod);
  }

  /** The Job and node are read once each, retried until answered (rule 1). */
  private startReads(pod: Pod): void {
    const facts = this.facts;
    if (!facts) return;
    const { log } = this.deps;
    if (this.config.jobRetryCount === 'auto' && !this.jobRead) {
      const job = owningJobName(pod);
      this.jobRead = !job
        ? Promise.resolve()
        : facts.jobFailed(this.config.namespace, job, log).then((failed) => {
            if (failed !== undefined) this.run.jobRetryCount(failed);
          });
    }
    const nodeName = pod.spec?.nodeName;
    if (this.config.hardwareDetails && nodeName && !this.nodeRead) {
      this.nodeRead = facts.node(nodeName, log).then((node) => {
        if (node) this.run.nodeSeen(node);
      });
    }
  }

  private firstPodOrTimeout(): Promise<void> {
    if (this.run.pod) return Promise.resolve();
    return this.bounded(
      new Promise<void>((resolve) => {
        this.firstPod = resolve;
      }),
    );
  }

  /** Waits for `work` at most HEARTBEAT_TIMEOUT, or until the end is seen. */
  private bounded(work: Promise<unknown>): Promise<void> {
    return waitAtMost(this.deps.clock, work, this.config.timeoutMs, this.run.endSignal);
  }

  /**
   * Rule 16: after SIGTERM the API server often still shows the task running for about
   * a second. Read the pod (the watch goes on meanwhile) until every watched container is
   * terminated in the newest snapshot — at most 2 s, and no longer than the final
   * heartbeat's first attempt allows. Waits for the Kubernetes configuration when the
   * signal came before it was loaded.
   */
  private async lastWord(): Promise<void> {
    const kube = await this.kubeReady;
    if (!kube) return;
    const { clock, log } = this.deps;
    const run = this.run;
    const until = clock.monotonic() + FINAL_POD_REFRESH_MS;
    const timer = new AbortController();
    const signal = AbortSignal.any([timer.signal, run.giveWaySignal]);
    clock.sleep(FINAL_POD_REFRESH_MS, timer.signal).then(
      () => timer.abort(),
      () => undefined,
    );
    let warned = false;
    try {
      for (;;) {
        const seen = run.versions;
        try {
          const pod = await kube.getPod(this.config.namespace, this.config.podName, {
            timeoutMs: Math.max(1, until - clock.monotonic()),
            signal,
          });
          // A watch event that came while the GET was out is at least as new.
          if (run.versions === seen && !run.deletedSeen) this.podSeen(pod);
        } catch (error) {
          if (signal.aborted) return;
          if (error instanceof KubeError && error.status === 404) return; // gone: nothing newer will come
          if (!warned) log.warn({ err: error }, 'could not refresh the pod before the final heartbeat');
          warned = true;
        }
        if (run.deletedSeen || (run.pod && run.allTerminated(run.pod))) return;
        // The 2 s can be up before the timer above says so: a GET that failed just after
        // `until` (a refused connection, or its own timeout firing first) must not sleep a
        // negative time (Node warns, in plain text, among the JSON logs: issue 16).
        const left = until - clock.monotonic();
        if (left <= 0) return;
        await clock.sleep(Math.min(FINAL_POD_POLL_MS, left), signal);
      }
    } catch {
      // the 2 s or the final heartbeat's share ran out: it goes out with the newest snapshot
    } finally {
      timer.abort();
      if (run.pod && !run.allTerminated(run.pod))
        log.info('the final heartbeat goes out while a watched container still runs');
    }
  }
}

/** Rule 18: the agent's own container is an init container with restartPolicy Always. */
function isNativeSidecar(pod: Pod, selfName: string): boolean {
  return (pod.spec?.initContainers ?? []).some((c) => c.name === selfName && c.restartPolicy === 'Always');
}
