// The agent's watch on its own pod (contract rule 10): a list/watch on the pods of its
// namespace with `fieldSelector=metadata.name=<pod>`, turned into "a new version of the
// pod" and "the pod is gone" for the agent.
import type { Clock } from '../clock.ts';
import type { Logger } from '../log.ts';
import type { KubeApi } from './api.ts';
import type { Pod } from './types.ts';
import { listWatch } from './list-watch.ts';

export interface PodWatchOptions {
  api: KubeApi;
  namespace: string;
  podName: string;
  /** Bound on each LIST and on opening each watch (HEARTBEAT_TIMEOUT). */
  listTimeoutMs: number;
  clock: Clock;
  log: Logger;
  /** Ends the watch; the promise then resolves with no timer or stream left. */
  signal: AbortSignal;
  /** Each new version of the pod (never the same resourceVersion twice in a row). */
  onPod(pod: Pod): void;
  /**
   * The pod was deleted (the agent treats it as SIGTERM); the watch then ends. `last` is
   * the DELETED event's object, the pod's last state (rule 17: a force-deleted pod's final
   * container states may appear nowhere else); absent when the deletion was seen by a LIST.
   */
  onDeleted(last?: Pod): void;
  /** Each watch opened after the first (tes_kube_watch_restarts_total). */
  onRestart(): void;
  watchTimeoutSeconds?: number;
  idleTimeoutMs?: number;
}

export function watchPod(options: PodWatchOptions): Promise<void> {
  const { podName, log } = options;
  let lastDelivered: string | undefined;
  let seen = false;
  let warnedMissing = false;

  const deliver = (pod: Pod): void => {
    seen = true;
    const version = pod.metadata?.resourceVersion;
    if (version !== undefined && version === lastDelivered) return;
    options.onPod(pod);
    lastDelivered = version; // only once applied: a version whose onPod threw comes again
  };
  const deleted = (last?: Pod): 'stop' => {
    options.onDeleted(last);
    return 'stop';
  };

  return listWatch<Pod>({
    api: options.api,
    path: `/api/v1/namespaces/${encodeURIComponent(options.namespace)}/pods`,
    selectors: { fieldSelector: `metadata.name=${podName}` },
    timeoutMs: options.listTimeoutMs,
    clock: options.clock,
    log: options.log,
    signal: options.signal,
    onRestart: options.onRestart,
    ...(options.watchTimeoutSeconds !== undefined && { watchTimeoutSeconds: options.watchTimeoutSeconds }),
    ...(options.idleTimeoutMs !== undefined && { idleTimeoutMs: options.idleTimeoutMs }),
    onList: (items) => {
      const pod = items.find((item) => item.metadata?.name === podName);
      if (pod) {
        deliver(pod);
      } else if (seen) {
        return deleted(); // deleted while the watch was down
      } else if (!warnedMissing) {
        warnedMissing = true;
        log.warn({ namespace: options.namespace, podName }, 'own pod not found; watching for it');
      }
      return undefined;
    },
    onEvent: (type, pod) => {
      if (pod.metadata?.name !== podName) return undefined;
      if (type === 'DELETED') return deleted(pod);
      deliver(pod);
      return undefined;
    },
  });
}
