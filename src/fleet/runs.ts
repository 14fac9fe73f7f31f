// The fleet's runs, one per selected task pod: when a run starts, what a pod change
// means for it, and how it ends — exactly once, across restarts (contract: Fleet mode,
// The end of a run). Each run is the engine's TaskRun, the sidecar's own; what is the
// fleet's is around it: settings from the pod's annotations (pod-plan.ts), the shared
// TES pool, node and Job reads, the confirmation that a DELETED pod is really gone, the
// deletion and finalizer rules, and the mark written after the final heartbeat.
import { type Clock, waitAtMost } from '../clock.ts';
import type { FleetConfig } from '../config/fleet.ts';
import { RunBearer, type TokenSource } from '../engine/bearer.ts';
import type { ClusterFacts } from '../engine/cluster-facts.ts';
import { type RunEnd, TaskRun } from '../engine/task-run.ts';
import type { KubeApi } from '../kube/api.ts';
import {
  FINAL_HEARTBEAT_ANNOTATION,
  FINAL_HEARTBEAT_FINALIZER,
  NONCE_SECRET_KEY,
  RUN_ID_ANNOTATION,
} from '../kube/annotations.ts';
import type { EventContent, PodEventWriter } from '../kube/events.ts';
import { owningJobName } from '../kube/job.ts';
import type { Pod } from '../kube/types.ts';
import type { Logger } from '../log.ts';
import type { RunSecrets, Secrets } from '../secrets.ts';
import type { SendGate } from './gate.ts';
import { PodMarks, podRef } from './marks.ts';
import type { FleetMetrics } from './metrics.ts';
import { finalMark, type PodPlan, podPlan } from './pod-plan.ts';
import { isGone, type PodReadOptions, readNonce } from './pod-reads.ts';
import { podKey } from './pod-source.ts';
import type { FleetTes } from './tes-pool.ts';

/** A newly seen pod's first heartbeat waits this long at most for its Job's read. */
const FIRST_JOB_WAIT_MS = 1_000;
/** A run keeps this many of its newest jwts for the scrubber (rule 11, per run). */
const RUN_JWTS_KEPT = 4;

export interface FleetRunsOptions {
  config: FleetConfig;
  clock: Clock;
  /** The process's logger (runId and podName null); each run logs through a child. */
  log: Logger;
  secrets: Secrets;
  api: KubeApi;
  tes: FleetTes;
  tokens: TokenSource;
  facts: ClusterFacts;
  events: PodEventWriter | undefined;
  metrics: FleetMetrics;
  gate: SendGate;
  /** The process is stopping: reads and marks still retrying give up. */
  signal: AbortSignal;
}

type Ending = { kind: 'deleted' | 'vanished'; last: Pod } | { kind: 'left' };

interface Entry {
  pod: Pod;
  /** idle: no run (not started, skipped, or abandoned); done: its final is marked, nothing more. */
  phase: 'idle' | 'starting' | 'running' | 'done';
  run?: TaskRun | undefined;
  secrets?: RunSecrets | undefined;
  /** The run's end, mark included. */
  finishing?: Promise<void> | undefined;
  /** What ended the pod while its run started or ran. */
  pending?: Ending | undefined;
  nodeRead?: boolean;
  /** HeartbeatSkipped was written (once per pod). */
  skipNoted?: boolean;
  graceTimer?: AbortController | undefined;
  /** The finalizer being added (FLEET_FINALIZER=on): the mark waits for it, or would miss it. */
  holding?: Promise<unknown> | undefined;
  releaseTimer?: AbortController | undefined;
  /** The pod left the selection: forget the entry once its run stopped. */
  left?: boolean;
}

export class FleetRuns {
  private readonly o: FleetRunsOptions;
  private readonly entries = new Map<string, Entry>();
  private readonly marks: PodMarks;
  private stopping = false;
  /** Aborted when the marks of finals due at SIGTERM must stop (FINAL_HEARTBEAT_DEADLINE + 1 s). */
  private readonly marksGiveUp = new AbortController();

  constructor(options: FleetRunsOptions) {
    this.o = options;
    this.marks = new PodMarks({
      api: options.api,
      clock: options.clock,
      timeoutMs: options.config.timeoutMs,
    });
    options.gate.onChange(() => this.reconsider());
  }

  /** Runs being heartbeated. */
  get active(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.run) n++;
    return n;
  }

  // ---- from the pod source ----

  seen(pod: Pod): void {
    const key = podKey(pod);
    let e = this.entries.get(key);
    if (!e) {
      e = { pod, phase: 'idle' };
      this.entries.set(key, e);
    }
    e.pod = pod;
    if (e.left) return;
    this.watchRelease(e);
    if (e.phase === 'done') return;
    const plan = podPlan(pod, { selfName: this.o.config.selfName, nonceSecrets: this.o.config.nonceSecrets });
    switch (plan.kind) {
      case 'sidecar':
        return;
      case 'marked':
        // Some fleet sent this run's final (a failover, a restart): nothing more, ever.
        e.run?.abandon('the pod carries a final-heartbeat mark', { evenFinal: !e.run.ending });
        if (!e.run) e.phase = 'done';
        return;
      case 'unusable':
        if (!e.run && e.phase === 'idle') this.skip(e, plan.why);
        return;
      case 'run':
        if (e.run) {
          e.run.podSeen(pod);
          this.readNode(e, e.run);
          this.watchDeletion(e);
        } else if (e.phase === 'idle' && this.mayRun(e)) {
          this.start(e, plan).catch((error: unknown) =>
            this.o.log.error({ err: error, pod: pod.metadata?.name }, 'internal error starting a run'),
          );
        }
    }
  }

  /**
   * A DELETED event. From a label-selected watch it also means "no longer selected"
   * (kube-apiserver sends the previous object): a GET tells — 404, or another pod of
   * that name, is gone (the final heartbeat, with this last state); the same pod still
   * there has left the selection (no final: someone else reports it now, or nobody).
   */
  deleted(last: Pod): void {
    const key = podKey(last);
    const e = this.entries.get(key);
    if (!e) return;
    if (!e.run && e.phase !== 'starting') {
      this.forget(key, e);
      return;
    }
    void isGone(last, this.o.config.finalDeadlineMs / 2, this.reads()).then((gone) =>
      this.ended(key, gone ? { kind: 'deleted', last } : { kind: 'left' }),
    );
  }

  /** Missing from a re-list: ends like a deletion, with its last snapshot (no GET: the list said so). */
  vanished(last: Pod): void {
    const key = podKey(last);
    const e = this.entries.get(key);
    if (!e) return;
    this.o.log.info(
      { namespace: last.metadata?.namespace, pod: last.metadata?.name },
      'pod missing from a re-list: it ends like a deletion',
    );
    if (!e.run && e.phase !== 'starting') this.forget(key, e);
    else this.ended(key, { kind: 'vanished', last });
  }

  // ---- the process ----

  /**
   * SIGTERM: running runs stop without a final heartbeat (their tasks go on; the next
   * fleet takes over); finals already due finish within FINAL_HEARTBEAT_DEADLINE, their
   * marks at most a second later. Resolves when all is done.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    const { clock, config } = this.o;
    for (const e of this.entries.values()) {
      if (e.run && !e.run.ending) e.run.abandon('the fleet is stopping');
      e.graceTimer?.abort();
      e.releaseTimer?.abort();
    }
    const budget = new AbortController();
    clock.sleep(config.finalDeadlineMs + 1_000, budget.signal).then(
      () => this.marksGiveUp.abort(new Error('the fleet stopped: marks still being written are given up')),
      () => undefined,
    );
    await Promise.allSettled([...this.entries.values()].map((e) => e.finishing));
    budget.abort();
  }

  /** The gate or a node changed: runs stop or start as it now says. */
  reconsider(): void {
    for (const e of this.entries.values()) {
      if (e.run && !this.mayRun(e))
        e.run.abandon('this process may not send for this pod now', { evenFinal: true });
      else if (!e.run && e.phase === 'idle' && this.mayRun(e)) this.seen(e.pod);
    }
  }

  private mayRun(e: Entry): boolean {
    const { gate } = this.o;
    return !this.stopping && gate.open && gate.nodeOpen(e.pod.spec?.nodeName);
  }

  // ---- a run's life ----

  private async start(e: Entry, plan: Extract<PodPlan, { kind: 'run' }>): Promise<void> {
    const { config, clock, facts, tes, gate } = this.o;
    const pod = e.pod;
    e.phase = 'starting';
    const log = this.o.log.child({ runId: plan.runId, podName: pod.metadata?.name ?? null });
    const secrets = this.o.secrets.forRun(RUN_JWTS_KEPT);
    let nonce = plan.nonce;
    if (plan.nonceSecret) {
      nonce = await readNonce(pod, plan.nonceSecret, log, this.reads());
      if (!this.mayRun(e) && !e.pending) {
        secrets.forget(); // stopping, or the gate closed while the Secret was read
        e.phase = 'idle';
        return;
      }
      if (nonce === undefined) {
        secrets.forget();
        e.phase = 'idle';
        if (!e.pending)
          this.skip(e, `cannot read the nonce from Secret ${plan.nonceSecret} (key ${NONCE_SECRET_KEY})`);
        else this.forget(podKey(pod), e);
        return;
      }
    }
    secrets.add('nonce', nonce);
    const run = new TaskRun({
      runId: plan.runId,
      podName: pod.metadata?.name ?? '',
      nonce,
      watchContainers: plan.containers,
      policy: config,
      clock,
      log,
      // Methods, not arrow functions: the build's keepNames gives every named arrow its
      // own `name` property and hidden class, per run (task-run.ts).
      send(body, token, signal) {
        return tes.send(plan.runId, body, token, AbortSignal.any([signal, gate.signal]));
      },
      resetConnections() {
        return tes.recycle();
      },
      bearer: new RunBearer({ tokens: this.o.tokens, log, secrets }),
      reporter: 'fleet',
      writeEvent: this.o.events ? (event, signal) => this.writeEvent(e, event, log, signal) : undefined,
      observers: [this.o.metrics],
    });
    e.run = run;
    e.secrets = secrets;
    e.phase = 'running';
    this.o.metrics.runs.inc();
    run.podSeen(e.pod);
    this.readNode(e, run);
    const job = owningJobName(e.pod);
    const jobRead = job
      ? facts.jobFailed(e.pod.metadata?.namespace ?? '', job, log).then((failed) => {
          if (failed !== undefined) run.jobRetryCount(failed);
        })
      : undefined;
    if (config.finalizer && !e.pod.metadata?.deletionTimestamp)
      e.holding = this.marks.hold(e.pod, this.o.signal).catch(() => undefined);
    if (e.pending) this.applyEnding(e, e.pending);
    else this.watchDeletion(e);
    e.finishing = (async () => {
      if (jobRead) await waitAtMost(clock, jobRead, FIRST_JOB_WAIT_MS, run.endSignal);
      const end = await run.run();
      await this.finished(e, run, end, log);
    })().catch((error: unknown) => log.error({ err: error }, 'internal error ending the run'));
  }

  private async finished(e: Entry, run: TaskRun, end: RunEnd, log: Logger): Promise<void> {
    const { metrics, clock } = this.o;
    metrics.runs.dec();
    e.graceTimer?.abort();
    e.graceTimer = undefined;
    const events = end.outcome === 'abandoned' ? run.closeEvents(0) : run.closeEvents();
    if (end.outcome === 'abandoned') {
      e.run = undefined;
      e.secrets?.forget();
      if (e.phase !== 'done') e.phase = 'idle'; // released by FLEET_FINALIZER_TIMEOUT: done
      await events;
      const key = podKey(e.pod);
      if (e.left || e.pending) this.forget(key, e);
      else if (e.phase === 'idle' && this.mayRun(e)) this.seen(e.pod); // the gate opened again meanwhile
      return;
    }
    const result = end.outcome === 'final-sent' ? 'sent' : 'failed';
    metrics.finalHeartbeat(result);
    e.phase = 'done';
    await this.writeMark(e, finalMark(clock.now(), result), log);
    e.run = undefined;
    e.secrets?.forget();
    e.releaseTimer?.abort();
    await events;
    if (e.pending) this.forget(podKey(e.pod), e);
  }

  private async writeMark(e: Entry, mark: string, log: Logger): Promise<void> {
    try {
      await e.holding;
      // The snapshot may not show the finalizer yet: read the pod when one may be there.
      const fresh =
        this.o.config.finalizer || Boolean(e.pod.metadata?.finalizers?.includes(FINAL_HEARTBEAT_FINALIZER));
      const written = await this.marks.mark(
        e.pod,
        mark,
        AbortSignal.any([this.o.signal, this.marksGiveUp.signal]),
        fresh,
      );
      if (written === 'refused') log.error({ mark }, 'the API server refused the final-heartbeat mark');
      else log.info({ mark, pod: written }, 'final heartbeat marked on the pod');
    } catch (error) {
      log.warn(
        { err: error, mark },
        'the final-heartbeat mark was not written: a later fleet may repeat the final once',
      );
    }
  }

  /** A pod that ended (gone, vanished, left the selection) while its run started or ran. */
  private ended(key: string, ending: Ending): void {
    const e = this.entries.get(key);
    if (!e) return;
    if (e.phase === 'starting' && !e.run) {
      e.pending = ending;
      return;
    }
    e.pending = ending;
    this.applyEnding(e, ending);
  }

  private applyEnding(e: Entry, ending: Ending): void {
    const run = e.run;
    if (!run) return;
    if (ending.kind === 'left') {
      e.left = true;
      run.abandon("the pod left the fleet's selection");
      return;
    }
    e.pod = ending.last;
    run.deleted(ending.last);
  }

  private forget(key: string, e: Entry): void {
    e.graceTimer?.abort();
    e.releaseTimer?.abort();
    if (this.entries.get(key) === e) this.entries.delete(key);
  }

  // ---- deletion under way, finalizer timeout ----

  /**
   * A pod with a deletionTimestamp (graceful deletion, or held by a finalizer) ends its
   * run when every watched container is terminated, when it was never bound to a node,
   * or once its grace period has passed (the deletionTimestamp is that moment).
   */
  private watchDeletion(e: Entry): void {
    const run = e.run;
    const at = e.pod.metadata?.deletionTimestamp;
    if (!run || !at || run.ending) return;
    if (!e.pod.spec?.nodeName || run.allTerminated(e.pod)) {
      run.end('pod-deleted');
      return;
    }
    if (e.graceTimer) return;
    e.graceTimer = this.after(Date.parse(at) - this.o.clock.now(), () => e.run?.end('pod-deleted'));
  }

  /**
   * FLEET_FINALIZER_TIMEOUT: a pod that carries the fleet's finalizer and whose deletion
   * started longer ago is released even without a final heartbeat (a fleet that never
   * comes back must not hold pods forever): its run stops, the mark says `failed`.
   */
  private watchRelease(e: Entry): void {
    const m = e.pod.metadata ?? {};
    if (e.releaseTimer || !m.deletionTimestamp || !m.finalizers?.includes(FINAL_HEARTBEAT_FINALIZER)) return;
    if (this.stopping || !this.o.gate.open) return;
    const started = Date.parse(m.deletionTimestamp) - (m.deletionGracePeriodSeconds ?? 0) * 1000;
    const due = started + this.o.config.finalizerTimeoutMs - this.o.clock.now();
    e.releaseTimer = this.after(due, () => void this.release(e));
  }

  private async release(e: Entry): Promise<void> {
    if (this.stopping) return;
    const { config, log } = this.o;
    const marked = e.pod.metadata?.annotations?.[FINAL_HEARTBEAT_ANNOTATION];
    if (marked !== undefined || (e.phase === 'done' && !e.run)) {
      // Its final was dealt with, but the finalizer stayed (a refused patch): free the pod, keep the mark.
      await this.writeMark(e, marked ?? finalMark(this.o.clock.now(), 'failed'), log);
      return;
    }
    if (e.phase === 'done') return; // its final is being marked right now
    e.phase = 'done';
    e.run?.abandon('FLEET_FINALIZER_TIMEOUT passed', { evenFinal: true });
    const runLog = log.child({ runId: podPlanRunId(e.pod), podName: e.pod.metadata?.name ?? null });
    runLog.warn(
      { timeout: config.finalizerTimeoutMs },
      'the pod was deleted longer than FLEET_FINALIZER_TIMEOUT ago: released without a final heartbeat',
    );
    this.o.metrics.finalHeartbeat('failed');
    const marking = this.writeMark(e, finalMark(this.o.clock.now(), 'failed'), runLog);
    await this.writeEvent(
      e,
      {
        reason: 'FinalHeartbeatFailed',
        type: 'Warning',
        note: `No final heartbeat was sent: the pod's deletion started more than FLEET_FINALIZER_TIMEOUT (${Math.round(config.finalizerTimeoutMs / 1000)} s) ago, so the fleet released it. The TES may not learn that the task ended.`,
      },
      runLog,
    );
    await marking;
  }

  // ---- helpers ----

  private skip(e: Entry, why: string): void {
    if (e.skipNoted || !this.o.gate.open) return;
    e.skipNoted = true;
    const log = this.o.log.child({ runId: null, podName: e.pod.metadata?.name ?? null });
    log.warn({ namespace: e.pod.metadata?.namespace, why }, 'pod skipped: no heartbeats for it');
    void this.writeEvent(
      e,
      {
        reason: 'HeartbeatSkipped',
        type: 'Warning',
        note: `tes-heartbeat's fleet does not heartbeat this pod: ${why}.`,
      },
      log,
    );
  }

  private readNode(e: Entry, run: TaskRun): void {
    const name = e.pod.spec?.nodeName;
    if (e.nodeRead || !name || !this.o.config.hardwareDetails) return;
    e.nodeRead = true;
    void this.o.facts.node(name, this.o.log).then((node) => {
      if (node) run.nodeSeen(node);
    });
  }

  private reads(): PodReadOptions {
    const { api, clock, config, signal } = this.o;
    return { api, clock, timeoutMs: config.timeoutMs, signal };
  }

  private async writeEvent(e: Entry, event: EventContent, log: Logger, signal?: AbortSignal): Promise<void> {
    await this.o.events?.writeFor(podRef(e.pod), event, signal, log);
  }

  /** Calls `fn` after `ms` of monotonic time (at once when ≤ 0); abort the controller to cancel. */
  private after(ms: number, fn: () => void): AbortController {
    const timer = new AbortController();
    this.o.clock
      .sleep(Math.max(0, ms), AbortSignal.any([timer.signal, this.o.signal]))
      .then(fn, () => undefined);
    return timer;
  }
}

function podPlanRunId(pod: Pod): string | null {
  return pod.metadata?.annotations?.[RUN_ID_ANNOTATION] ?? null;
}
