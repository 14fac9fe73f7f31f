// The agent: wires the pod source, the pure mapping, the heartbeat loop, the TES
// client and the listener together. Start-up order follows contract rule 1: the
// first heartbeat waits for the pod (and, with JOB_RETRY_COUNT=auto, the Job) at
// most HEARTBEAT_TIMEOUT each, then goes out whatever is known.
import type { Clock } from '../clock.ts';
import type { AgentConfig } from '../config/agent.ts';
import { BearerSource } from './bearer.ts';
import { HeartbeatLoop } from '../heartbeat/loop.ts';
import {
  heartbeatBody,
  isTaskComplete,
  type MappingOptions,
  type PodFacts,
  stateSignature,
  watchedContainers,
} from '../heartbeat/mapping.ts';
import { AgentMetrics } from '../http/agent-metrics.ts';
import { type Listener, startListener } from '../http/listener.ts';
import type { Pod } from '../k8s-types.ts';
import { KubeApi } from '../kube/api.ts';
import { jobFailedCount, owningJobName } from '../kube/job.ts';
import { watchPod } from '../kube/pod-watch.ts';
import { readUntilAnswered } from '../kube/read-retry.ts';
import type { Logger } from '../log.ts';
import { TesClient } from '../tes/client.ts';

/** How long a SIGTERM may spend refreshing the pod before the final heartbeat. */
const FINAL_POD_REFRESH_MS = 2_000;

export interface AgentDeps {
  clock: Clock;
  log: Logger;
}

export class Agent {
  private readonly config: AgentConfig;
  private readonly deps: AgentDeps;
  private readonly facts: PodFacts = { jobRetryCount: 0 };
  private readonly mapping: MappingOptions;
  private readonly metrics = new AgentMetrics();
  private readonly tes: TesClient;
  private readonly loop: HeartbeatLoop;
  private readonly stopped = new AbortController();
  private kube: KubeApi | undefined;
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
      ...(config.ca ? { ca: config.ca } : {}),
    });
    const bearer = new BearerSource({
      log: deps.log,
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
      send: (body, token) => this.tes.heartbeatTaskRun(config.runId, body, token ? { token } : {}),
      bearer,
      resetConnections: () => this.tes.resetConnections(),
      observer: this.metrics,
    });
  }

  /** SIGTERM/SIGINT (contract rule 8): refresh the pod once, then the final heartbeat. */
  stop(): void {
    if (this.loop.ending) return;
    this.loop.end('signal', this.refreshPod());
  }

  async run(): Promise<void> {
    const { log } = this.deps;
    const listening = this.startListener();
    try {
      this.kube = KubeApi.load(this.config.kubeconfig ? { kubeconfig: this.config.kubeconfig } : {});
    } catch (error) {
      log.error({ err: error }, 'no Kubernetes API configuration: heartbeats go on without the pod');
    }
    const watching = this.kube ? this.watch(this.kube) : Promise.resolve();
    if (this.kube && !this.loop.ending) {
      await this.firstPodOrTimeout();
      if (this.jobRead) await this.bounded(this.jobRead);
    }
    await this.loop.run();
    this.stopped.abort();
    await Promise.allSettled([watching, this.jobRead, this.nodeRead]);
    await Promise.allSettled([this.tes.close(), this.kube?.close(), listening.then((l) => l?.close())]);
  }

  private startListener(): Promise<Listener | undefined> {
    const { httpAddr, intervalMs } = this.config;
    if (httpAddr === 'off') return Promise.resolve(undefined);
    return startListener({
      ...httpAddr,
      log: this.deps.log,
      healthy: () => !this.stopped.signal.aborted,
      readiness: () => {
        const last = this.loop.lastSuccessAt;
        if (last === undefined) return { ready: false, reason: 'no heartbeat has succeeded yet' };
        if (this.deps.clock.now() - last >= 3 * intervalMs)
          return { ready: false, reason: 'the last successful heartbeat is older than three intervals' };
        return { ready: true };
      },
      metrics: () => this.metrics.render(),
    });
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
      onDeleted: () => this.loop.end('pod-deleted'),
      onRestart: () => this.metrics.watchRestarted(),
    });
  }

  private podSeen(pod: Pod): void {
    this.facts.pod = pod;
    this.firstPod?.();
    if (!this.warnedMissing) {
      const { missing } = watchedContainers(pod, this.mapping);
      this.warnedMissing = true;
      if (missing.length > 0)
        this.deps.log.warn(
          { containers: missing },
          'WATCH_CONTAINERS names containers the pod does not have',
        );
    }
    this.startReads(pod);
    this.loop.podUpdated();
    if (isTaskComplete(pod, this.mapping)) this.loop.end('complete');
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
        : readUntilAnswered((call) => kube.getJob(this.config.namespace, job, call), options).then(
            (answer) => {
              if (answer instanceof Error) {
                log.warn({ err: answer, job }, 'cannot read the owning Job: jobRetryCount stays 0');
                return;
              }
              this.facts.jobRetryCount = jobFailedCount(answer);
            },
          );
    }
    const nodeName = pod.spec?.nodeName;
    if (this.config.hardwareDetails && nodeName && !this.nodeRead) {
      this.nodeRead = readUntilAnswered((call) => kube.getNode(nodeName, call), options).then((answer) => {
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

  private async refreshPod(): Promise<void> {
    if (!this.kube) return;
    try {
      const pod = await this.kube.getPod(this.config.namespace, this.config.podName, {
        timeoutMs: FINAL_POD_REFRESH_MS,
      });
      this.facts.pod = pod;
    } catch (error) {
      this.deps.log.warn({ err: error }, 'could not refresh the pod before the final heartbeat');
    }
  }
}
