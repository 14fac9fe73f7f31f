// The fleet's writes on task pods (contract: The end of a run, exactly once): the
// final-heartbeat mark, and with FLEET_FINALIZER=on the finalizer, added when a pod is
// taken on and removed in the same patch as the mark. JSON merge patches: an annotation
// merges by key, but a list is replaced whole — so a patch that changes `finalizers`
// carries the `metadata.resourceVersion` it was computed from (another controller's
// finalizer added meanwhile must not be lost), and a 409 reads the pod again.
import type { Clock } from '../clock.ts';
import { isRefusal, type KubeApi, KubeError } from '../kube/api.ts';
import { FINAL_HEARTBEAT_ANNOTATION, FINAL_HEARTBEAT_FINALIZER } from '../kube/annotations.ts';
import { kubeBackoffMs } from '../kube/backoff.ts';
import type { Pod } from '../kube/types.ts';

/** Conflicts retried before giving up a finalizer change (another writer keeps winning). */
const CONFLICT_TRIES = 5;

export interface PodRef {
  namespace: string;
  name: string;
  uid?: string | undefined;
}

/** `pod`'s name, namespace and uid. */
export function podRef(pod: Pod): PodRef {
  return { namespace: pod.metadata?.namespace ?? '', name: pod.metadata?.name ?? '', uid: pod.metadata?.uid };
}

export interface MarksOptions {
  api: KubeApi;
  clock: Clock;
  timeoutMs: number;
}

export type WriteResult = 'written' | 'gone' | 'refused';

export class PodMarks {
  private readonly o: MarksOptions;

  constructor(options: MarksOptions) {
    this.o = options;
  }

  /**
   * Marks the pod `mark` and removes the fleet's finalizer if it is there, retried until
   * answered or `signal` aborts (it then throws). A pod already gone is fine: its mark
   * mattered only while it existed. `fresh`: read the pod first instead of trusting the
   * snapshot (a finalizer may have been added since it was taken).
   */
  mark(pod: Pod, mark: string, signal: AbortSignal, fresh = false): Promise<WriteResult> {
    return this.change(pod, signal, fresh, (current) => {
      const finalizers = current.metadata?.finalizers ?? [];
      const holds = finalizers.includes(FINAL_HEARTBEAT_FINALIZER);
      return {
        metadata: {
          annotations: { [FINAL_HEARTBEAT_ANNOTATION]: mark },
          ...(holds
            ? {
                finalizers: finalizers.filter((f) => f !== FINAL_HEARTBEAT_FINALIZER),
                resourceVersion: current.metadata?.resourceVersion,
              }
            : {}),
        },
      };
    });
  }

  /** Adds the fleet's finalizer (FLEET_FINALIZER=on) unless it is there or the pod is being deleted. */
  hold(pod: Pod, signal: AbortSignal): Promise<WriteResult> {
    return this.change(pod, signal, false, (current) => {
      const finalizers = current.metadata?.finalizers ?? [];
      // No finalizer may be added to a pod being deleted (the API server answers 422).
      if (finalizers.includes(FINAL_HEARTBEAT_FINALIZER) || current.metadata?.deletionTimestamp)
        return undefined;
      return {
        metadata: {
          finalizers: [...finalizers, FINAL_HEARTBEAT_FINALIZER],
          resourceVersion: current.metadata?.resourceVersion,
        },
      };
    });
  }

  /**
   * Computes the patch from the snapshot the fleet holds and sends it; a 409 reads the
   * pod and starts over, other failures back off and retry until `signal` aborts. A
   * patch of undefined writes nothing.
   */
  private async change(
    snapshot: Pod,
    signal: AbortSignal,
    fresh: boolean,
    patchFor: (current: Pod) => object | undefined,
  ): Promise<WriteResult> {
    const { api, clock, timeoutMs } = this.o;
    const pod = podRef(snapshot);
    const path = `/api/v1/namespaces/${encodeURIComponent(pod.namespace)}/pods/${encodeURIComponent(pod.name)}`;
    let conflicts = 0;
    let known: Pod | undefined = fresh ? undefined : snapshot;
    for (let failures = 0; ; ) {
      signal.throwIfAborted();
      try {
        const current: Pod = known ?? (await api.get<Pod>(path, { timeoutMs, signal }));
        known = undefined; // after a failure, read the pod again
        if (pod.uid && current.metadata?.uid !== pod.uid) return 'gone'; // another pod of the same name
        const patch = patchFor(current);
        if (patch) await api.mergePatch<Pod>(path, patch, { timeoutMs, signal });
        return 'written';
      } catch (error) {
        if (error instanceof KubeError && error.status === 404) return 'gone';
        if (error instanceof KubeError && error.status === 409 && ++conflicts < CONFLICT_TRIES) continue;
        if (isRefusal(error) || (error instanceof KubeError && [400, 409, 422].includes(error.status ?? 0)))
          return 'refused';
        if (!(error instanceof KubeError)) throw error;
        await clock.sleep(kubeBackoffMs(++failures, clock.random()), signal);
      }
    }
  }
}
