// One task run's heartbeats: the engine both deployments share. The sidecar runs one
// TaskRun (settings from its env), the fleet one per task pod (settings from the pod's
// annotations). Everything outside the run is pushed in — pod snapshots, the node, the
// Job's failure count — or passed in — the TES send, the bearer, the Event writer, the
// observers — so the run knows nothing of where its pod comes from or how many runs
// share the process. It owns the mapping options and the facts, the loop with its
// retry policy, the Events' state machine, and the end of the run (rules 7, 8, 15, 17).
import type { Clock } from '../clock.ts';
import { type HealthEvent, type Reporter, STALE_AFTER_INTERVALS } from '../heartbeat/health-events.ts';
import {
  type Bearer,
  type EndReason,
  HeartbeatLoop,
  type HeartbeatObserver,
  type LoopOutcome,
} from '../heartbeat/loop.ts';
import {
  heartbeatBody,
  isTaskComplete,
  type MappingOptions,
  type PodFacts,
  reportedContainers,
  stateSignature,
  watchedContainers,
} from '../heartbeat/mapping.ts';
import type { Readiness } from '../http/listener.ts';
import type { Node, Pod } from '../kube/types.ts';
import type { Logger } from '../log.ts';
import type { HeartbeatTaskRunRequest, TaskRunHeartbeat } from '../tes/types.gen.ts';
import { PodEvents } from './pod-events.ts';

/** The policy settings every run of a process shares (the agent's settings of the same names). */
/** The final Event's share of a run's end. */
const FINAL_EVENT_MS = 1_000;

export interface RunPolicy {
  intervalMs: number;
  minGapMs: number;
  finalDeadlineMs: number;
  /** AGENT_CONTAINER_NAME: never reported. */
  selfName: string;
  hardwareDetails: boolean;
}

export interface TaskRunOptions {
  runId: string;
  /** The task pod's name: the body's podName until the pod was read. */
  podName: string;
  /** TES_NONCE or the pod's nonce annotation; empty or absent: omitted. */
  nonce?: string | undefined;
  /** WATCH_CONTAINERS or the pod's containers annotation. */
  watchContainers?: string[] | undefined;
  /** A fixed JOB_RETRY_COUNT; otherwise 0 until `jobRetryCount` pushes the Job's. */
  jobRetryCount?: number | undefined;
  policy: RunPolicy;
  clock: Clock;
  /** The run's logger (its lines carry runId and podName). */
  log: Logger;
  /** One HTTP attempt for this run; aborting `signal` ends it at once. */
  send(
    body: HeartbeatTaskRunRequest,
    token: string | undefined,
    signal: AbortSignal,
  ): Promise<TaskRunHeartbeat>;
  /** Rule 9: two failed attempts in a row ask for fresh TES connections (false: a shared pool declined). */
  resetConnections(): Promise<unknown>;
  bearer: Bearer;
  /** Who the Events' notes name: the pod's sidecar (default), or the fleet. */
  reporter?: Reporter | undefined;
  /** Records an Event on the pod (never throws); absent with EVENTS=off. */
  writeEvent?: ((event: HealthEvent, signal: AbortSignal) => Promise<unknown>) | undefined;
  /** Told of every attempt and heartbeat (the metrics). */
  observers: HeartbeatObserver[];
}

/** How a run ended: why (absent when abandoned before its end), and its final heartbeat's fate. */
export interface RunEnd {
  reason: EndReason | undefined;
  outcome: LoopOutcome;
}

export class TaskRun {
  readonly runId: string;
  private readonly o: TaskRunOptions;
  private readonly facts: PodFacts = { jobRetryCount: 0 };
  private readonly mapping: MappingOptions;
  private readonly loop: HeartbeatLoop;
  /** Events on the pod; "three intervals after the start" counts from construction. */
  private readonly events: PodEvents | undefined;
  private reason: EndReason | undefined;
  private warnedMissing = false;
  /** Counts pod snapshots taken, so a slow GET never overwrites a newer watch event. */
  versions = 0;
  /** The pod's deletion was seen (its last snapshot is in). */
  deletedSeen = false;

  constructor(options: TaskRunOptions) {
    this.o = options;
    this.runId = options.runId;
    const { policy } = options;
    this.mapping = {
      podName: options.podName,
      selfName: policy.selfName,
      hardwareDetails: policy.hardwareDetails,
      ...(options.nonce ? { nonce: options.nonce } : {}),
      ...(options.watchContainers ? { watchContainers: options.watchContainers } : {}),
    };
    if (options.jobRetryCount !== undefined) this.facts.jobRetryCount = options.jobRetryCount;
    const observers = [...options.observers];
    if (options.writeEvent) {
      this.events = new PodEvents({
        clock: options.clock,
        intervalMs: policy.intervalMs,
        write: options.writeEvent,
        ...(options.reporter ? { reporter: options.reporter } : {}),
      });
      observers.push(this.events);
    }
    // Methods, not arrow functions: the build's keepNames gives every named arrow its own
    // `name` property and hidden class, per run (~300 bytes each in a 10,000-run fleet).
    const { facts, mapping } = this;
    this.loop = new HeartbeatLoop({
      clock: options.clock,
      log: options.log,
      intervalMs: policy.intervalMs,
      minGapMs: policy.minGapMs,
      finalDeadlineMs: policy.finalDeadlineMs,
      body(last) {
        return heartbeatBody(facts, mapping, last);
      },
      signature() {
        return facts.pod ? stateSignature(facts.pod, mapping) : '';
      },
      send: options.send,
      bearer: options.bearer,
      resetConnections: options.resetConnections,
      observer:
        observers.length === 1
          ? (observers[0] as HeartbeatObserver)
          : {
              attempt(seconds) {
                for (const o of observers) o.attempt(seconds);
              },
              heartbeat(result, at, detail) {
                for (const o of observers) o.heartbeat(result, at, detail);
              },
            },
    });
  }

  /** The newest snapshot, if the pod was ever seen. */
  get pod(): Pod | undefined {
    return this.facts.pod;
  }

  get endReason(): EndReason | undefined {
    return this.reason;
  }

  get ending(): boolean {
    return this.loop.ending;
  }

  /** Aborted when the end has been seen. */
  get endSignal(): AbortSignal {
    return this.loop.endSignal;
  }

  /** Aborted when the end's other work (a pod refresh) must give way to the final heartbeat. */
  get giveWaySignal(): AbortSignal {
    return this.loop.giveWaySignal;
  }

  /** A new snapshot of the pod: a change wakes the loop (rule 3); completion ends the run (rule 7). */
  podSeen(pod: Pod): void {
    this.versions++;
    this.facts.pod = pod;
    if (!this.warnedMissing) {
      this.warnedMissing = true;
      const { names, missing, fellBack } = watchedContainers(pod, this.mapping);
      if (fellBack)
        this.o.log.error(
          { containers: missing, reporting: names },
          "WATCH_CONTAINERS names none of the pod's containers: reporting the default set instead",
        );
      else if (missing.length > 0)
        this.o.log.warn({ containers: missing }, 'WATCH_CONTAINERS names containers the pod does not have');
    }
    this.loop.podUpdated();
    if (this.complete(pod)) this.end('complete');
  }

  /** Rule 17: the DELETED object is the last snapshot; a deletion does not wait. */
  deleted(last?: Pod): void {
    this.deletedSeen = true;
    if (last) this.podSeen(last);
    this.end('pod-deleted');
  }

  nodeSeen(node: Node): void {
    this.facts.node = node;
  }

  jobRetryCount(count: number): void {
    this.facts.jobRetryCount = count;
  }

  /** Rule 7's test on the run's own mapping (its watched containers). */
  complete(pod: Pod): boolean {
    return isTaskComplete(pod, this.mapping);
  }

  /** Every watched container terminated (or the phase says the pod is done): the kubelet's last word is in. */
  allTerminated(pod: Pod): boolean {
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') return true;
    return reportedContainers(pod, this.mapping).every((c) => c.state.terminated !== undefined);
  }

  /** The end has come: the final heartbeat follows, after `prepare` (bounded by rule 15). Only the first call counts. */
  end(reason: EndReason, prepare?: Promise<unknown>): void {
    if (this.loop.ending) return;
    this.reason = reason;
    this.loop.end(reason, prepare);
  }

  /** Stops without a final heartbeat (see HeartbeatLoop.abandon). */
  abandon(why: string, options: { evenFinal?: boolean } = {}): void {
    this.loop.abandon(why, options);
  }

  /** Runs the heartbeats until the final one is done or the run is abandoned. */
  run(): Promise<RunEnd> {
    // Not async: a suspended async function is kept per run for the run's whole life.
    return this.loop.run().then((outcome) => ({ reason: this.reason, outcome }));
  }

  /** Whether the loop ticked lately (`/healthz`). */
  alive(): boolean {
    return this.loop.alive();
  }

  /** Ready once a heartbeat succeeded and while the last success is under three intervals old (monotonic). */
  readiness(): Readiness {
    const last = this.loop.lastSuccessAt;
    if (last === undefined) return { ready: false, reason: 'no heartbeat has succeeded yet' };
    // The same rule raises HeartbeatFailing (heartbeat/health-events.ts).
    if (this.o.clock.monotonic() - last >= STALE_AFTER_INTERVALS * this.o.policy.intervalMs)
      return { ready: false, reason: 'the last successful heartbeat is older than three intervals' };
    return { ready: true };
  }

  /**
   * Waits for the Events still being written (the final one) at most `budgetMs` — by
   * default the final Event's share of the end (contract: Events on the task pod, best
   * effort, at most about 1 s); nothing is recorded after.
   */
  async closeEvents(budgetMs = FINAL_EVENT_MS): Promise<void> {
    await this.events?.close(budgetMs);
  }
}
