// The agent: wires the pod source, the pure mapping, the heartbeat loop, the TES
// client and the listener together. Start-up order follows contract rule 1: the
// first heartbeat waits for the pod (and, with JOB_RETRY_COUNT=auto, the Job) at
// most HEARTBEAT_TIMEOUT each, then goes out whatever is known.
import type { Clock } from '../clock.ts';
import type { AgentConfig } from '../config/agent.ts';
import { BearerSource } from './bearer.ts';
import { PodEvents } from './pod-events.ts';
import { type HealthEvent, STALE_AFTER_INTERVALS } from '../heartbeat/health-events.ts';
import { aborted, type EndReason, HeartbeatLoop, type HeartbeatObserver } from '../heartbeat/loop.ts';
import {
  heartbeatBody,
  isTaskComplete,
  type MappingOptions,
  type PodFacts,
  reportedContainers,
  stateSignature,
  watchedContainers,
} from '../heartbeat/mapping.ts';
import { AgentMetrics } from '../http/agent-metrics.ts';
import { type Listener, type Readiness, startListener } from '../http/listener.ts';
import type { Pod } from '../kube/types.ts';
import { KubeApi, KubeError } from '../kube/api.ts';
import { PodEventWriter } from '../kube/events.ts';
import { jobFailedCount, owningJobName } from '../kube/job.ts';
import { watchPod } from '../kube/pod-watch.ts';
import { readUntilAnswered } from '../kube/read-retry.ts';
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
/** The final Event's share of the exit (contract: Events on the task pod, best effort). */
const FINAL_EVENT_MS = 1_000;

export interface AgentDeps {
  clock: Clock;
  log: Logger;
  /** The logger's scrubber: the bearer adds every credential it meets (rule 11). */
  secrets: Secrets;
}

export class Agent {
  private readonly config: AgentConfig;
  private readonly deps: AgentDeps;
  private readonly facts: PodFacts = { jobRetryCount: 0 };
  private readonly mapping: MappingOptions;
  private readonly metrics = new AgentMetrics();
  private readonly tes: TesClient;
  private readonly loop: HeartbeatLoop;
  /** Everything the loop reports goes to each of these (the metrics; the Events recorder joins here). */
  private readonly observers: HeartbeatObserver[] = [this.metrics];
  /** Events on the own pod (EVENTS=on); "three intervals after the start" counts from construction. */
  private readonly events: PodEvents | undefined;
  private eventWriter: PodEventWriter | undefined;
  private readonly stopped = new AbortController();
  /** SIGTERM/SIGINT has come (a native sidecar waits for it after the final heartbeat). */
  private readonly signalled = new AbortController();
  private endReason: EndReason | undefined;
  /** Set once the final heartbeat is done: readiness stands still from then on. */
  private finalReadiness: Readiness | undefined;
  private kube: KubeApi | undefined;
  private kubeLoaded!: (kube: KubeApi | undefined) => void;
  /** The Kubernetes client once run() loaded its configuration (undefined: none). */
  private readonly kubeReady = new Promise<KubeApi | undefined>((resolve) => {
    this.kubeLoaded = resolve;
  });
  /** Counts pod snapshots taken, so a slow GET never overwrites a newer watch event. */
  private podVersions = 0;
  private podDeleted = false;
  private warnedMissing = false;
  private firstPod: (() => void) | undefined;
  private jobRead: Promise<void> | undefined;
  private nodeRead: Promise<void> | undefined;

  constructor(config: AgentConfig, deps: AgentDeps) {
    this.config = config;
    this.deps = deps;
    this.mapping = {
      podName: config.podName,
      selfName: config.selfName,
      hardwareDetails: config.hardwareDetails,
      ...(config.nonce ? { nonce: config.nonce } : {}),
      ...(config.watchContainers ? { watchContainers: config.watchContainers } : {}),
    };
    if (typeof config.jobRetryCount === 'number') this.facts.jobRetryCount = config.jobRetryCount;
    this.tes = new TesClient({
      baseUrl: config.tesUrl,
      timeoutMs: config.timeoutMs,
      clock: deps.clock,
      secrets: deps.secrets,
      ...(config.ca ? { ca: config.ca } : {}),
    });
    const bearer = new BearerSource({
      log: deps.log,
      secrets: deps.secrets,
      ...(config.token ? { token: config.token } : {}),
      ...(config.tokenFile
        ? { tokenFile: config.tokenFile.path, tokenFileContent: config.tokenFile.content }
        : {}),
      ...(config.jwtFile ? { jwtFile: config.jwtFile } : {}),
    });
    this.loop = new HeartbeatLoop({
      clock: deps.clock,
      log: deps.log,
      intervalMs: config.intervalMs,
      minGapMs: config.minGapMs,
      finalDeadlineMs: config.finalDeadlineMs,
      body: (last) => heartbeatBody(this.facts, this.mapping, last),
      signature: () => (this.facts.pod ? stateSignature(this.facts.pod, this.mapping) : ''),
      send: (body, token, signal) =>
        this.tes.heartbeatTaskRun(config.runId, body, { ...(token ? { token } : {}), signal }),
      bearer,
      resetConnections: () => this.tes.resetConnections(),
      observer: {
        attempt: (seconds) => {
          for (const o of this.observers) o.attempt(seconds);
        },
        heartbeat: (result, at, detail) => {
          for (const o of this.observers) o.heartbeat(result, at, detail);
        },
      },
    });
    if (config.events) {
      this.events = new PodEvents({
        clock: deps.clock,
        intervalMs: config.intervalMs,
        write: (event, signal) => this.recordEvent(event, signal),
      });
      this.observers.push(this.events);
    }
  }

  /** SIGTERM/SIGINT (rules 8 and 16): wait for the kubelet's last word, then the final heartbeat. */
  stop(): void {
    this.signalled.abort();
    this.end('signal', this.lastWord());
  }

  private end(reason: EndReason, prepare?: Promise<void>): void {
    if (this.loop.ending) return;
    this.endReason = reason;
    this.loop.end(reason, prepare);
  }

  async run(): Promise<void> {
    const { log } = this.deps;
    const listening = this.startListener();
    let watching: Promise<void> = Promise.resolve();
    try {
      try {
        this.kube = KubeApi.load(this.config.kubeconfig ? { kubeconfig: this.config.kubeconfig } : {});
      } catch (error) {
        log.error({ err: error }, 'no Kubernetes API configuration: heartbeats go on without the pod');
      }
      this.kubeLoaded(this.kube);
      // Handled from the start (rule 22): a watch that fails must not be an unhandled rejection.
      if (this.kube)
        watching = this.watch(this.kube).catch((error: unknown) => {
          log.error({ err: error }, 'the pod watch stopped: heartbeats go on with the last snapshot');
        });
      if (this.kube && !this.loop.ending) {
        await this.firstPodOrTimeout();
        if (this.jobRead) await this.bounded(this.jobRead);
      }
      await this.loop.run();
      // Rule 18 and "where rules meet": after the final heartbeat nothing more is reported.
      this.finalReadiness = this.readiness();
      this.stopped.abort();
      if (
        this.endReason === 'complete' &&
        this.facts.pod &&
        isNativeSidecar(this.facts.pod, this.config.selfName)
      ) {
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
        (this.events?.close(FINAL_EVENT_MS) ?? Promise.resolve()).then(() => this.kube?.close()),
        listening.then((l) => l?.close()),
      ]);
      const grace = new AbortController();
      await Promise.race([
        closing,
        this.deps.clock.sleep(CLOSE_GRACE_MS, grace.signal).catch(() => undefined),
      ]);
      grace.abort(); // no timer left to hold the process
    }
  }

  private startListener(): Promise<Listener | undefined> {
    const { httpAddr } = this.config;
    if (httpAddr === 'off') return Promise.resolve(undefined);
    return startListener({
      ...httpAddr,
      log: this.deps.log,
      // Alive while the loop ticks; a native sidecar waiting for its SIGTERM is alive too.
      healthy: () => this.finalReadiness !== undefined || this.loop.alive(),
      readiness: () => this.finalReadiness ?? this.readiness(),
      metrics: () => this.metrics.render(),
    });
  }

  /** Ready once a heartbeat succeeded and while the last success is under three intervals old (monotonic). */
  private readiness(): Readiness {
    const last = this.loop.lastSuccessAt;
    if (last === undefined) return { ready: false, reason: 'no heartbeat has succeeded yet' };
    // The same rule raises HeartbeatFailing (heartbeat/health-events.ts).
    if (this.deps.clock.monotonic() - last >= STALE_AFTER_INTERVALS * this.config.intervalMs)
      return { ready: false, reason: 'the last successful heartbeat is older than three intervals' };
    return { ready: true };
  }

  /** Writes one Event once the Kubernetes client is loaded; without one there is nowhere to write. */
  private async recordEvent(event: HealthEvent, signal: AbortSignal): Promise<void> {
    const kube = await this.kubeReady;
    if (!kube) return;
    const { namespace, podName, timeoutMs } = this.config;
    this.eventWriter ??= new PodEventWriter({
      api: kube,
      log: this.deps.log,
      pod: () => ({ namespace, name: podName, uid: this.facts.pod?.metadata?.uid }),
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
      onDeleted: (last) => this.deleted(last),
      onRestart: () => this.metrics.watchRestarted(),
    });
  }

  /** Rule 17: the DELETED event's object is the last snapshot; a deletion does not wait. */
  private deleted(last: Pod | undefined): void {
    this.podDeleted = true;
    if (last) this.podSeen(last);
    this.end('pod-deleted');
  }

  private podSeen(pod: Pod): void {
    this.podVersions++;
    this.facts.pod = pod;
    this.firstPod?.();
    if (!this.warnedMissing) {
      const { names, missing, fellBack } = watchedContainers(pod, this.mapping);
      this.warnedMissing = true;
      if (fellBack)
        this.deps.log.error(
          { containers: missing, reporting: names },
          "WATCH_CONTAINERS names none of the pod's containers: reporting the default set instead",
        );
      else if (missing.length > 0)
        this.deps.log.warn(
          { containers: missing },
          'WATCH_CONTAINERS names containers the pod does not have',
        );
    }
    this.startReads(pod);
    this.loop.podUpdated();
    if (isTaskComplete(pod, this.mapping)) this.end('complete');
  }

  /** The Job and node are read once each, retried until answered (rule 1). */
  private startReads(pod: Pod): void {
    const kube = this.kube;
    if (!kube) return;
    const { log } = this.deps;
    const options = { clock: this.deps.clock, signal: this.stopped.signal, timeoutMs: this.config.timeoutMs };
    if (this.config.jobRetryCount === 'auto' && !this.jobRead) {
      const job = owningJobName(pod);
      this.jobRead = !job
        ? Promise.resolve()
        : readUntilAnswered((call) => kube.getJob(this.config.namespace, job, call), {
            ...options,
            onStuck: (error, failures) =>
              log.warn(
                { err: error, job, failures },
                'cannot read the owning Job yet: jobRetryCount stays 0; still trying',
              ),
          }).then((answer) => {
            if (answer instanceof Error) {
              log.warn({ err: answer, job }, 'cannot read the owning Job: jobRetryCount stays 0');
              return;
            }
            this.facts.jobRetryCount = jobFailedCount(answer);
          });
    }
    const nodeName = pod.spec?.nodeName;
    if (this.config.hardwareDetails && nodeName && !this.nodeRead) {
      this.nodeRead = readUntilAnswered((call) => kube.getNode(nodeName, call), {
        ...options,
        onStuck: (error, failures) =>
          log.warn({ err: error, node: nodeName, failures }, 'cannot read the node yet: still trying'),
      }).then((answer) => {
        if (answer instanceof Error) {
          log.warn(
            { err: answer, node: nodeName },
            "cannot read the node: hardware details carry the pod's part only",
          );
          return;
        }
        this.facts.node = answer;
      });
    }
  }

  private firstPodOrTimeout(): Promise<void> {
    if (this.facts.pod) return Promise.resolve();
    return this.bounded(
      new Promise<void>((resolve) => {
        this.firstPod = resolve;
      }),
    );
  }

  /** Waits for `work` at most HEARTBEAT_TIMEOUT, or until the end is seen. */
  private async bounded(work: Promise<unknown>): Promise<void> {
    const timer = new AbortController();
    const signal = AbortSignal.any([timer.signal, this.loop.endSignal]);
    try {
      await Promise.race([work, this.deps.clock.sleep(this.config.timeoutMs, signal).catch(() => undefined)]);
    } finally {
      timer.abort();
    }
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
    const until = clock.monotonic() + FINAL_POD_REFRESH_MS;
    const timer = new AbortController();
    const signal = AbortSignal.any([timer.signal, this.loop.giveWaySignal]);
    clock.sleep(FINAL_POD_REFRESH_MS, timer.signal).then(
      () => timer.abort(),
      () => undefined,
    );
    let warned = false;
    try {
      for (;;) {
        const seen = this.podVersions;
        try {
          const pod = await kube.getPod(this.config.namespace, this.config.podName, {
            timeoutMs: Math.max(1, until - clock.monotonic()),
            signal,
          });
          // A watch event that came while the GET was out is at least as new.
          if (this.podVersions === seen && !this.podDeleted) this.podSeen(pod);
        } catch (error) {
          if (signal.aborted) return;
          if (error instanceof KubeError && error.status === 404) return; // gone: nothing newer will come
          if (!warned) log.warn({ err: error }, 'could not refresh the pod before the final heartbeat');
          warned = true;
        }
        if (this.podDeleted || (this.facts.pod && this.allTerminated(this.facts.pod))) return;
        await clock.sleep(Math.min(FINAL_POD_POLL_MS, until - clock.monotonic()), signal);
      }
    } catch {
      // the 2 s or the final heartbeat's share ran out: it goes out with the newest snapshot
    } finally {
      timer.abort();
      if (this.facts.pod && !this.allTerminated(this.facts.pod))
        log.info('the final heartbeat goes out while a watched container still runs');
    }
  }

  private allTerminated(pod: Pod): boolean {
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') return true;
    return reportedContainers(pod, this.mapping).every((c) => c.state.terminated !== undefined);
  }
}

/** Rule 18: the agent's own container is an init container with restartPolicy Always. */
function isNativeSidecar(pod: Pod, selfName: string): boolean {
  return (pod.spec?.initContainers ?? []).some((c) => c.name === selfName && c.restartPolicy === 'Always');
}
