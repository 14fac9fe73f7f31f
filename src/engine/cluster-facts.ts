// The Job and node reads behind `jobRetryCount` and `podHardwareDetails` (contract
// rule 1 and Mapping), retried until answered (kube/read-retry.ts). The sidecar reads
// its one Job and node once; the fleet shares them among its runs: a node is read once,
// a Job when a pod of it is first seen — pods seen within JOB_SHARE_MS share that read,
// a pod seen later (the Job's next retry) gets a fresh one, since its status.failed moved.
import type { Clock } from '../clock.ts';
import type { KubeApi } from '../kube/api.ts';
import { jobFailedCount } from '../kube/job.ts';
import { readUntilAnswered } from '../kube/read-retry.ts';
import type { Node } from '../kube/types.ts';
import type { Logger } from '../log.ts';

/** Pods of one Job seen within this long share one read of it. */
const JOB_SHARE_MS = 5_000;

export interface ClusterFactsOptions {
  api: KubeApi;
  clock: Clock;
  /** Bound on each attempt (HEARTBEAT_TIMEOUT). */
  timeoutMs: number;
  /** Ends every read still retrying. */
  signal: AbortSignal;
}

export class ClusterFacts {
  private readonly o: ClusterFactsOptions;
  private readonly jobs = new Map<string, { at: number; failed: Promise<number | undefined> }>();
  private readonly nodes = new Map<string, Promise<Node | undefined>>();

  constructor(options: ClusterFactsOptions) {
    this.o = options;
  }

  /** The Job's status.failed, or undefined when it cannot be read (refused, or the reads stopped). */
  jobFailed(namespace: string, job: string, log: Logger): Promise<number | undefined> {
    const key = `${namespace}/${job}`;
    const now = this.o.clock.monotonic();
    const shared = this.jobs.get(key);
    if (shared && now - shared.at < JOB_SHARE_MS) return shared.failed;
    const failed = this.read(
      (call) => this.o.api.getJob(namespace, job, call),
      (error, failures) =>
        log.warn(
          { err: error, job, failures },
          'cannot read the owning Job yet: jobRetryCount stays 0; still trying',
        ),
      (error) => log.warn({ err: error, job }, 'cannot read the owning Job: jobRetryCount stays 0'),
    ).then((answer) => (answer === undefined ? undefined : jobFailedCount(answer)));
    this.jobs.delete(key); // re-inserted at the end: the map stays in age order
    this.jobs.set(key, { at: now, failed });
    this.forgetOldJobs(now);
    return failed;
  }

  /** The node, read once; undefined when it cannot be read. */
  node(name: string, log: Logger): Promise<Node | undefined> {
    let node = this.nodes.get(name);
    if (!node) {
      node = this.read(
        (call) => this.o.api.getNode(name, call),
        (error, failures) =>
          log.warn({ err: error, node: name, failures }, 'cannot read the node yet: still trying'),
        (error) =>
          log.warn(
            { err: error, node: name },
            "cannot read the node: hardware details carry the pod's part only",
          ),
      );
      this.nodes.set(name, node);
    }
    return node;
  }

  /** Every read still running, for a bounded shutdown. */
  pending(): Promise<unknown>[] {
    return [...[...this.jobs.values()].map((j) => j.failed), ...this.nodes.values()];
  }

  private async read<T>(
    read: Parameters<typeof readUntilAnswered<T>>[0],
    onStuck: (error: Error, failures: number) => void,
    onRefused: (error: Error) => void,
  ): Promise<T | undefined> {
    const { clock, signal, timeoutMs } = this.o;
    try {
      const answer = await readUntilAnswered(read, { clock, signal, timeoutMs, onStuck });
      if (answer instanceof Error) {
        onRefused(answer);
        return undefined;
      }
      return answer;
    } catch {
      return undefined; // stopped
    }
  }

  /** A Job's read is only shared for a few seconds: older entries would only hold memory. */
  private forgetOldJobs(now: number): void {
    for (const [key, entry] of this.jobs) {
      if (now - entry.at < JOB_SHARE_MS) break; // insertion order is age order
      this.jobs.delete(key);
    }
  }
}
